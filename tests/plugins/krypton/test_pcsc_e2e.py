"""Krypton end to end through the REAL PC/SC stack and the real `gw` executable.

VirtualUsim -> VpcdCard -> pcscd (vsmartcard vpcd) -> pyscard -> `gw` subprocess with
``reader = "pcsc:Virtual PCD 00 00"`` -> Krypton emulator over HTTPS -> Cognito credentials
minted by moto -> the real AWS CLI through ``credential_process``, and `gw login --print`
against the federation emulator.

Needs pcscd, vsmartcard-vpcd and pyscard (tests/pcsc/install.sh): skipped without them,
failed under CI=true (fixtures ``pcscd`` / ``vpcd_insert`` in tests/conftest.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from gw_emulators.federation import FederationEmulator
from gw_emulators.krypton import KryptonEmulator
from gw_emulators.usim import VirtualUsim

from .conftest import IMSI, K, OPC

READER = "Virtual PCD 00 00"
EMPTY_READER = "Virtual PCD 00 01"
GW = str(Path(sys.executable).with_name("gw"))
AWS = str(Path(sys.executable).with_name("aws"))
PROFILE = "sim"


@pytest.fixture
def krypton(ca, moto):
    """The Krypton emulator; its Cognito credentials come from the MotoStack (so federation knows them)."""
    with KryptonEmulator(ca, aws_endpoint=moto.url) as emulator:
        emulator.add_subscriber(IMSI, K, OPC, sqn=0)
        yield emulator


@pytest.fixture
def federation(ca, moto):
    with FederationEmulator(ca, moto) as emulator:
        yield emulator


@pytest.fixture
def usim() -> VirtualUsim:
    return VirtualUsim(IMSI, K, OPC, sqn=0)


class Device:
    """A gw user whose profile ``sim`` reads the SIM through a PC/SC reader."""

    def __init__(self, home, krypton: KryptonEmulator, federation: FederationEmulator | None) -> None:
        self.home = home
        self.krypton = krypton
        self.federation = federation
        home.aws_config.write_text(
            f"[profile {PROFILE}]\ncredential_process = {GW} credential-process --profile {PROFILE}\n"
            "region = us-east-1\n"
        )
        self.configure(f"pcsc:{READER}")

    def configure(self, reader: str) -> None:
        login = ""
        if self.federation is not None:
            login = (
                f'\n[profiles.{PROFILE}.login]\nendpoint = "{self.federation.federation_url}"\n'
                f'destination = "{self.federation.console_url}"\n'
            )
        self.home.write_config(
            f"""
            [profiles.{PROFILE}]
            steps = [{{ use = "krypton", operation = "cognito-credentials", endpoint = "{self.krypton.url}", reader = "{reader}", timeout = 15 }}]
            """
            + login
        )

    def gw(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return self.home.run(*args, **kwargs)

    def fetch(self) -> dict:
        out = self.gw("credential-process", "--profile", PROFILE)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def clear_profile(self) -> None:
        out = self.gw("cache", "clear", "--profile", PROFILE)
        assert out.returncode == 0, out.stderr

    def session_entries(self) -> list[Path]:
        """gw's encrypted Krypton session entries for the IMSI (the per-plugin state)."""
        return sorted(self.home.cache_dir.glob(f"_state.*session-{IMSI}*"))

    def profile_entries(self) -> list[Path]:
        return sorted(p for p in self.home.cache_dir.glob(f"{PROFILE}*") if not p.name.startswith("_"))


@pytest.fixture
def device(aws_home, krypton, federation) -> Device:
    return Device(aws_home, krypton, federation)


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_aws_cli_and_console_login_through_pcsc(device: Device, vpcd_insert, usim, moto) -> None:
    vpcd_insert(usim)
    who = subprocess.run(
        [AWS, "sts", "get-caller-identity", "--profile", PROFILE, "--output", "json"],
        env=device.home.env, capture_output=True, text=True, timeout=120,
    )
    assert who.returncode == 0, who.stderr
    assert json.loads(who.stdout)["Arn"].endswith(f"KryptonCognitoRole/krypton-{IMSI}")
    assert device.krypton.handshakes == 1 and device.krypton.verifies == 1
    assert usim.sqn == 1  # the SIM really ran AUTHENTICATE once, through pcscd

    fed = device.federation
    for extra, requested in (((), False), (("--duration", "3600"), True)):
        out = device.gw("login", "--profile", PROFILE, "--print", *extra)
        assert out.returncode == 0, out.stderr
        url = out.stdout.strip()
        assert url.startswith(fed.federation_url + "?Action=login") and "SigninToken=" in url
        landing = requests.get(url, verify=str(device.home.ca_path), allow_redirects=False, timeout=30)
        assert landing.status_code == 302 and landing.headers["Location"] == fed.console_url
        session = fed.last_session
        assert session.logged_in and session.kind == "web-identity" and not session.chained
        assert session.duration_requested is requested
        if requested:
            assert session.duration == 3600
    # the console logins reused the cached credentials: still one SIM handshake
    assert device.krypton.handshakes == 1 and device.krypton.calls["aws/cognito/credentials"] == 1


