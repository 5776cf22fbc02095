"""curl and openssl (Debian) against the AWS IoT credentials provider emulator (protocols.md section 8).

The requests are the ones AWS's developer guide writes ("Authorizing direct calls to AWS
services": ``curl --cert --key --cacert -H "x-amzn-iot-thingname: ..."
https://<endpoint>/role-aliases/<alias>/credentials``, the alias raw). For port 443, where
AWS IoT's ports table wants ALPN ``x-amzn-http-ca`` for X.509 over HTTPS, curl has no flag to
offer an arbitrary ALPN name: ``openssl s_client -alpn x-amzn-http-ca`` offers it, and curl
(which offers h2 and http/1.1, or nothing with ``--no-alpn``) shows the refusal.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from gw_emulators.iot import IotCredentialsEmulator

ALIAS = "team=a,b@c-d_1"
THING = "sensor-1"
CURL = shutil.which("curl")
OPENSSL = shutil.which("openssl")


def _need(tool: str | None, name: str) -> str:
    if tool is None:
        pytest.fail(f"{name} is not installed (Debian package {name}; tests/install-tools.sh installs it)")
    return tool


@pytest.fixture(scope="module")
def role(moto: Any) -> str:
    return moto.create_role(f"IotInterop{uuid.uuid4().hex[:8]}")


def _emulator(ca: Any, moto: Any, role: str, directory: Any, **kwargs: Any) -> IotCredentialsEmulator:
    emulator = IotCredentialsEmulator(ca, directory, aws_endpoint=moto.url, **kwargs)
    emulator.add_role_alias(ALIAS, role)
    return emulator.start()


@pytest.fixture
def port8443(ca: Any, moto: Any, role: str, tmp_path: Any) -> Iterator[IotCredentialsEmulator]:
    emulator = _emulator(ca, moto, role, tmp_path / "iot")
    yield emulator
    emulator.stop()


@pytest.fixture
def port443(ca: Any, moto: Any, role: str, tmp_path: Any) -> Iterator[IotCredentialsEmulator]:
    emulator = _emulator(ca, moto, role, tmp_path / "iot443", alpn_required=True)
    yield emulator
    emulator.stop()


def curl(emulator: Any, ca: Any, cert: Any, path: str, *extra: str, thing: str | None = THING) -> tuple[int, dict, str]:
    """(HTTP status, lower-cased headers, body) of curl's GET; status 0 when curl got no answer."""
    args = [_need(CURL, "curl"), "-sS", "--max-time", "20", "--cert", str(cert.cert_path), "--key",
            str(cert.key_path), "--cacert", str(ca.ca_path), "-D", "-", *extra]
    if thing:
        args += ["-H", f"x-amzn-iot-thingname: {thing}"]
    result = subprocess.run([*args, f"https://{emulator.endpoint}{path}"], capture_output=True, text=True,
                            timeout=60, check=False)
    if result.returncode != 0:
        return 0, {"curl-exit": str(result.returncode)}, result.stderr
    head, _, body = result.stdout.partition("\n\n")  # text mode: CRLF read as LF
    lines = head.split("\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def s_client(emulator: Any, ca: Any, cert_file: str, key_file: str, path: str, *alpn: str) -> str:
    """openssl s_client's whole output for one GET (SNI = the endpoint's host name)."""
    request = (f"GET {path} HTTP/1.1\r\nHost: {emulator.endpoint}\r\nx-amzn-iot-thingname: {THING}\r\n"
               "Connection: close\r\n\r\n")
    args = [_need(OPENSSL, "openssl"), "s_client", "-connect", f"127.0.0.1:{emulator.port}", "-servername",
            emulator.host_name, "-cert", cert_file, "-key", key_file, "-CAfile", str(ca.ca_path), "-ign_eof"]
    if alpn:
        args += ["-alpn", ",".join(alpn)]
    result = subprocess.run(args, input=request, capture_output=True, text=True, timeout=60, check=False)
    return result.stdout + result.stderr


# -- curl, port 8443 (no ALPN needed) ----------------------------------------------------------
def test_curl_as_aws_documents_it_gets_credentials(ca, port8443):
    device = port8443.create_certificate("curl-device", thing_name=THING)
    status, headers, body = curl(port8443, ca, device, f"/role-aliases/{ALIAS}/credentials")
    assert status == 200, body
    creds = json.loads(body)["credentials"]
    assert creds["accessKeyId"].startswith("ASIA") and creds["sessionToken"] and creds["expiration"].endswith("Z")
    assert port8443.request_paths == [f"/role-aliases/{ALIAS}/credentials"]  # curl sent it raw


def test_curl_with_a_percent_encoded_alias_names_the_same_alias(ca, port8443):
    device = port8443.create_certificate("curl-device", thing_name=THING)
    status, _, body = curl(port8443, ca, device, "/role-aliases/team%3Da%2Cb%40c-d_1/credentials")
    assert status == 200 and json.loads(body)["credentials"]["accessKeyId"]


def test_curl_sees_aws_errors_in_aws_order_with_error_types(ca, port8443, role):
    device = port8443.create_certificate("curl-device", thing_name=THING)
    port8443.add_role_alias("too-long", role, duration=7200, max_session=3600)
    port8443.deny_role_alias(device, "denied")
    cases = [
        ("denied", "other-thing", 403, "Invalid thing name passed", "AccessDeniedException"),
        ("denied", THING, 403, "Access Denied", "AccessDeniedException"),
        ("nowhere", THING, 404, "Role alias does not exist", "ResourceNotFoundException"),
        ("too-long", THING, 400, "The requested CredentialDurationSeconds exceeds the MaxSessionDuration set for "
                                 "the role", "InvalidRequestException"),
    ]
    for alias, thing, status, message, error_type in cases:
        got_status, headers, body = curl(port8443, ca, device, f"/role-aliases/{alias}/credentials", thing=thing)
        assert (got_status, json.loads(body), headers.get("x-amzn-errortype")) == \
            (status, {"message": message}, error_type)


def test_curl_with_an_unknown_certificate_fails_the_handshake(ca, port8443):
    stranger = port8443.unregistered_certificate("stranger")
    status, headers, _ = curl(port8443, ca, stranger, f"/role-aliases/{ALIAS}/credentials")
    assert status == 0 and headers["curl-exit"] in ("35", "56")


# -- port 443: ALPN x-amzn-http-ca -----------------------------------------------------------------
def test_openssl_with_alpn_on_443_gets_credentials(ca, port443):
    device = port443.create_certificate("openssl-device", thing_name=THING)
    out = s_client(port443, ca, str(device.cert_path), str(device.key_path),
                   f"/role-aliases/{ALIAS}/credentials", "x-amzn-http-ca")
    assert "ALPN protocol: x-amzn-http-ca" in out
    assert "HTTP/1.0 200" in out or "HTTP/1.1 200" in out, out[-2000:]
    assert '"accessKeyId": "ASIA' in out or '"accessKeyId":"ASIA' in out
    assert port443.alpn_offered == [["x-amzn-http-ca"]]


def test_openssl_without_alpn_on_443_is_not_authenticated(ca, port443):
    device = port443.create_certificate("openssl-device", thing_name=THING)
    out = s_client(port443, ca, str(device.cert_path), str(device.key_path), f"/role-aliases/{ALIAS}/credentials")
    assert "No ALPN negotiated" in out
    assert " 403 " in out and '"Forbidden"' in out and "accessKeyId" not in out
    assert port443.calls["credentials"] == 1 and port443.alpn_offered == [[]]


def test_curl_on_443_is_refused_with_its_own_alpn_or_none(ca, port443):
    device = port443.create_certificate("curl-device", thing_name=THING)
    for extra in ((), ("--no-alpn",)):
        status, headers, body = curl(port443, ca, device, f"/role-aliases/{ALIAS}/credentials", *extra)
        assert (status, json.loads(body), headers.get("x-amzn-errortype")) == \
            (403, {"message": "Forbidden"}, "ForbiddenException")
    assert port443.alpn_offered == [["h2", "http/1.1"], []]


def test_jitr_needs_the_alpn_on_443(ca, port443, tmp_path):
    """A JITR certificate is registered only on a connection that offered the ALPN; openssl
    sees the first one closed after the handshake (an unexpected EOF, no HTTP answer)."""
    from gw_emulators.tls import LocalCA

    device_ca = LocalCA(tmp_path / "device-ca", "interop device CA")
    port443.register_ca(device_ca.ca_path, activation_delay=None)
    device = device_ca.issue("jitr-device", server=False)
    chain = tmp_path / "chain.pem"
    chain.write_text(device.cert_path.read_text() + device_ca.ca_path.read_text())
    out = s_client(port443, ca, str(chain), str(device.key_path), f"/role-aliases/{ALIAS}/credentials")
    assert " 403 " in out and port443.status(device) is None  # not even looked at
    out = s_client(port443, ca, str(chain), str(device.key_path), f"/role-aliases/{ALIAS}/credentials",
                   "x-amzn-http-ca")
    assert "HTTP/1." not in out and port443.status(device) == "PENDING_ACTIVATION"
    assert port443.calls["jitr-registered"] == 1
