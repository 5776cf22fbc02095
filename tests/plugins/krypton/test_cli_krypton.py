"""Full CLI: `gw credential-process` (through the real AWS CLI), `gw krypton call` and `gw krypton probe`.

Each test runs real `gw` subprocesses in the shared isolated home (``aws_home`` of
tests/conftest.py) against the Krypton emulator (HTTPS, local CA) whose Cognito credentials
come from a moto server.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gw.testing import gw_executable
from gw_emulators.krypton import KryptonEmulator

from .conftest import IMSI, OPC, K, write_sim

GW = gw_executable()
AWS = str(Path(sys.executable).with_name("aws"))


class Setup:
    """A gw user (the shared ``aws_home`` harness) whose profile ``sim`` uses the emulated SIM."""

    def __init__(self, home, krypton: KryptonEmulator) -> None:
        self.home = home
        self.dir = home.root
        self.krypton = krypton
        self.sim = write_sim(home.root / "sim.json")
        self.write_config()
        home.env["AWS_DEFAULT_REGION"] = "ap-northeast-1"
        home.aws_config.write_text(
            f"[profile sim]\ncredential_process = {GW} credential-process --profile sim\nregion = ap-northeast-1\n"
        )

    def write_config(self, sim_file: str | None = None) -> None:
        self.home.write_config(
            f"""
            [profiles.sim]
            steps = [{{ use = "krypton", operation = "cognito-credentials", endpoint = "{self.krypton.url}", reader = "emulated", sim_file = "{sim_file or self.sim}" }}]
            """
        )

    def run(self, *argv: str, exe: str | None = None) -> subprocess.CompletedProcess[str]:
        if exe is None:
            return self.home.run_in_process(*argv)
        return subprocess.run([exe, *argv], env=self.home.env, capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL, check=False)


@pytest.fixture
def setup(aws_home, ca, moto_endpoint: str):
    with KryptonEmulator(ca, aws_endpoint=moto_endpoint) as krypton:
        krypton.add_subscriber(IMSI, K, OPC)
        yield Setup(aws_home, krypton)


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


def test_mac_failure_is_one_clear_line_and_nothing_cached(setup: Setup) -> None:
    wrong = write_sim(setup.dir / "wrong.json", k=bytes(16))
    setup.write_config(sim_file=wrong)
    failed = setup.run("credential-process", "--profile", "sim")
    assert failed.returncode == 1
    lines = [line for line in failed.stderr.splitlines() if not line.startswith("gw: using an EMULATED SIM")]
    assert len(lines) == 1 and "MAC failure" in lines[0], failed.stderr
    assert "Traceback" not in failed.stderr
    setup.write_config()
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


@pytest.mark.parametrize("command", [("krypton",), ("krypton", "probe"), ("krypton", "call"), ("krypton", "pin")])
def test_every_krypton_command_has_a_description_and_examples(gw_home, command):
    # issue 9: every subcommand's --help has a description and examples of that very command
    proc = gw_home.run_in_process(*command, "--help", env={"COLUMNS": "300"})  # content, not wrapping (test_help_width)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    description = text.split("\n\n")[1]  # usage, then the description paragraph
    assert not description.startswith(("positional arguments", "options")) and len(description.split()) >= 20
    examples = text.split("\nexamples:\n", 1)[1].splitlines()
    assert examples and all(line.startswith("  gw " + " ".join(command)) for line in examples), examples
