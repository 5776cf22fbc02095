"""The iot-certificate step through the real gw executable, against the IoT credentials
provider emulator over mutual TLS (credentials minted by moto)."""

from __future__ import annotations

import json

from cryptography.hazmat.primitives import serialization

from gw_emulators.iot import MSG_DURATION, IotCredentialsEmulator
from gw_emulators.tls import LocalCA

from .conftest import (
    ALIAS,
    THING,
    credential_process,
    iot_profile,
    one_error_line,
    write,
)


def test_good_certificate_gets_role_credentials_once(gw_home, iot, device, moto):
    gw_home.write_config(iot_profile("dev", iot.endpoint, device, thing_name=THING))
    doc = credential_process(gw_home, "dev")
    issued = moto.lookup(doc["AccessKeyId"])
    assert issued is not None and issued.arn == f"arn:aws:sts::{moto.account_id}:assumed-role/IotDevice/{THING}"
    assert doc["SessionToken"] == issued.session_token and doc["Expiration"].endswith("Z")
    assert iot.calls["credentials"] == 1
    again = gw_home.run_in_process("credential-process", "--profile", "dev")
    assert again.returncode == 0 and json.loads(again.stdout) == doc and again.stderr == ""
    assert iot.calls["credentials"] == 1  # served from gw's cache
    # the secret is in no file in clear (the cache is encrypted)
    for path in gw_home.state.rglob("*"):
        if path.is_file():
            assert doc["SecretAccessKey"].encode() not in path.read_bytes(), path


def test_without_thing_name_header(gw_home, iot, device, moto):
    gw_home.write_config(iot_profile("dev", iot.endpoint, device))
    doc = credential_process(gw_home, "dev")
    assert moto.lookup(doc["AccessKeyId"]).arn.startswith(f"arn:aws:sts::{moto.account_id}:assumed-role/IotDevice/")


def test_certificate_from_another_ca_fails_the_handshake(gw_home, iot, tmp_path):
    stranger = LocalCA(tmp_path / "other-ca", "someone else's CA").issue("stranger", server=False)
    gw_home.write_config(iot_profile("dev", iot.endpoint, stranger))
    line = one_error_line(gw_home.run_in_process("credential-process", "--profile", "dev"))
    assert "refused the device certificate in the TLS handshake" in line and "UNKNOWN_CA" in line
    assert iot.calls["credentials"] == 0


def test_revoked_certificate_fails_the_handshake(gw_home, iot, device):
    gw_home.write_config(iot_profile("dev", iot.endpoint, device))
    iot.revoke(device)
    line = one_error_line(gw_home.run_in_process("credential-process", "--profile", "dev"))
    assert "refused the device certificate in the TLS handshake" in line and "ACTIVE (not revoked)" in line
    assert iot.calls["credentials"] == 0


def test_unknown_certificate_fails_the_handshake(gw_home, iot):
    unknown = iot.unregistered_certificate("never-registered")
    gw_home.write_config(iot_profile("dev", iot.endpoint, unknown))
    line = one_error_line(gw_home.run_in_process("credential-process", "--profile", "dev"))
    assert "refused the device certificate in the TLS handshake" in line
    assert iot.calls["credentials"] == 0


def test_wrong_role_alias(gw_home, iot, device):
    gw_home.write_config(iot_profile("dev", iot.endpoint, device, role_alias="no-such-alias"))
    line = one_error_line(gw_home.run_in_process("credential-process", "--profile", "dev"))
    assert line == (f"gw: role alias 'no-such-alias' does not exist at {iot.endpoint} (Role alias does not exist): "
                    "check role_alias and the endpoint's region")


def test_wrong_thing_name(gw_home, iot, device):
    gw_home.write_config(iot_profile("dev", iot.endpoint, device, thing_name="someone-elses-thing"))
    line = one_error_line(gw_home.run_in_process("credential-process", "--profile", "dev"))
    assert "refused thing name 'someone-elses-thing' (Invalid thing name passed)" in line
    assert "attached to this certificate" in line


def test_access_denied_by_the_certificate_policy(gw_home, iot, device):
    iot.deny_role_alias(device, ALIAS)
    gw_home.write_config(iot_profile("dev", iot.endpoint, device))
    line = one_error_line(gw_home.run_in_process("credential-process", "--profile", "dev"))
    assert f"access denied for role alias '{ALIAS}' (Access Denied)" in line
    assert "iot:AssumeRoleWithCertificate" in line


