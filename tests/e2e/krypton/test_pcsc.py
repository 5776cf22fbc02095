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

from gw.testing import gw_executable
from gw_emulators.federation import FederationEmulator
from gw_emulators.krypton import KryptonEmulator
from gw_emulators.usim import VirtualUsim
from tests.plugins.krypton.conftest import IMSI, OPC, K

READER = "Virtual PCD 00 00"
EMPTY_READER = "Virtual PCD 00 01"
GW = gw_executable()
AWS = str(Path(sys.executable).with_name("aws"))
PROFILE = "sim"


@pytest.fixture
def krypton(ca, moto):
    """The Krypton emulator; its Cognito credentials come from the MotoStack (so federation knows them)."""
    with KryptonEmulator(ca, aws_endpoint=moto.url) as emulator:
        emulator.add_subscriber(IMSI, K, OPC, sqn=0)
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


# -- APDUs: as lean as krypton-cli (issue 12) ----------------------------------------------
# krypton-client-go (github.com/soracom/endorse-client-go endorse/iso7816.go, vendored by
# soracom/krypton-client-go) sends 11 APDUs for a cold handshake and 7 with a cached key.
GO_CLIENT_COLD, GO_CLIENT_STORED = 11, 7
VERIFY, VERIFY_STATUS = bytes.fromhex("0020000108"), bytes.fromhex("00200001")


def inserted(vpcd_insert, usim: VirtualUsim, *, pin_tries: int | None = None) -> VirtualUsim:
    """Insert ``usim`` and forget the APDUs the fixture's readiness check cost.

    With ``pin_tries`` PIN1 is enabled (with that many tries left) once the card is in: the
    shared fixture checks a card by reading its IMSI, which a locked SIM refuses.
    """
    vpcd_insert(usim)
    if pin_tries is not None:
        usim.set_pin(enabled=True, tries=pin_tries)
    usim.log.clear()
    return usim


def test_apdus_cold_and_with_a_stored_session(device: Device, vpcd_insert, usim) -> None:
    card = inserted(vpcd_insert, usim)
    device.fetch()
    cold = list(card.log)
    assert device.krypton.handshakes == 1
    assert len(cold) == 9 <= GO_CLIENT_COLD, [c.hex() for c in cold]
    assert [c[1] for c in cold].count(0xB0) == 1  # EF_IMSI read once
    assert [c[1] for c in cold].count(0xC0) == 2  # GET RESPONSE only for EF_DIR's FCP and AUTHENTICATE

    card.log.clear()
    device.clear_profile()
    device.fetch()
    assert device.krypton.handshakes == 1  # the stored Krypton session: no AUTHENTICATE
    assert len(card.log) == 7 == GO_CLIENT_STORED, [c.hex() for c in card.log]


# -- PIN1: the SIM login's second factor -------------------------------------------------
PIN = "8251"  # not a substring of the IMSI or of any key, so scrubbing cannot hide a leak


@pytest.fixture
def locked_usim() -> VirtualUsim:
    """A SIM whose PIN1 is PIN (enabled by ``inserted(..., pin_tries=3)``)."""
    return VirtualUsim(IMSI, K, OPC, sqn=0, pin=PIN)


def with_pin(device: Device, pin: str | None) -> None:
    extra = "" if pin is None else f', pin = "{pin}"'
    device.home.write_config(
        f"""
        [profiles.{PROFILE}]
        steps = [{{ use = "krypton", operation = "cognito-credentials", endpoint = "{device.krypton.url}", reader = "pcsc:{READER}", timeout = 15{extra} }}]
        """
    )


def verifies(card: VirtualUsim) -> list[bytes]:
    """The VERIFY commands that carried a PIN (not the status queries)."""
    return [c for c in card.log if c == VERIFY]


