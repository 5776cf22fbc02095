"""Full CLI: `gw credential-process` (through the real AWS CLI), `gw krypton call` and `gw krypton probe`.

Each test runs real `gw` subprocesses with an isolated GW_HOME/GW_CONFIG against the Krypton
emulator (HTTPS, local CA) whose Cognito credentials come from a moto server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gw_emulators.krypton import KryptonEmulator

from .conftest import IMSI, OPC, K, write_sim

GW = str(Path(sys.executable).with_name("gw"))
AWS = str(Path(sys.executable).with_name("aws"))


class Setup:
    def __init__(self, tmp_path: Path, ca, krypton: KryptonEmulator, moto_endpoint: str) -> None:
        self.dir = tmp_path
        self.krypton = krypton
        self.sim = write_sim(tmp_path / "sim.json")
        self.config = tmp_path / "config.toml"
        self.write_config(ca)
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GW_", "SORACOM_"))
        } | {
            "GW_CONFIG": str(self.config),
            "GW_HOME": str(tmp_path / "gw-home"),
            "HOME": str(tmp_path),
            "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-credentials"),
            "AWS_ENDPOINT_URL": moto_endpoint,
            "AWS_DEFAULT_REGION": "ap-northeast-1",
        }
        (tmp_path / "aws-config").write_text(
            f"[profile sim]\ncredential_process = {GW} credential-process --profile sim\nregion = ap-northeast-1\n"
        )

    def write_config(self, ca, sim_file: str | None = None) -> None:
        self.config.write_text(
            f"""
[settings]
ca_bundle = "{ca.ca_path}"

[profiles.sim]
steps = [{{ use = "krypton", operation = "cognito-credentials", endpoint = "{self.krypton.url}", reader = "emulated", sim_file = "{sim_file or self.sim}" }}]
"""
        )

    def run(self, *argv: str, exe: str = GW) -> subprocess.CompletedProcess[str]:
        return subprocess.run([exe, *argv], env=self.env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def setup(tmp_path: Path, ca, moto_endpoint: str):
    with KryptonEmulator(ca, aws_endpoint=moto_endpoint) as krypton:
        krypton.add_subscriber(IMSI, K, OPC)
        yield Setup(tmp_path, ca, krypton, moto_endpoint)


def test_credential_process_through_aws_cli(setup: Setup) -> None:
    first = setup.run("credential-process", "--profile", "sim")
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    assert doc["Version"] == 1 and doc["AccessKeyId"].startswith("ASIA") and doc["Expiration"].endswith("Z")
    assert doc["SecretAccessKey"] not in first.stderr
    who = setup.run("sts", "get-caller-identity", "--profile", "sim", "--output", "json", exe=AWS)
    assert who.returncode == 0, who.stderr
    assert json.loads(who.stdout)["Arn"].endswith(f"KryptonCognitoRole/krypton-{IMSI}")
    # the AWS CLI's run was served from gw's cache: still one handshake, one credentials call
    assert setup.krypton.handshakes == 1
    assert setup.krypton.calls["aws/cognito/credentials"] == 1


def test_krypton_call_reuses_the_step_session(setup: Setup) -> None:
    assert setup.run("credential-process", "--profile", "sim").returncode == 0
    out = setup.run("krypton", "call", "--profile", "sim", "--operation", "subscriber-metadata")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["imsi"] == IMSI
    token = setup.run("krypton", "call", "--profile", "sim", "--operation", "cognito-openid-token", "--param", "x=1")
    assert token.returncode == 0, token.stderr
    assert set(json.loads(token.stdout)) == {"region", "token", "identityId"}
    assert setup.krypton.handshakes == 1  # one SIM handshake for all three runs (encrypted state)
    bad = setup.run("krypton", "call", "--profile", "sim", "--operation", "userdata", "--param", "novalue")
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr


def test_revoked_key_renews_once(setup: Setup) -> None:
    assert setup.run("krypton", "call", "--profile", "sim", "--operation", "userdata").returncode == 0
    for key_id in list(setup.krypton.keys):
        setup.krypton.revoke(key_id)
    again = setup.run("krypton", "call", "--profile", "sim", "--operation", "userdata")
    assert again.returncode == 0, again.stderr
    assert setup.krypton.handshakes == 2


def test_mac_failure_is_one_clear_line_and_nothing_cached(setup: Setup, ca) -> None:
    wrong = write_sim(setup.dir / "wrong.json", k=bytes(16))
    setup.write_config(ca, sim_file=wrong)
    failed = setup.run("credential-process", "--profile", "sim")
    assert failed.returncode == 1
    lines = [line for line in failed.stderr.splitlines() if not line.startswith("gw: using an EMULATED SIM")]
    assert len(lines) == 1 and "MAC failure" in lines[0], failed.stderr
    assert "Traceback" not in failed.stderr
    setup.write_config(ca)
    ok = setup.run("credential-process", "--profile", "sim")
    assert ok.returncode == 0, ok.stderr
    assert setup.krypton.verifies == 1


def test_server_error_is_clear(setup: Setup) -> None:
    setup.krypton.inject("keys", status=503, body='{"code": "SYS0503", "message": "maintenance"}')
    failed = setup.run("krypton", "call", "--profile", "sim", "--operation", "userdata")
    assert failed.returncode == 1
    assert "keys API refused the SIM (HTTP 503 SYS0503: maintenance)" in failed.stderr


def test_probe_lists_readers_without_keys(setup: Setup) -> None:
    out = setup.run("krypton", "probe", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert isinstance(rows, list)
    for row in rows:
        assert not ({"k", "opc", "ck", "key"} & set(row))
    assert K.hex() not in out.stdout + out.stderr
