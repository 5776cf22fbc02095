"""Fixtures for the iot plugin tests: the IoT credentials provider emulator (minting through
moto), device certificates, and gw profiles using the ``iot-certificate`` step."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gw_emulators.iot import IotCredentialsEmulator
from gw_emulators.tls import IssuedCert

ALIAS = "device-role-alias"
THING = "sensor-1"
ROLE_NAME = "IotDevice"


@pytest.fixture(scope="session")
def iot_role(moto) -> str:
    """The IAM role the role alias points to, in moto."""
    try:
        return moto.create_role(ROLE_NAME)
    except Exception:  # noqa: BLE001 - already made by an earlier test session against the same moto
        return moto.client("iam").get_role(RoleName=ROLE_NAME)["Role"]["Arn"]


@pytest.fixture
def iot(ca, moto, iot_role, tmp_path) -> Iterator[IotCredentialsEmulator]:
    emulator = IotCredentialsEmulator(ca, tmp_path / "iot-emulator", aws_endpoint=moto.url)
    emulator.add_role_alias(ALIAS, iot_role)
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def device(iot) -> IssuedCert:
    """An ACTIVE certificate with its key (0600), attached to thing THING."""
    return iot.create_certificate("device", thing_name=THING)


def iot_profile(name: str, endpoint: str, cert: IssuedCert | None = None, **options: object) -> str:
    """A profile with one iot-certificate step (TOML)."""
    values: dict[str, object] = {"use": "iot-certificate", "endpoint": endpoint, "role_alias": ALIAS, "timeout": 5}
    if cert is not None:
        values.update(certificate=str(cert.cert_path), private_key=str(cert.key_path))
    values.update(options)
    inline = ", ".join(f"{k} = {json.dumps(v)}" for k, v in values.items())
    return f"[profiles.{name}]\nsteps = [{{ {inline} }}]\n"


def credential_process(home, profile: str) -> dict:
    result = home.run_in_process("credential-process", "--profile", profile)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["Version"] == 1
    return doc


def one_error_line(result) -> str:
    """The single ``gw: ...`` line of a failed run (no traceback)."""
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("gw: ") and "Traceback" not in result.stderr
    return lines[0]


def write(path: Path, text: str | bytes, mode: int = 0o600) -> str:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    path.chmod(mode)
    return str(path)