def test_pin_enabled_without_pin_option_sends_no_verify(device: Device, vpcd_insert, locked_usim) -> None:
    card = inserted(vpcd_insert, locked_usim, pin_tries=3)
    with_pin(device, None)
    out = device.gw("credential-process", "--profile", PROFILE)
    lines = error_lines(out)
    assert out.returncode == 1 and out.stdout == "" and len(lines) == 1, out.stderr
    assert "PIN1 enabled" in lines[0] and 'pin = "prompt"' in lines[0] and "no PIN was sent" in lines[0]
    assert not any(c[1] == 0x20 for c in card.log)  # no VERIFY of any kind
    assert card.pin_tries == 3 and device.krypton.arrivals["keys"] == 0


def test_right_pin_unlocks_once_and_the_card_is_reset(device: Device, vpcd_insert, locked_usim) -> None:
    card = inserted(vpcd_insert, locked_usim, pin_tries=3)
    device.home.vault_set("simpin", PIN)
    with_pin(device, "vault:simpin")
    out = device.gw("credential-process", "--profile", PROFILE)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["AccessKeyId"]
    assert len(verifies(card)) == 1 and card.log.count(VERIFY_STATUS) == 1
    assert len(card.log) == 9 + 2  # the lean handshake plus the PIN state query and the VERIFY
    assert card.pin_tries == 3
    assert not card.pin_verified  # gw reset the card: the verification ended with the run
    everything = out.stdout + out.stderr
    assert PIN not in everything and PIN.encode().hex() not in everything.lower()
    # served from gw's cache (an MFA session): no SIM, no PIN
    card.log.clear()
    assert device.fetch()["AccessKeyId"] == json.loads(out.stdout)["AccessKeyId"]
    assert card.log == []


def test_wrong_pin_is_one_line_with_tries_left_and_never_retried(device: Device, vpcd_insert, locked_usim) -> None:
    card = inserted(vpcd_insert, locked_usim, pin_tries=3)
    device.home.vault_set("simpin", "1111")
    with_pin(device, "vault:simpin")
    out = device.gw("credential-process", "--profile", PROFILE)
    lines = error_lines(out)
    assert out.returncode == 1 and len(lines) == 1, out.stderr
    assert "refused the PIN: 2 tries left" in lines[0]
    assert len(verifies(card)) == 1 and card.pin_tries == 2
    assert device.krypton.arrivals["keys"] == 0 and device.profile_entries() == []


def test_last_try_needs_a_terminal(device: Device, vpcd_insert) -> None:
    card = inserted(vpcd_insert, VirtualUsim(IMSI, K, OPC, sqn=0, pin=PIN), pin_tries=1)
    device.home.vault_set("simpin", PIN)
    with_pin(device, "vault:simpin")
    out = device.gw("credential-process", "--profile", PROFILE)  # no terminal, no askpass
    lines = error_lines(out)
    assert out.returncode == 1 and len(lines) == 1, out.stderr
    assert "one PIN try left" in lines[0] and "terminal" in lines[0]
    assert verifies(card) == [] and card.pin_tries == 1


def run_on_pty(home, args: list[str], answers: dict[bytes, bytes], timeout: float = 90) -> tuple[int, str]:
    """Run gw with a pty as its controlling terminal (stdout to a pipe); answer prompts as they appear.

    An answer to a secret prompt is typed once the terminal's echo is off: gw prints the label
    first and then switches echo off with TCSAFLUSH, which drops anything typed ahead.
    """
    import os
    import pty
    import select
    import termios

    secret_prompts = {prompt for prompt in answers if b"PIN (" in prompt}

    read_end, write_end = os.pipe()
    pid, master = pty.fork()
    if pid == 0:  # child: the pty is stdin, stderr and /dev/tty; stdout is the pipe
        os.dup2(write_end, 1)
        env = {k: v for k, v in home.env.items() if k != "GW_QUIET"} | {"TERM": "xterm"}
        os.chdir(home.root)
        os.execve(GW, [GW, *args], env)
    os.close(write_end)
    seen, pending = b"", dict(answers)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        for prompt in list(pending):
            echo_off = not termios.tcgetattr(master)[3] & termios.ECHO
            if prompt in seen and (prompt not in secret_prompts or echo_off):
                os.write(master, pending.pop(prompt))
        if not ready and os.waitpid(pid, os.WNOHANG)[0]:
            break
    _, status = os.waitpid(pid, 0)
    stdout = b""
    while True:
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        stdout += chunk
    os.close(read_end)
    os.close(master)
    return os.waitstatus_to_exitcode(status), (seen.decode(errors="replace"), stdout.decode())  # type: ignore[return-value]


