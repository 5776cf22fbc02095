"""Property-based runs of the real ``gw`` over whatever the AWS IoT credentials provider answers.

The IoT credentials provider emulator does the real mutual TLS (client certificate required,
SNI checked, certificate ACTIVE); behind it, the ``credentials`` route answers whatever the
test scripted: any status, JSON documents shaped like the real answer and error bodies (with
odd fields, unreadable expirations, the key passphrase echoed back in the ``message``),
garbage bytes, or a dropped connection. For every answer, ``gw credential-process`` must:
- write only ``gw: ...`` lines on stderr, never a traceback nor ``gw: internal error``;
- exit non-zero with at least one line unless the answer held usable credentials, and then
  emit exactly those;
- never show the private key's passphrase (any form, even echoed by the endpoint), the
  private key, nor, when it fails, the secret parts of the answer.
Bounded: about 30 runs of the real executable, one TLS handshake each.
"""

from __future__ import annotations

import json
import secrets
import tempfile
import threading
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gw.testing import GwHome
from gw_emulators.httpserver import Request, Response
from gw_emulators.iot import IotCredentialsEmulator
from tests.core.test_properties import assert_clean

BOUNDED = settings(max_examples=30, deadline=None, database=None, derandomize=True,
                   suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
ALIAS = "device-role-alias"
THING = "sensor-1"
PASSPHRASE = "pass-" + secrets.token_urlsafe(18)


class ScriptedIot(IotCredentialsEmulator):
    """The emulator's TLS (client certificate, SNI, certificate status), then a scripted answer."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._script_lock = threading.Lock()
        self.scripted = Response(500, b"not scripted")
        self.served = 0

    def script(self, status: int, body: bytes, drop: bool = False) -> None:
        with self._script_lock:
            self.scripted = Response(status, body, {"Content-Type": "application/json"}, drop=drop)

    def _credentials(self, request: Request) -> Response:
        assert request.peer_cert_der is not None  # mutual TLS really happened
        with self._script_lock:
            self.served += 1
            answer = self.scripted
            return Response(answer.status, answer.body, dict(answer.headers), drop=answer.drop)


@pytest.fixture
def scripted(ca, tmp_path):
    emulator = ScriptedIot(ca, tmp_path / "iot")
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def device(scripted):
    """An ACTIVE certificate whose private key is encrypted with PASSPHRASE (given to gw by reference)."""
    from cryptography.hazmat.primitives import serialization

    cert = scripted.create_certificate("device", thing_name=THING)
    key = serialization.load_pem_private_key(cert.key_path.read_bytes(), None)
    cert.key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.BestAvailableEncryption(PASSPHRASE.encode())))
    return cert


JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(["credentials", "message", "accessKeyId", "x"]), inner,
                                            max_size=2)),
    max_leaves=5)
FIELD = st.one_of(st.text(max_size=24), st.sampled_from(["", "ASIAEXAMPLEEXAMPLE01", "x" * 40]), JSONISH)
EXPIRATION = st.one_of(st.sampled_from(["2999-01-01T00:00:00Z", "2999-01-01T00:00:00.000Z", "2000-01-01T00:00:00Z",
                                        "not a date", "", "2999-01-01T00:00:00"]), JSONISH)
CREDENTIALS = st.fixed_dictionaries({}, optional={"accessKeyId": FIELD, "secretAccessKey": FIELD,
                                                  "sessionToken": FIELD, "expiration": EXPIRATION})
GOOD = st.fixed_dictionaries({
    "accessKeyId": st.from_regex(r"ASIA[A-Z2-7]{16}", fullmatch=True),
    "secretAccessKey": st.from_regex(r"[A-Za-z0-9/+]{40}", fullmatch=True),
    "sessionToken": st.from_regex(r"IQoJb3JpZ2luX2Vj[A-Za-z0-9/+=]{20,60}", fullmatch=True),
    "expiration": st.sampled_from(["2999-01-01T00:00:00Z", "2999-06-30T12:34:56Z"]),
})
ANSWER = st.one_of(
    st.builds(lambda c: {"credentials": c}, GOOD),
    st.builds(lambda c: {"credentials": c}, st.one_of(CREDENTIALS, JSONISH)),
    st.fixed_dictionaries({"message": st.one_of(st.sampled_from(
        ["Invalid thing name passed", "Access Denied", "Certificate is invalid on this endpoint",
         "Role alias does not exist", ""]), st.text(max_size=30), JSONISH)}),
    JSONISH,
)


def _echo(secret: str, how: str) -> str:
    return {"raw": secret, "repr": repr(secret), "json": json.dumps(secret), "url": quote(secret, safe=""),
            "cut": secret[: len(secret) // 2 + 4], "none": ""}[how]


def _usable(status: int, junk: bool, drop: bool, doc: object) -> dict | None:
    """The credentials gw may accept from the answer, else None."""
    if status != 200 or junk or drop or not isinstance(doc, dict) or not isinstance(doc.get("credentials"), dict):
        return None
    creds = doc["credentials"]
    keys = ("accessKeyId", "secretAccessKey", "sessionToken")
    if all(isinstance(creds.get(k), str) and creds[k] for k in keys):
        return creds
    return None


@BOUNDED
@given(status=st.sampled_from([200] * 6 + [400, 403, 404, 429, 500, 503]), doc=ANSWER,
       junk=st.sampled_from([False] * 3 + [True]), raw=st.binary(max_size=40), drop=st.sampled_from([False] * 5 + [True]),
       how=st.sampled_from(["raw", "repr", "json", "url", "cut", "none"]))
def test_any_credentials_provider_answer_gives_gw_lines_only(tmp_path, ca, scripted, device, status, doc, junk, raw,
                                                             drop, how):
    home = GwHome.create(Path(tempfile.mkdtemp(dir=tmp_path)), ca_path=str(ca.ca_path))
    home.env["GWT_KEY_PASSPHRASE"] = PASSPHRASE
    home.write_config(
        f'[profiles.dev]\nsteps = [{{ use = "iot-certificate", endpoint = "{scripted.endpoint}", '
        f'role_alias = "{ALIAS}", thing_name = "{THING}", certificate = "{device.cert_path}", '
        f'private_key = "{device.key_path}", key_passphrase = "env:GWT_KEY_PASSPHRASE", timeout = 5 }}]\n')
    if how != "none" and isinstance(doc, dict) and "credentials" not in doc:
        doc = dict(doc, message=f"bad key passphrase {_echo(PASSPHRASE, how)} for this certificate")
    scripted.script(status, raw if junk else json.dumps(doc).encode(), drop=drop)
    before = scripted.served
    result = home.run_in_process("credential-process", "--profile", "dev", timeout=60)
    code, out, err = result.returncode, result.stdout, result.stderr
    assert scripted.served == before + 1  # the mutual TLS handshake passed and the route was asked once
    assert all(line.startswith("gw: ") for line in err.splitlines()), err
    answered = _usable(status, junk, drop, doc)
    event("credentials emitted" if code == 0 else "one gw line")
    answer_secrets = [answered["secretAccessKey"], answered["sessionToken"]] if answered else []
    assert_clean(code, out, err, [PASSPHRASE], emits=False)
    key_pem = device.key_path.read_text()
    assert key_pem.splitlines()[1] not in out + err
    if code == 0:
        assert answered is not None, (status, doc, out)
        emitted = json.loads(out)
        assert emitted["Version"] == 1 and emitted["AccessKeyId"] == answered["accessKeyId"]
        assert emitted["SecretAccessKey"] == answered["secretAccessKey"]
        assert emitted["SessionToken"] == answered["sessionToken"]
    else:
        assert [line for line in err.splitlines() if not line.startswith("gw: warning: ")], err
        assert out == ""
        assert_clean(code, out, err, [s for s in answer_secrets if len(s.strip()) >= 8], emits=False)
