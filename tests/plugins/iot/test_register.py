"""gw iot register: the JITR dance against the emulator, whose activation delay runs on an
injected clock (here: the number of refused connections), so no test waits for real time
beyond gw's own short backoff."""

from __future__ import annotations

import pytest

from gw_emulators.iot import IotCredentialsEmulator
from gw_emulators.tls import LocalCA

from .conftest import one_error_line

PROOF = ("accepted (the credentials provider answered as to an authenticated certificate: "
         "HTTP 404 Role alias does not exist)")


@pytest.fixture
def jitr(ca, tmp_path):
    """(emulator, device CA) where the emulator's clock is the count of refused connections."""
    holder: dict[str, IotCredentialsEmulator] = {}
    emulator = IotCredentialsEmulator(ca, tmp_path / "iot", clock=lambda: float(holder["e"].calls["refused-pending"]))
    holder["e"] = emulator
    emulator.start()
    try:
        yield emulator, LocalCA(tmp_path / "device-ca", "my device CA")
    finally:
        emulator.stop()


def register(home, emulator, device, device_ca, *extra: str):
    return home.run_in_process("iot", "register", "--certificate", str(device.cert_path), "--key", str(device.key_path),
                    "--ca-certificate", str(device_ca.ca_path), "--endpoint", emulator.endpoint,
                    "--interval", "0.05", *extra, timeout=60)


def test_refused_while_pending_then_accepted(gw_home, jitr):
    emulator, device_ca = jitr
    emulator.register_ca(device_ca.ca_path, activation_delay=3)  # activated after 3 refusals
    device = device_ca.issue("device", server=False)
    gw_home.write_config("")
    result = register(gw_home, emulator, device, device_ca, "--timeout", "30")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 4, result.stdout
    for number, line in enumerate(lines[:3], 1):
        assert line.startswith(f"attempt {number}: refused (") and "not active yet; next attempt in" in line
    assert lines[3] == f"attempt 4: {PROOF}: the certificate is registered and ACTIVE"
    assert emulator.status(device) == "ACTIVE" and emulator.calls["jitr-registered"] == 1
    assert result.stderr == ""
    # the temporary chain file is gone
    assert not list((gw_home.state / "iot-register").glob("*"))


def test_timeout_when_never_activated(gw_home, jitr):
    emulator, device_ca = jitr
    emulator.register_ca(device_ca.ca_path, activation_delay=None)
    device = device_ca.issue("device", server=False)
    gw_home.write_config("")
    result = register(gw_home, emulator, device, device_ca, "--timeout", "0.5")
    line = one_error_line(result)
    assert line.startswith("gw: AWS IoT did not accept the certificate within 0.5 s (")
    assert "auto-registration" in line
    attempts = result.stdout.strip().splitlines()
    assert len(attempts) >= 2 and all(" refused (" in a for a in attempts)
    assert emulator.status(device) == "PENDING_ACTIVATION"


def test_bad_input_is_one_line(gw_home, jitr, tmp_path):
    emulator, device_ca = jitr
    device = device_ca.issue("device", server=False)
    gw_home.write_config("")
    device.key_path.chmod(0o640)
    line = one_error_line(register(gw_home, emulator, device, device_ca))
    assert line == f"gw: private key {device.key_path} is readable by its group (mode 0640): run chmod 600 {device.key_path}"
    device.key_path.chmod(0o600)
    missing = tmp_path / "missing.pem"
    line = one_error_line(gw_home.run_in_process("iot", "register", "--certificate", str(missing), "--key", str(device.key_path),
                                      "--ca-certificate", str(device_ca.ca_path), "--endpoint", emulator.endpoint))
    assert line == f"gw: cannot read certificate {missing}"
    line = one_error_line(gw_home.run_in_process("iot", "register", "--certificate", str(device.cert_path), "--key",
                                      str(device.key_path), "--ca-certificate", str(device_ca.ca_path),
                                      "--endpoint", emulator.endpoint, "--timeout", "0"))
    assert "--timeout and --interval must be positive" in line


def test_encrypted_key_passphrase_is_asked_for(gw_home, jitr, tmp_path):
    from cryptography.hazmat.primitives import serialization

    emulator, device_ca = jitr
    emulator.register_ca(device_ca.ca_path, activation_delay=0)  # active once seen (after one refusal)
    device = device_ca.issue("device", server=False)
    key = serialization.load_pem_private_key(device.key_path.read_bytes(), None)
    device.key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.BestAvailableEncryption(b"s3cret-pass")))
    log = tmp_path / "asked.log"
    askpass = tmp_path / "askpass.sh"
    askpass.write_text(f'#!/bin/sh\necho "$1" >> "{log}"\necho s3cret-pass\n')
    askpass.chmod(0o700)
    gw_home.extra_settings["askpass"] = str(askpass)
    gw_home.write_config("")
    result = register(gw_home, emulator, device, device_ca, "--timeout", "30")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("attempt 2: accepted")
    assert log.read_text().strip() == f"Passphrase of {device.key_path}"
    assert "s3cret-pass" not in result.stdout + result.stderr