def test_last_try_is_confirmed_on_the_terminal(device: Device, vpcd_insert) -> None:
    card = inserted(vpcd_insert, VirtualUsim(IMSI, K, OPC, sqn=0, pin=PIN), pin_tries=1)
    device.home.extra_settings["prompt_timeout"] = 30  # a lost keystroke fails in 30 s, not 300
    with_pin(device, "prompt")
    # declined: nothing sent, the last try kept
    code, (terminal, stdout) = run_on_pty(device.home, ["credential-process", "--profile", PROFILE], {b"[y/N]": b"n\n"})
    assert code == 1 and "ONE PIN try left" in terminal and "keeps its last try" in terminal, terminal
    assert stdout == "" and verifies(card) == [] and card.pin_tries == 1
    # confirmed, then the PIN typed at the prompt (not echoed)
    code, (terminal, stdout) = run_on_pty(
        device.home, ["credential-process", "--profile", PROFILE], {b"[y/N]": b"y\n", b"SIM PIN (1 try left)": PIN.encode() + b"\n"}
    )
    assert code == 0, terminal
    assert json.loads(stdout)["AccessKeyId"] and PIN not in terminal
    assert len(verifies(card)) == 1 and card.pin_tries == 3


def test_blocked_sim_is_explained(device: Device, vpcd_insert) -> None:
    card = inserted(vpcd_insert, VirtualUsim(IMSI, K, OPC, sqn=0, pin=PIN), pin_tries=0)
    device.home.vault_set("simpin", PIN)
    with_pin(device, "vault:simpin")
    out = device.gw("credential-process", "--profile", PROFILE)
    lines = error_lines(out)
    assert out.returncode == 1 and len(lines) == 1, out.stderr
    assert "blocked its PIN1" in lines[0] and "PUK" in lines[0]
    assert verifies(card) == []


def pin_askpass(home, answers: list[tuple[str, str]]) -> None:
    """settings.askpass answering by the prompt's label (first match wins); logs the labels."""
    script = home.root / "pin-askpass.sh"
    cases = "".join(f'  *"{label}"*) echo "{value}" ;;\n' for label, value in answers)
    script.write_text(f'#!/bin/sh\necho "$1" >> "{home.root}/askpass.log"\ncase "$1" in\n{cases}  *) exit 1 ;;\nesac\n')
    script.chmod(0o700)
    home.extra_settings["askpass"] = str(script)


def test_pin_commands_through_pcsc(device: Device, vpcd_insert, locked_usim) -> None:
    card = inserted(vpcd_insert, locked_usim, pin_tries=3)
    with_pin(device, "prompt")
    status = device.gw("krypton", "pin", "status", "--profile", PROFILE)
    assert status.returncode == 0 and status.stdout.strip() == "PIN1 enabled, 3 tries left", status.stderr
    assert verifies(card) == []  # status spends no try
    probe = device.gw("krypton", "probe")
    assert f"pcsc:{READER}\tpcsc\tSIM locked (PIN1 enabled" in probe.stdout, probe.stdout + probe.stderr

    pin_askpass(device.home, [("Current", PIN), ("again", "24680"), ("New", "24680")])
    with_pin(device, "prompt")
    out = device.gw("krypton", "pin", "change", "--profile", PROFILE)
    assert out.returncode == 0 and out.stdout.strip() == "PIN1 changed", out.stderr
    assert card.pin_state["pin"] == "24680" and not card.pin_verified
    assert PIN not in out.stdout + out.stderr and "24680" not in out.stdout + out.stderr

    pin_askpass(device.home, [("Current", "24680")])
    with_pin(device, "prompt")
    out = device.gw("krypton", "pin", "disable", "--profile", PROFILE)
    assert out.returncode == 0 and out.stdout.strip() == "PIN1 disabled", out.stderr
    assert device.gw("krypton", "pin", "status", "--profile", PROFILE).stdout.strip().startswith("PIN1 disabled")
    # with PIN1 disabled the step needs no PIN and sends no VERIFY with one
    card.log.clear()
    assert device.fetch()["AccessKeyId"] and verifies(card) == []

    out = device.gw("krypton", "pin", "enable", "--profile", PROFILE)
    assert out.returncode == 0 and out.stdout.strip() == "PIN1 enabled", out.stderr
    pin_askpass(device.home, [("Current", "0000")])
    with_pin(device, "prompt")
    out = device.gw("krypton", "pin", "disable", "--profile", PROFILE)
    assert out.returncode == 1 and "refused the PIN: 2 tries left" in out.stderr
    assert device.gw("krypton", "pin", "status", "--profile", PROFILE).stdout.strip() == "PIN1 enabled, 2 tries left"