def test_duration_longer_than_the_role_allows(gw_home, iot, device, iot_role):
    iot.add_role_alias("long", iot_role, duration=7200, max_session=3600)
    gw_home.write_config(iot_profile("dev", iot.endpoint, device, role_alias="long"))
    line = one_error_line(gw_home.run_in_process("credential-process", "--profile", "dev"))
    assert f"rejected role alias 'long' ({MSG_DURATION})" in line and "credentialDurationSeconds" in line


def test_endpoint_by_address_sends_no_sni(gw_home, iot, device):
    """AWS IoT needs the endpoint host name as SNI; an IP address sends none."""
    gw_home.write_config(iot_profile("dev", f"127.0.0.1:{iot.port}", device))
    line = one_error_line(gw_home.run_in_process("credential-process", "--profile", "dev"))
    assert "certificate is invalid on endpoint" in line and "SNI" in line


def test_key_file_readable_by_others_is_refused(gw_home, iot, device):
    device.key_path.chmod(0o644)
    gw_home.write_config(iot_profile("dev", iot.endpoint, device))
    line = one_error_line(gw_home.run_in_process("credential-process", "--profile", "dev"))
    assert line == f"gw: private key {device.key_path} is readable by others (mode 0644): run chmod 600 {device.key_path}"
    assert iot.calls["credentials"] == 0 and iot.calls["tls-handshake-failed"] == 0  # nothing was sent


def _encrypted_key(device, passphrase: str) -> str:
    key = serialization.load_pem_private_key(device.key_path.read_bytes(), None)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.BestAvailableEncryption(passphrase.encode()))
    path = write(device.key_path.with_name("device-encrypted.key"), pem)
    device.key_path.unlink()  # only the encrypted copy is left
    return path


def test_encrypted_key_with_passphrase_from_the_vault(gw_home, iot, device, moto):
    passphrase = "correct horse battery staple"
    key = _encrypted_key(device, passphrase)
    gw_home.vault_set("iot-key", passphrase)
    gw_home.write_config(iot_profile("dev", iot.endpoint, None, certificate=str(device.cert_path),
                                     private_key=key, key_passphrase="vault:iot-key"))
    doc = credential_process(gw_home, "dev")
    assert moto.lookup(doc["AccessKeyId"]) is not None
    # no clear key and no passphrase anywhere in gw's files
    for path in gw_home.root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"BEGIN PRIVATE KEY" not in data and passphrase.encode() not in data, path


def test_encrypted_key_without_or_with_a_wrong_passphrase(gw_home, iot, device):
    key = _encrypted_key(device, "the right one")
    gw_home.write_config(iot_profile("dev", iot.endpoint, None, certificate=str(device.cert_path), private_key=key))
    line = one_error_line(gw_home.run_in_process("credential-process", "--profile", "dev"))
    assert line.startswith(f"gw: private key {key} is encrypted: set key_passphrase")
    gw_home.vault_set("iot-key", "a wrong one")
    gw_home.write_config(iot_profile("dev", iot.endpoint, None, certificate=str(device.cert_path),
                                     private_key=key, key_passphrase="vault:iot-key"))
    result = gw_home.run_in_process("credential-process", "--profile", "dev")
    line = one_error_line(result)
    assert line == f"gw: cannot decrypt private key {key}: check key_passphrase"
    assert "a wrong one" not in result.stderr + result.stdout


def test_pending_jitr_certificate_is_closed_after_the_handshake(gw_home, iot, tmp_path):
    device_ca = LocalCA(tmp_path / "my-ca", "my device CA")
    iot.register_ca(device_ca.ca_path, activation_delay=None)
    pending = device_ca.issue("pending", server=False)
    gw_home.write_config(iot_profile("dev", iot.endpoint, pending))
    line = one_error_line(gw_home.run_in_process("credential-process", "--profile", "dev"))
    assert "closed the connection right after the TLS handshake" in line and "pending activation" in line
    assert iot.status(pending) == "PENDING_ACTIVATION" and iot.calls["credentials"] == 0


def test_options_are_checked_before_anything_runs(gw_home, iot, device):
    gw_home.write_config(iot_profile("dev", iot.endpoint, None, certificate=str(device.cert_path)))
    result = gw_home.run_in_process("check")
    assert result.returncode != 0 and "certificate and private_key go together" in result.stderr
    gw_home.write_config(iot_profile("dev", iot.endpoint, device, role_alias="bad alias!"))
    result = gw_home.run_in_process("credential-process", "--profile", "dev")
    assert result.returncode != 0 and "role_alias must be" in result.stderr and "Traceback" not in result.stderr
    gw_home.write_config(iot_profile("dev", "", device))
    result = gw_home.run_in_process("check")
    assert result.returncode != 0 and "set endpoint" in result.stderr
    gw_home.write_config(iot_profile("dev", iot.endpoint))
    line = one_error_line(gw_home.run_in_process("credential-process", "--profile", "dev"))
    assert "iot-certificate needs certificate and private_key" in line