def test_revoked_certificate_fails_at_once(gw_home, ca, tmp_path):
    """The endpoint refuses the certificate with the TLS certificate_revoked alert (the emulator's
    OpenSSL CRL check): gw stops after the first attempt with one line, no retry until the timeout."""
    emulator = IotCredentialsEmulator(ca, tmp_path / "iot", revocation_alerts=True).start()
    try:
        device = emulator.create_certificate("revoked-device")
        emulator.revoke(device)
        gw_home.write_config("")
        result = register(gw_home, emulator, device, emulator.device_ca, "--timeout", "60")
        line = one_error_line(result)
        assert line.startswith(f"gw: AWS IoT ({emulator.endpoint}) says the device certificate is revoked")
        assert "use a new certificate" in line
        assert result.stdout == ""  # no "attempt N: refused ... not active yet" line
        assert emulator.wait_count("tls-handshake-failed") == 1  # exactly one connection
    finally:
        emulator.stop()


def test_revocation_alert_emulator_still_serves_active_certificates(gw_home, ca, tmp_path):
    emulator = IotCredentialsEmulator(ca, tmp_path / "iot", revocation_alerts=True).start()
    try:
        revoked = emulator.create_certificate("revoked-device")
        emulator.revoke(revoked)
        good = emulator.create_certificate("good-device")
        gw_home.write_config("")
        result = register(gw_home, emulator, good, emulator.device_ca, "--timeout", "30")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"attempt 1: {PROOF}: the certificate is registered and ACTIVE"
    finally:
        emulator.stop()


def test_help_has_description_and_examples(gw_home):
    result = gw_home.run_in_process("iot", "register", "--help", env={"COLUMNS": "300"})  # content, not wrapping
    assert result.returncode == 0, result.stderr
    assert "Just-in-time registration (JITR)" in result.stdout
    examples = result.stdout.split("examples:\n", 1)[1]
    assert "gw iot register --certificate device.pem --key device.key --ca-certificate" in examples


# -- what proves the certificate authenticated (protocols.md section 8) ---------------------
def test_port_443_with_alpn_the_jitr_dance_works(gw_home, ca, tmp_path):
    """The emulator stands for port 443: a client certificate only with ALPN x-amzn-http-ca.
    gw offers it, so JITR happens and the certificate is ACTIVE when gw says so."""
    holder: dict[str, IotCredentialsEmulator] = {}
    emulator = IotCredentialsEmulator(ca, tmp_path / "iot", alpn_required=True,
                                      clock=lambda: float(holder["e"].calls["refused-pending"]))
    holder["e"] = emulator
    emulator.start()
    try:
        device_ca = LocalCA(tmp_path / "device-ca", "my device CA")
        emulator.register_ca(device_ca.ca_path, activation_delay=1)
        device = device_ca.issue("device", server=False)
        gw_home.write_config("")
        result = register(gw_home, emulator, device, device_ca, "--timeout", "30")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().splitlines()[-1] == f"attempt 2: {PROOF}: the certificate is registered and ACTIVE"
        assert emulator.status(device) == "ACTIVE"
        assert emulator.alpn_offered and all(offered == ["x-amzn-http-ca"] for offered in emulator.alpn_offered)
    finally:
        emulator.stop()


def test_an_answer_without_a_client_certificate_is_not_success(gw_home, ca, tmp_path):
    """An HTTPS server that never asked for the certificate answers 404: no proof, one line."""
    from gw_emulators.httpserver import EmulatorServer

    server = EmulatorServer(ca).start()
    try:
        device_ca = LocalCA(tmp_path / "device-ca", "my device CA")
        device = device_ca.issue("device", server=False)
        gw_home.write_config("")
        result = gw_home.run_in_process("iot", "register", "--certificate", str(device.cert_path), "--key",
                             str(device.key_path), "--ca-certificate", str(device_ca.ca_path),
                             "--endpoint", f"localhost:{server.port}", "--interval", "0.05", "--timeout", "5")
        line = one_error_line(result)
        assert line.startswith("gw: the endpoint answered HTTP 404") and "iot:CredentialProvider" in line
        assert "registered and ACTIVE" not in result.stdout
    finally:
        server.stop()


@pytest.mark.parametrize(("status", "body", "alpn", "port", "verdict"), [
    (200, b'{"credentials": {"accessKeyId": "ASIA"}}', "x-amzn-http-ca", 443, True),
    (403, b'{"message": "Access Denied"}', "x-amzn-http-ca", 443, True),
    (403, b'{"message": "Invalid thing name passed"}', None, 8443, True),
    (404, b'{"message": "Role alias does not exist"}', None, 8443, True),
    (400, b'{"message": "Unable to assume the role, or the role to assume does not exist"}', None, 8443, True),
    (403, b'{"message": "Certificate is invalid on this endpoint"}', "x-amzn-http-ca", 443, False),
    (403, b'{"message": "Access Denied"}', None, 443, None),  # 443 without the ALPN: cert not used
    (404, b'{"message": "Role alias does not exist"}', "h2", 443, None),
    (200, b"<html>welcome</html>", None, 8443, None),
    (403, b'{"message": "Forbidden"}', None, 8443, None),
    (404, b"", None, 8443, None),
])
def test_judge(status, body, alpn, port, verdict):
    from gw_plugins.iot.register import judge

    assert judge(status, body, alpn=alpn, port=port)[0] is verdict


def test_an_alias_that_is_not_aws_shaped_is_refused(gw_home, jitr):
    emulator, device_ca = jitr
    device = device_ca.issue("device", server=False)
    gw_home.write_config("")
    line = one_error_line(register(gw_home, emulator, device, device_ca, "--role-alias", "a/b"))
    assert "--role-alias must be" in line
