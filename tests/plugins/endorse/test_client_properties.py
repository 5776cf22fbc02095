"""Property-based runs of gw's device side (steps ``endorse`` and ``endorse-exchange``) against
whatever SORACOM Endorse and the exchange service answer: any status, any JSON body, any bytes.

Each upstream is played byte for byte by the scripted HTTPS server of the core hardening tests
(tests/core/hardening_upstream.py); a good token comes from the Endorse emulator. For every
generated answer, gw (its real CLI entry point, in this process for speed; a few examples run
the real executable):
- prints only its own ``gw: ...`` lines on stderr, never a traceback nor ``gw: internal error``;
- exits non-zero unless the answer really was a usable credential;
- never shows the Endorse token (gw's secret here) nor a secret the service put in its answer,
  in any form (raw, repr, JSON, URL-encoded, cut to 8+ characters), on stderr, nor on stdout
  unless it is the credential being emitted.
Bounded: well under 30 s for the module.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.core.hardening_upstream import ScriptedUpstream
from tests.core.test_properties import GW, assert_clean, fresh_home, run_gw, secrets_strategy

FAST = settings(max_examples=25, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
JSON_HEADERS = {"Content-Type": "application/json"}
CREDENTIAL_KEYS = ["AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration", "Region", "Imsi"]
IOT_KEYS = ["url", "expiration", "clientId", "topic_prefix"]

JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True), st.text(max_size=16)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=5,
)
TIMES = st.one_of(st.sampled_from(["2999-01-01T00:00:00Z", "2000-01-01T00:00:00Z", "not a date", "", "9" * 30,
                                   "2999-13-45T99:00:00Z", "1e309"]),
                  st.integers(-2**70, 2**70), JSONISH)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_like(header: Any, payload: Any, secret: str) -> str:
    """A compact JWS of any JSON header and payload, with a signature made of the secret:
    what a broken or hostile Endorse may hand out."""
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}.{b64(secret.encode())}"


def echo(secret: str, how: str) -> str:
    return {"raw": secret, "repr": repr(secret), "json": json.dumps(secret), "url": quote(secret, safe=""),
            "cut": secret[: len(secret) // 2 + 4], "none": ""}[how]


@pytest.fixture(scope="module")
def emulator(ca):
    from gw_emulators.endorse import EndorseEmulator

    with EndorseEmulator(ca) as emu:
        yield emu


@pytest.fixture(scope="module")
def endorse_upstream(ca):
    with ScriptedUpstream(ca) as server:
        yield server


class ShapedUpstream(ScriptedUpstream):
    """The scripted upstream, whose body may be shaped from the request: the exchange service only
    learns the device's token from the request, and a hostile one echoes it back."""

    def __init__(self, ca: Any) -> None:
        super().__init__(ca)
        self.shape: Any = None  # (status, fn(request) -> body) or None for the scripted answer

    def _reply(self, request: Any) -> Any:
        if self.shape is not None:
            status, make = self.shape
            self.answer(status, make(request), JSON_HEADERS)
        return super()._reply(request)


@pytest.fixture(scope="module")
def exchange_upstream(ca):
    with ShapedUpstream(ca) as server:
        yield server


def bearer(request: Any) -> str:
    return (request.header("authorization") or "").removeprefix("Bearer ")


@pytest.fixture
def base_env(tmp_path) -> dict[str, str]:
    from tests.conftest import clean_environ

    env = clean_environ()
    env.update(HOME=str(tmp_path / "home"), GW_QUIET="1", AWS_EC2_METADATA_DISABLED="true",
               AWS_CONFIG_FILE=str(tmp_path / "home" / "aws-config"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "home" / "aws-credentials"))
    (tmp_path / "home").mkdir(exist_ok=True)
    return env


def profile(ca: Any, endorse_url: str, exchange_url: str, *, verify: bool, key_store: str, output: str) -> str:
    return f"""
[settings]
ca_bundle = "{ca.ca_path}"
[profiles.d]
region = "us-east-1"
steps = [
  {{ use = "endorse", endpoint = "{endorse_url}", verify = {str(verify).lower()}, key_store_url = "{key_store}" }},
  {{ use = "endorse-exchange", url = "{exchange_url}/exchange", output = "{output}" }},
]
"""


# gw's fallback line for an exception a step let escape (a plugin bug): the steps must say what went wrong
STEP_CRASH = re.compile(r"step \d+ \(endorse(-exchange)?\) failed: \w+: ")


def assert_own_lines(code: int, out: str, err: str) -> None:
    assert not STEP_CRASH.search(err), err
    if code != 0:
        assert out == "" and err.startswith("gw: ") and len(err.splitlines()) == 1, (code, out, err)


def command(output: str) -> list[str]:
    return ["iot-url", "--profile", "d"] if output == "iot-wss" else ["credential-process", "--profile", "d"]