def test_missing_certificate_file(gw_home, iot, device, tmp_path):
    gw_home.write_config(iot_profile("dev", iot.endpoint, None, certificate=str(tmp_path / "nope.pem"),
                                     private_key=str(device.key_path)))
    line = one_error_line(gw_home.run_in_process("credential-process", "--profile", "dev"))
    assert line == f"gw: certificate {tmp_path / 'nope.pem'} does not exist"


def test_no_client_certificate_is_refused_by_the_emulator(iot: IotCredentialsEmulator, ca):
    """The emulator's side: a client without a certificate fails the handshake (plugin's own client code)."""
    import ssl

    import pytest

    from gw.plugin import StepError
    from gw_plugins.iot.mtls import Endpoint, get

    context = ssl.create_default_context(cafile=str(ca.ca_path))
    with pytest.raises(StepError, match="asked for a client certificate and got none"):
        get(context, Endpoint.parse(iot.endpoint), f"/role-aliases/{ALIAS}/credentials", {}, timeout=5, what="x")
    assert iot.calls["credentials"] == 0


def test_untrusted_server_certificate(gw_home, iot, device, tmp_path):
    other = LocalCA(tmp_path / "not-the-servers-ca", "not the server's CA")
    gw_home.write_config(iot_profile("dev", iot.endpoint, device, ca=str(other.ca_path)))
    line = one_error_line(gw_home.run_in_process("credential-process", "--profile", "dev"))
    assert line == (f"gw: cannot verify the server certificate of the IoT credentials provider ({iot.endpoint}): "
                    "check ca (Amazon Root CA 1 for AWS endpoints) or settings.ca_bundle")


def test_unreachable_endpoint(gw_home, iot, device):
    port = iot.port
    iot.stop()
    gw_home.write_config(iot_profile("dev", f"localhost:{port}", device))
    line = one_error_line(gw_home.run_in_process("credential-process", "--profile", "dev"))
    assert line.startswith(f"gw: cannot reach the IoT credentials provider (localhost:{port})")


def test_server_errors_and_garbage(gw_home, iot, device):
    gw_home.write_config(iot_profile("dev", iot.endpoint, device))
    iot.inject("credentials", status=503)
    line = one_error_line(gw_home.run_in_process("credential-process", "--profile", "dev"))
    assert line == f"gw: the IoT credentials provider at {iot.endpoint} answered HTTP 503: injected fault"
    iot.inject("credentials", garbage=True)
    line = one_error_line(gw_home.run_in_process("credential-process", "--profile", "dev"))
    assert line == "gw: the IoT credentials provider's answer lacks credentials"
    credential_process(gw_home, "dev")  # and it recovers


def test_chain_shape_first_or_after_an_iot_certificate(gw_home, iot, device):
    """iot-certificate may start a chain (StepType.may_start) or take an iot-certificate, nothing else."""
    step = iot_profile("dev", iot.endpoint, device).split("steps = [", 1)[1].rsplit("]", 1)[0]
    gw_home.write_config(f"""
[profiles.dev]
steps = [{{ use = "aws-keys", access_key_id = "env:GW_T_A", secret_access_key = "env:GW_T_B" }}, {step}]
""")
    result = gw_home.run_in_process("check")
    assert result.returncode != 0
    assert "takes iot-certificate, but step 0 yields aws-credentials" in result.stderr
    gw_home.write_config(iot_profile("dev", iot.endpoint, device))
    assert gw_home.run_in_process("check").returncode == 0


def test_revoked_alert_is_named_in_one_line(gw_home, ca, tmp_path):
    emulator = IotCredentialsEmulator(ca, tmp_path / "iot-alerts", revocation_alerts=True).start()
    try:
        device = emulator.create_certificate("device", thing_name=THING)
        emulator.revoke(device)
        gw_home.write_config(iot_profile("dev", emulator.endpoint, device))
        line = one_error_line(gw_home.run_in_process("credential-process", "--profile", "dev"))
        assert "says the device certificate is revoked (TLS alert certificate_revoked)" in line
        assert emulator.calls["credentials"] == 0
    finally:
        emulator.stop()