def test_later_fetches_skip_the_sim_and_a_dead_key_costs_one_handshake(device: Device, vpcd_insert, usim) -> None:
    vpcd_insert(usim)
    krypton = device.krypton
    first = device.fetch()
    assert (krypton.handshakes, krypton.calls["aws/cognito/credentials"]) == (1, 1)
    assert len(device.session_entries()) == 1

    # `gw cache clear --profile` drops the profile's credentials but keeps the Krypton session
    for n in (2, 3):
        device.clear_profile()
        assert device.profile_entries() == [] and len(device.session_entries()) == 1
        again = device.fetch()
        assert again["AccessKeyId"] != first["AccessKeyId"]  # a real upstream call ...
        assert (krypton.handshakes, krypton.calls["aws/cognito/credentials"]) == (1, n)  # ... without the SIM
    assert usim.sqn == 1 and krypton.verifies == 1

    # revoked keyId: exactly one new handshake, then the new session is reused again
    for key_id in list(krypton.keys):
        krypton.revoke(key_id)
    device.clear_profile()
    device.fetch()
    assert (krypton.handshakes, krypton.verifies, usim.sqn) == (2, 2, 2)
    device.clear_profile()
    device.fetch()
    assert krypton.handshakes == 2

    # expired keyId (the server ended it before gw's 3600 s): again exactly one handshake
    krypton.expire_all()
    device.clear_profile()
    device.fetch()
    assert (krypton.handshakes, krypton.verifies, usim.sqn) == (3, 3, 3)
    assert krypton.calls["aws/cognito/credentials"] == 8  # 6 served + 2 refused stale keys

    # `gw cache clear` without --profile drops everything, the Krypton session included
    out = device.gw("cache", "clear")
    assert out.returncode == 0, out.stderr
    assert device.session_entries() == [] and device.profile_entries() == []
    device.fetch()
    assert krypton.handshakes == 4 and usim.sqn == 4


def test_reader_removed_mid_way(device: Device, vpcd_insert, usim) -> None:
    """The card goes away while gw waits for the Krypton challenge: one line, nothing cached."""
    card = vpcd_insert(usim)
    krypton = device.krypton
    krypton.inject("keys", status=None, delay=2.0)  # hold the challenge so the card can go
    run = device.home.popen("credential-process", "--profile", PROFILE)
    deadline = time.monotonic() + 60
    while krypton.arrivals["keys"] == 0:
        assert run.poll() is None, run.communicate()
        assert time.monotonic() < deadline, "gw never asked for a challenge"
        time.sleep(0.02)
    card.stop()
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 1 and stdout == ""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "removed or stopped answering" in lines[0] and READER in lines[0], lines[0]
    assert "Traceback" not in stderr and K.hex() not in stderr
    assert device.profile_entries() == [] and device.session_entries() == []
    assert krypton.verifies == 0

    # the card comes back: one fresh handshake and it works
    vpcd_insert(usim)
    device.fetch()
    assert krypton.verifies == 1 and len(device.session_entries()) == 1


def test_no_card_no_reader_no_pcscd(device: Device, vpcd_insert, usim) -> None:
    # the card was there, then removed before the run
    vpcd_insert.remove(vpcd_insert(usim))
    cases = [
        (f"pcsc:{READER}", {}, f"no card in PC/SC reader '{READER}'"),
        (f"pcsc:{EMPTY_READER}", {}, f"no card in PC/SC reader '{EMPTY_READER}'"),
        ("pcsc:Yubikey", {}, "no PC/SC reader matches 'Yubikey'"),
        ("pcsc:5", {}, "no PC/SC reader number 5"),
        ("auto", {}, "no SIM found"),
        (f"pcsc:{READER}", {"PCSCLITE_CSOCK_NAME": str(device.home.root / "no-pcscd.comm")}, "is pcscd running?"),
    ]
    for reader, env, expected in cases:
        device.configure(reader)
        out = device.gw("credential-process", "--profile", PROFILE, env=env)
        lines = error_lines(out)
        assert out.returncode == 1 and out.stdout == "", (reader, out.stderr)
        assert len(lines) == 1 and expected in lines[0], (reader, out.stderr)
        assert "Traceback" not in out.stderr
    assert device.krypton.arrivals["keys"] == 0  # never got as far as the network
    assert device.profile_entries() == [] and device.session_entries() == []


def test_probe_through_pcsc(device: Device, vpcd_insert, usim) -> None:
    vpcd_insert(usim)
    out = device.gw("krypton", "probe")
    assert out.returncode == 0, out.stderr
    rows = {line.split("\t")[0]: line for line in out.stdout.splitlines()}
    # the first column is the reader as the config's `reader` option spells it
    assert rows[f"pcsc:{READER}"] == f"pcsc:{READER}\tpcsc\tIMSI {IMSI}"
    assert rows[f"pcsc:{EMPTY_READER}"].startswith(f"pcsc:{EMPTY_READER}\tpcsc\tno SIM (no card")
    as_json = device.gw("krypton", "probe", "--json")
    assert as_json.returncode == 0, as_json.stderr
    found = {row["name"]: row for row in json.loads(as_json.stdout)}
    assert found[READER] == {"name": READER, "kind": "pcsc", "reader": f"pcsc:{READER}", "imsi": IMSI, "error": None}
    everything = out.stdout + out.stderr + as_json.stdout + as_json.stderr
    for secret in (K, OPC, bytes.fromhex("b40ba9a3c58b2a05bbf0d987b21bf8cb")):
        assert secret.hex() not in everything.lower()
    assert usim.sqn == 0  # probing never authenticates