# -- whatever SORACOM Endorse answers ------------------------------------------------------------------------
TOKEN_KINDS = ["jsonish", "secret-text", "jwt-any-claims", "jwt-endorse-claims"]
ENDORSE_CLAIMS = st.fixed_dictionaries(
    {}, optional={"iss": st.one_of(st.just("https://soracom.io"), JSONISH), "aud": JSONISH, "sub": JSONISH,
                  "exp": TIMES, "nbf": TIMES, "iat": TIMES, "jti": JSONISH,
                  "soracom-endorse-claim": st.one_of(JSONISH, st.fixed_dictionaries(
                      {}, optional={"imsi": JSONISH, "imei": JSONISH, "requestParameters": JSONISH}))})


@settings(FAST, max_examples=40)
@given(status=st.sampled_from([200, 200, 200, 302, 400, 403, 500]), kind=st.sampled_from(TOKEN_KINDS),
       header=st.one_of(JSONISH, st.fixed_dictionaries({"alg": st.sampled_from(["RS256", "none", "HS256"]),
                                                         "kid": st.one_of(st.text(max_size=12), JSONISH)})),
       claims=ENDORSE_CLAIMS, any_doc=JSONISH, junk=st.booleans(), raw=st.binary(max_size=40),
       verify=st.booleans(), secret=secrets_strategy(), how=st.sampled_from(["quote", "none"]))
@example(status=200, kind="jwt-endorse-claims", header=None, claims={"exp": 2**70}, any_doc=None, junk=False, raw=b"",
         verify=False, secret="S3cr0000000000000000", how="none")  # exp beyond any date
@example(status=200, kind="jwt-endorse-claims", header=None, claims={"exp": -2**40}, any_doc=None, junk=False, raw=b"",
         verify=False, secret="S3cr0000000000000000", how="none")
def test_any_endorse_answer_gives_gw_lines_only(base_env, tmp_path, ca, emulator, endorse_upstream, exchange_upstream,
                                               status, kind, header, claims, any_doc, junk, raw, verify, secret, how):
    if kind == "jsonish":
        token: Any = any_doc
    elif kind == "secret-text":
        token = secret
    else:
        token = jwt_like(header if kind == "jwt-any-claims" else {"alg": "RS256", "kid": emulator.kid}, claims, secret)
    doc: Any = {"token": token}
    echoed = jwt_like({"alg": "RS256", "kid": emulator.kid}, claims, secret)
    if status != 200:  # an error that quotes a token: gw relays the message, but never a token in it
        doc = {"code": "END0001", "message": f"refused {echoed if how != 'none' else 'it'}"}
    endorse_upstream.answer(status, raw if junk else json.dumps(doc).encode(), JSON_HEADERS)
    # the exchange service would answer credentials: gw must not get there with a bad token
    exchange_upstream.answer(200, json.dumps({"AccessKeyId": "ASIAEXAMPLEEXAMPLE01", "SecretAccessKey": "x" * 40,
                                              "SessionToken": "FwoG" + "t" * 60,
                                              "Expiration": "2999-01-01T00:00:00Z"}).encode(), JSON_HEADERS)
    env = fresh_home(base_env, tmp_path, profile(ca, endorse_upstream.url, exchange_upstream.url, verify=verify,
                                                 key_store=emulator.key_store_url, output="aws"))
    before = len(exchange_upstream.requests)
    code, out, err = run_gw(["credential-process", "--profile", "d"], env)
    secrets = [secret, echoed] + ([token] if isinstance(token, str) and len(token) >= 8 else [])
    assert_clean(code, out, err, secrets, emits=False)
    if verify or status != 200 or junk or kind in ("jsonish", "secret-text"):
        # verify=true: nothing but a token signed by Endorse's key, with this request's nonce, passes
        assert code != 0 and len(exchange_upstream.requests) == before, (code, out, err)
    assert_own_lines(code, out, err)


# -- whatever the exchange service answers to a good token -----------------------------------------------------
CREDENTIAL_FIELDS = st.fixed_dictionaries({}, optional={
    "AccessKeyId": st.one_of(st.just("ASIAEXAMPLEEXAMPLE01"), JSONISH),
    "SecretAccessKey": st.one_of(st.just("<secret>"), JSONISH),
    "SessionToken": st.one_of(st.just("FwoG" + "t" * 60), st.just("<secret>"), JSONISH),
    "Expiration": TIMES, "Region": JSONISH, "Imsi": JSONISH,
    "url": st.one_of(st.just("wss://x-ats.iot.us-east-1.amazonaws.com/mqtt?X-Amz-Signature=<secret>"),
                     st.just("https://<secret>"), JSONISH),
    "expiration": TIMES, "clientId": JSONISH, "topic_prefix": JSONISH,
    "code": JSONISH, "message": st.one_of(st.just("token <token> refused"), JSONISH),
})


def fill(value: Any, secret: str, token: str, how: str) -> Any:
    """Put the secret and the device's token (echoed ``how``) where the template says."""
    if isinstance(value, str):
        return value.replace("<secret>", secret).replace("<token>", echo(token, how))
    if isinstance(value, dict):
        return {k: fill(v, secret, token, how) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, secret, token, how) for v in value]
    return value


