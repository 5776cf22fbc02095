"""The `krypton` step end to end: emulator over HTTPS, emulated SIM, moto for Cognito credentials."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

from gw.credentials import AWS, IOT_CERTIFICATE, OPENID_TOKEN, AwsCredentials, IotCertificate
from gw.errors import StepError
from gw.testing import StubStepContext
from gw_emulators.krypton import KryptonEmulator
from gw_plugins import krypton as plugin

from .conftest import IMSI, OPC, K, write_sim


def step():
    (only,) = plugin.gw_step_types()
    return only


def options(krypton: KryptonEmulator, sim_file: str, operation: str, **extra) -> dict:
    values = {name: spec.default for name, spec in step().options.items()}
    values.update(operation=operation, endpoint=krypton.url, reader="emulated", sim_file=sim_file, timeout=5)
    values.update(extra)
    return values


def test_step_type_declaration() -> None:
    s = step()
    assert s.name == "krypton" and s.consumes == ()
    assert s.output_kind({"operation": "cognito-credentials"}) == AWS
    assert s.output_kind({"operation": "cognito-openid-token"}) == OPENID_TOKEN
    assert s.output_kind({"operation": "aws-iot-bootstrap"}) == IOT_CERTIFICATE
    assert s.output_kind({"operation": "subscriber-metadata"}) == plugin.JSON_DOCUMENT == "json-document"
    assert s.output_kind({"operation": "userdata"}) == plugin.JSON_DOCUMENT
    assert s.options["reader"].default == "auto"
    assert s.options["cellular_endpoint"].default == "https://krypton.soracom.io:8036"
    s.check({"reader": "pcsc:0"})
    s.check({"reader": "modem:/dev/ttyUSB2"})
    with pytest.raises(ValueError, match="reader must be"):
        s.check({"reader": "bluetooth:phone"})


def test_cognito_credentials_from_moto(
    ca, moto_endpoint: str, step_ctx: StubStepContext, sim_file: str
) -> None:
    import boto3

    with KryptonEmulator(ca, aws_endpoint=moto_endpoint) as krypton:
        krypton.add_subscriber(IMSI, K, OPC)
        creds = step().run(step_ctx, options(krypton, sim_file, "cognito-credentials"), None)
        assert isinstance(creds, AwsCredentials)
        assert creds.origin == "cognito-identity" and creds.role_chained is False
        assert creds.access_key_id.startswith("ASIA") and creds.session_token
        assert 3500 < (creds.expiration.timestamp() - time.time()) <= 3600
        assert creds.secret_access_key in step_ctx.added_secrets and creds.session_token in step_ctx.added_secrets
        # moto accepts them
        sts = boto3.client(
            "sts",
            endpoint_url=moto_endpoint,
            region_name="ap-northeast-1",
            aws_access_key_id=creds.access_key_id,
            aws_secret_access_key=creds.secret_access_key,
            aws_session_token=creds.session_token,
        )
        assert sts.get_caller_identity()["Arn"].endswith(f"KryptonCognitoRole/krypton-{IMSI}")
        # the session lives in the (encrypted) state for an hour; the next run does no handshake
        (name,) = step_ctx.state
        assert name == f"session-{IMSI}"
        data, expires_at = step_ctx.state[name]
        assert set(data) == {"imsi", "keyId", "ck", "endpoint", "expiresAt"}
        assert 3590 < expires_at - time.time() <= 3600
        step().run(step_ctx, options(krypton, sim_file, "cognito-credentials"), None)
        assert krypton.handshakes == 1
        assert krypton.calls["aws/cognito/credentials"] == 2
        assert "Authenticating the SIM ..." in step_ctx.infos


def test_openid_token(krypton: KryptonEmulator, step_ctx: StubStepContext, sim_file: str) -> None:
    import jwt

    token = step().run(step_ctx, options(krypton, sim_file, "cognito-openid-token"), None)
    assert token.identity_id == krypton.identity_id(IMSI)
    assert token.region == "ap-northeast-1"
    claims = jwt.decode(token.token, krypton.openid_public_key_pem(), algorithms=["RS256"],
                        audience="ap-northeast-1:00000000-0000-4000-8000-00000000cafe")
    assert claims["sub"] == token.identity_id
    assert token.expiration is not None and 500 < token.expiration.timestamp() - time.time() <= 600


def test_metadata_and_userdata(krypton: KryptonEmulator, step_ctx: StubStepContext, sim_file: str) -> None:
    meta = step().run(step_ctx, options(krypton, sim_file, "subscriber-metadata"), None)
    assert meta.document["imsi"] == IMSI and meta.expiration is None
    krypton.subscribers[IMSI].userdata = "plain text"
    text = step().run(step_ctx, options(krypton, sim_file, "userdata"), None)
    assert text.document == "plain text"
    krypton.subscribers[IMSI].userdata, krypton.subscribers[IMSI].userdata_type = '{"a": 1}', "application/json"
    doc = step().run(step_ctx, options(krypton, sim_file, "userdata"), None)
    assert doc.document == {"a": 1}
    assert krypton.handshakes == 1


def test_iot_bootstrap_files(krypton: KryptonEmulator, step_ctx: StubStepContext, sim_file: str, ca) -> None:
    from cryptography import x509

    cert = step().run(step_ctx, options(krypton, sim_file, "aws-iot-bootstrap"), None)
    assert isinstance(cert, IotCertificate)
    directory = Path(step_ctx.state_dir) / "iot" / IMSI
    assert Path(cert.certificate_path).parent == directory
    for path in (cert.certificate_path, cert.private_key_path, cert.root_ca_path):
        assert stat.S_IMODE(Path(path).stat().st_mode) == 0o600
    for d in (directory, directory.parent):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700
    loaded = x509.load_pem_x509_certificate(Path(cert.certificate_path).read_bytes())
    assert loaded.issuer == ca.certificate.subject
    assert Path(cert.root_ca_path).read_bytes() == ca.ca_path.read_bytes()
    assert "PRIVATE KEY" in Path(cert.private_key_path).read_text()
    assert cert.host == krypton.iot_host and cert.client_id == IMSI and cert.region == "ap-northeast-1"
    assert cert.expiration == loaded.not_valid_after_utc.replace(microsecond=0)


def test_cellular_mode(ca, step_ctx: StubStepContext) -> None:
    with KryptonEmulator(ca, cellular_imsi=IMSI) as krypton:
        krypton.add_subscriber(IMSI, K, OPC)
        cert = step().run(
            step_ctx,
            options(krypton, "", "aws-iot-bootstrap", reader="cellular", cellular_endpoint=krypton.url),
            None,
        )
        assert Path(cert.certificate_path).parent == Path(step_ctx.state_dir) / "iot" / IMSI
        assert krypton.handshakes == 0 and step_ctx.state == {}


def test_step_errors_are_one_line(krypton: KryptonEmulator, step_ctx: StubStepContext, tmp_path: Path) -> None:
    with pytest.raises(StepError, match=r"cannot open the SIM \(emulated\): reader 'emulated' needs a sim_file"):
        step().run(step_ctx, options(krypton, "", "userdata"), None)
    wrong = write_sim(tmp_path / "wrong.json", k=bytes(16))
    with pytest.raises(StepError, match="MAC failure"):
        step().run(step_ctx, options(krypton, wrong, "userdata"), None)
    assert step_ctx.state == {}
    krypton.inject("aws/cognito/credentials", status=200, body='{"identityId": "x", "credentials": {}}')
    good = write_sim(tmp_path / "good.json")
    with pytest.raises(StepError, match="cognito-credentials answer lacks"):
        step().run(step_ctx, options(krypton, good, "cognito-credentials"), None)


def test_jp_coverage_default_endpoint() -> None:
    from gw_plugins.krypton.protocol import endpoint_for

    assert endpoint_for("jp", None) + "/v1/keys" == "https://api.soracom.io/v1/keys"