def test_a_krypton_profile_loads_no_other_plugin(aws_home, krypton, vpcd_insert, usim) -> None:
    """Lazy loading (issue 20): a fresh gw process fetching through the SIM imports the krypton
    plugin and no other (docs/plugins.md "Lazy loading"), and no third-party HTTP library, JWT
    library, boto3/botocore or importlib.metadata: HTTPS goes through gw's client on http.client."""
    device = Device(aws_home, krypton, None)  # no [login] table: that one is the federation plugin's
    vpcd_insert(usim)
    probe = (
        "import sys\nfrom gw.cli import main\nstatus = main(sys.argv[1:])\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith(('gw_plugins', 'gw_emulators'))"
        " or m.split('.')[0] in ('requests', 'urllib3', 'boto3', 'botocore', 'jwt')"
        " or m in ('importlib.metadata', 'http.client'))))\n"
        "sys.exit(status)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe, "credential-process", "--profile", PROFILE],
                         env=device.home.env, capture_output=True, text=True, timeout=120, cwd=device.home.root)
    assert out.returncode == 0, out.stderr
    credentials, modules = out.stdout.rstrip("\n").rsplit("\n", 1)
    assert json.loads(credentials)["Version"] == 1 and device.krypton.handshakes == 1
    assert modules.split() and {m.split(".")[1] for m in modules.split() if m.startswith("gw_plugins.")} == {"krypton"}
    assert not any(m.startswith("gw_emulators") for m in modules.split())
    # target 2: HTTPS through gw's client on http.client, entry points without importlib.metadata
    assert "http.client" in modules.split()  # guards the probe: the calls did go out through it
    assert not [m for m in modules.split() if not m.startswith("gw_plugins") and m != "http.client"], modules


def test_the_tls_connection_opens_once_the_card_is_connected(device: Device, vpcd_insert, usim, monkeypatch) -> None:
    """The connection to Krypton (importing http.client and ssl, the TLS handshake) opens in a thread
    that starts between SCardConnect and the first APDU: it overlaps the card's answers, and does
    not compete with gw's own start for the interpreter before the first APDU (issue 20)."""
    from smartcard import scard

    from gw.httpclient import HttpClient

    vpcd_insert(usim)
    events: list[str] = []
    for name in ("SCardConnect", "SCardTransmit"):
        real = getattr(scard, name)
        monkeypatch.setattr(scard, name, lambda *a, _real=real, _name=name: (events.append(_name), _real(*a))[1])
    real_preconnect = HttpClient.preconnect
    monkeypatch.setattr(HttpClient, "preconnect",
                        lambda self, url: (events.append("preconnect"), real_preconnect(self, url))[1])
    out = device.home.run_in_process("credential-process", "--profile", PROFILE)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["Version"] == 1 and device.krypton.handshakes == 1
    first = events.index("preconnect")
    assert events[first - 1] == "SCardConnect" and events[first + 1] == "SCardTransmit", events