@settings(FAST, max_examples=45)
@given(status=st.sampled_from([200, 200, 200, 201, 302, 400, 401, 403, 500, 502]), fields=CREDENTIAL_FIELDS,
       complete=st.sampled_from(["none", "good", "mixed"]), junk=st.booleans(), raw=st.binary(max_size=40), top=st.one_of(st.just(None), JSONISH),
       output=st.sampled_from(["aws", "iot-wss"]), secret=secrets_strategy(),
       how=st.sampled_from(["raw", "repr", "json", "url", "cut", "none"]))
@example(status=200, fields={"Expiration": 2**70, "expiration": -2**70}, complete="mixed", junk=False, raw=b"", top=None,
         output="aws", secret="S3cr0000000000000000", how="none")  # times beyond any date
@example(status=200, fields={"Expiration": 2**70, "expiration": -2**70}, complete="mixed", junk=False, raw=b"", top=None,
         output="iot-wss", secret="S3cr0000000000000000", how="none")
@example(status=200, fields={"SecretAccessKey": 7, "SessionToken": ["x"], "url": {"a": 1}}, complete="mixed", junk=False,
         raw=b"", top=None, output="aws", secret="S3cr0000000000000000", how="none")  # secrets of the wrong type
@example(status=401, fields={"code": "token_replayed", "message": "token <token> refused"}, complete="none", junk=False,
         raw=b"", top=None, output="aws", secret="S3cr0000000000000000", how="cut")  # a hostile echo of the token
def test_any_exchange_answer_gives_gw_lines_only(base_env, tmp_path, ca, emulator, exchange_upstream, status, fields,
                                                complete, junk, raw, top, output, secret, how):
    # a good token from the Endorse emulator (it echoes gw's nonce), verified by gw against its key
    env = fresh_home(base_env, tmp_path, profile(ca, emulator.url, exchange_upstream.url, verify=True,
                                                 key_store=emulator.key_store_url, output=output))
    issued = len(emulator.issued)
    doc: Any = dict(fields)
    good = {"AccessKeyId": "ASIAEXAMPLEEXAMPLE01", "SecretAccessKey": "<secret>", "SessionToken": "FwoG" + "t" * 60,
            "Expiration": "2999-01-01T00:00:00Z", "url": "wss://x-ats.iot.us-east-1.amazonaws.com/mqtt?s=<secret>",
            "expiration": "2999-01-01T00:00:00Z", "clientId": "440101234567890"}
    if complete == "good":  # a full, well-formed answer (extra fields as generated)
        doc = {**good, **{k: v for k, v in fields.items() if k in ("Region", "Imsi", "code", "message")}}
    elif complete == "mixed":  # well-formed but for the generated fields: each field's own robustness
        doc = {**good, **fields}
    if top is not None:
        doc = top  # not an object at all
    def body(request: Any) -> bytes:  # the token is only known once gw sends it
        return raw if junk else json.dumps(fill(doc, secret, bearer(request), how)).encode()

    before = len(exchange_upstream.requests)
    exchange_upstream.shape = (status, body)
    try:
        code, out, err = run_gw(command(output), env)
    finally:
        exchange_upstream.shape = None
    assert len(emulator.issued) == issued + 1 and len(exchange_upstream.requests) == before + 1
    token = bearer(exchange_upstream.requests[-1])
    assert token.count(".") == 2 and len(token) > 100
    # the device's token never shows, not even on success; the service's secret only as the emitted credential
    assert_clean(code, out, err, [token], emits=False)
    assert_clean(code, out, err, [secret], emits=True)
    usable = status == 200 and not junk and top is None and complete == "good"
    if complete != "mixed" and not usable:
        assert code != 0 and out == "", (code, out, err)
    if code == 0:
        if output == "iot-wss":
            assert out.startswith("wss://") and out.count("\n") == 1
        else:
            emitted = json.loads(out)
            assert emitted["Version"] == 1 and emitted["SecretAccessKey"] == secret
    assert_own_lines(code, out, err)


# -- a few runs of the real executable ----------------------------------------------------------------------
@settings(FAST, max_examples=5)
@given(status=st.sampled_from([200, 400, 500]), body=st.one_of(JSONISH.map(lambda d: json.dumps(d).encode()),
                                                               st.binary(max_size=30)),
       secret=secrets_strategy())
def test_the_real_executable_on_generated_exchange_answers(base_env, tmp_path, ca, emulator, exchange_upstream,
                                                           status, body, secret):
    env = fresh_home(base_env, tmp_path, profile(ca, emulator.url, exchange_upstream.url, verify=False,
                                                 key_store=emulator.key_store_url, output="aws"))
    env["GWT_SECRET"] = secret
    exchange_upstream.answer(status, body, JSON_HEADERS)
    before = len(exchange_upstream.requests)
    result = subprocess.run([GW, "credential-process", "--profile", "d"], check=False, env=env, capture_output=True,
                            stdin=subprocess.DEVNULL, timeout=60)
    out, err = result.stdout.decode("utf-8", "replace"), result.stderr.decode("utf-8", "replace")
    assert len(exchange_upstream.requests) == before + 1
    token = bearer(exchange_upstream.requests[-1])
    assert token.count(".") == 2
    assert_clean(result.returncode, out, err, [token], emits=False)
    assert result.returncode != 0
    assert_own_lines(result.returncode, out, err)
