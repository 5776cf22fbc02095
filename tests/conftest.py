"""Shared fixtures: a moto STS server, a local CA, and an isolated gw home.

Every test runs the real ``gw`` executable in a temporary HOME with its own
config, state dir and ``~/.aws`` files, against emulators on 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

VENV_BIN = Path(sys.executable).parent
GW = str(VENV_BIN / "gw")
AWS_CLI = shutil.which("aws", path=str(VENV_BIN)) or shutil.which("aws")

# Variables from the developer's own environment that must never leak into a test.
SCRUBBED_PREFIXES = ("AWS_", "GW_", "XDG_", "SORACOM_", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@pytest.fixture(scope="session")
def ca(tmp_path_factory):
    from gw_emulators.tls import LocalCA

    return LocalCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="session")
def moto():
    from gw_emulators.aws import MotoStack

    stack = MotoStack().start()
    yield stack
    stack.stop()


@pytest.fixture(scope="session")
def iam_user(moto):
    """Long-term keys of an IAM user in moto: (access key id, secret)."""
    return moto.create_user("gw-test-user")


@dataclass
class GwHome:
    """An isolated user: HOME, gw config and state, ~/.aws, and a way to run gw."""

    root: Path
    env: dict[str, str]
    ca_path: str | None = None
    extra_settings: dict[str, object] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def config_path(self) -> Path:
        return Path(self.env["GW_CONFIG"])

    @property
    def state(self) -> Path:
        return Path(self.env["GW_HOME"])

    @property
    def cache_dir(self) -> Path:
        return self.state / "cache"

    @property
    def aws_config(self) -> Path:
        return self.home / ".aws" / "config"

    def write_config(self, text: str, settings: bool = True) -> Path:
        """Write the gw config; a [settings] table with the test CA is prepended unless given."""
        body = textwrap.dedent(text)
        if settings and "[settings]" not in body:
            lines = ["[settings]"]
            if self.ca_path:
                lines.append(f'ca_bundle = "{self.ca_path}"')
            for key, value in self.extra_settings.items():
                lines.append(f"{key} = {value!r}".replace("'", '"'))
            body = "\n".join(lines) + "\n\n" + body
        self.config_path.write_text(body)
        return self.config_path

    def run(self, *args: str, input: str | None = None, timeout: float = 120, env: dict | None = None,
            check: bool = False) -> subprocess.CompletedProcess:
        """Run ``gw ARGS`` as this user; stdin is /dev/null unless ``input`` is given."""
        result = subprocess.run(
            [GW, *args],
            env={**self.env, **(env or {})},
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.root,
            start_new_session=True,  # no controlling terminal: prompts use settings.askpass
        )
        if check and result.returncode != 0:
            raise AssertionError(f"gw {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def vault_set(self, name: str, value: str) -> None:
        self.run("vault", "set", name, input=value, check=True)

    def popen(self, *args: str, **kwargs) -> subprocess.Popen:
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        env = {**self.env, **kwargs.pop("env", {})}
        kwargs.setdefault("start_new_session", True)
        return subprocess.Popen([GW, *args], env=env, cwd=self.root, text=True, **kwargs)


def clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_PREFIXES)}


@pytest.fixture
def gw_home(tmp_path, ca) -> GwHome:
    root = tmp_path
    home = root / "home"
    (home / ".aws").mkdir(parents=True)
    env = clean_environ()
    env.update(
        HOME=str(home),
        GW_HOME=str(root / "state"),
        GW_CONFIG=str(root / "config.toml"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(home / ".aws" / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / ".aws" / "credentials"),
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        GW_QUIET="1",
    )
    return GwHome(root=root, env=env, ca_path=str(ca.ca_path))


@pytest.fixture
def aws_home(gw_home, moto) -> GwHome:
    """A gw home whose AWS calls go to the moto server."""
    gw_home.env["AWS_ENDPOINT_URL"] = moto.url
    gw_home.env["AWS_DEFAULT_REGION"] = "us-east-1"
    return gw_home


@pytest.fixture
def askpass(tmp_path) -> tuple[str, Path]:
    """An askpass program that answers a fixed MFA code and logs each call: (path, log)."""
    log = tmp_path / "askpass.log"
    script = tmp_path / "askpass.sh"
    script.write_text(f'#!/bin/sh\necho "$1" >> "{log}"\necho 123456\n')
    script.chmod(0o700)
    return str(script), log


# -- PC/SC: a real pcscd with the vsmartcard vpcd reader, and virtual cards in it ------------
# Shared by tests/sim and tests/krypton. With CI=true these tests must run: a missing pcscd,
# vpcd or pyscard fails them. Elsewhere they are skipped with the reason.
#
# There is one vpcd port (35963) and one pcscd per machine, so two pytest sessions using them
# at once disturb each other (a card of one session answers the other's APDUs; one session
# stops the pcscd the other is using). The ``pcscd`` fixture therefore holds an exclusive
# flock for the whole session: a second session waits until the first is done.

PCSC_DIR = Path(__file__).resolve().parent / "pcsc"
PCSC_LOCK = os.environ.get("GW_TEST_PCSC_LOCK", "/tmp/gw-test-pcsc.lock")
PCSC_IN_CI = os.environ.get("CI", "").lower() == "true"
VPCD_READER = "Virtual PCD 00 00"  # port 35963, where VpcdCard inserts its card
VPCD_EMPTY_READER = "Virtual PCD 00 01"  # port 35964, always empty in the tests


def pcsc_unavailable(reason: str) -> None:
    """Skip (or, under CI=true, fail) a test that needs the PC/SC stack."""
    if PCSC_IN_CI:
        pytest.fail(f"PC/SC end-to-end test cannot run under CI=true: {reason}")
    pytest.skip(reason)


def _pcscd_script(action: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(PCSC_DIR / "pcscd.sh"), action], capture_output=True, text=True)


def _pcsc_lock(timeout: float = 900.0):
    import fcntl
    import time

    handle = open(PCSC_LOCK, "a+")
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() > deadline:
                handle.close()
                pcsc_unavailable(f"another test session kept the PC/SC lock {PCSC_LOCK} for {timeout:.0f} s")
            time.sleep(0.5)


@pytest.fixture(scope="session")
def pcscd():
    """A pcscd serving the vpcd readers: the one already running, or one started for this session."""
    try:
        import smartcard.System  # noqa: F401
    except ImportError:
        pcsc_unavailable("pyscard is not installed (pip install 'gw-credential-gateway[sim]')")
    if shutil.which("pcscd") is None and not Path("/usr/sbin/pcscd").exists():
        pcsc_unavailable("pcscd is not installed (run tests/pcsc/install.sh)")
    if not Path("/etc/reader.conf.d/vpcd").exists():
        pcsc_unavailable("the vpcd reader driver is not installed (package vsmartcard-vpcd; tests/pcsc/install.sh)")
    lock = _pcsc_lock()
    started = False
    try:
        if _pcscd_script("status").returncode != 0:
            if os.geteuid() != 0:
                pcsc_unavailable("pcscd with the vpcd reader is not running and starting it needs root")
            out = _pcscd_script("start")
            if out.returncode != 0:
                pcsc_unavailable(f"cannot start pcscd: {(out.stderr or out.stdout).strip()}")
            started = True
        _wait_for_readers()
        yield
    finally:
        if started:
            _pcscd_script("stop")
        lock.close()  # releases the flock


def _wait_for_readers(timeout: float = 20.0) -> None:
    """pcscd lists the vpcd readers a moment after its socket appears: wait for both."""
    import time

    from smartcard.System import readers

    deadline = time.monotonic() + timeout
    names: list[str] = []
    while time.monotonic() < deadline:
        try:
            names = [str(r) for r in readers()]
        except Exception:
            names = []
        if VPCD_READER in names and VPCD_EMPTY_READER in names:
            return
        time.sleep(0.2)
    pcsc_unavailable(f"pcscd does not list the vpcd readers after {timeout:.0f} s (it lists {names})")


def wait_for_card(reader: str, imsi: str, timeout: float = 20.0) -> None:
    """Until gw's own SIM layer reads ``imsi`` through ``reader`` (pcscd finds new cards by polling)."""
    import time

    from gw_plugins.krypton.sim import SimError, open_sim

    deadline = time.monotonic() + timeout
    while True:
        try:
            with open_sim(f"pcsc:{reader}") as sim:
                if sim.imsi() == imsi:
                    return
                problem = "another card answers there"
        except SimError as exc:
            problem = str(exc)
        if time.monotonic() > deadline:
            raise AssertionError(f"the virtual card never showed up in {reader}: {problem}")
        time.sleep(0.2)


def wait_for_empty(reader: str, timeout: float = 20.0) -> None:
    """Until pcscd has noticed that the card in ``reader`` is gone."""
    import time

    from gw_plugins.krypton.sim import SimError, open_sim

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            open_sim(f"pcsc:{reader}").close()
        except SimError as exc:
            if "no card" in str(exc):
                return
        time.sleep(0.2)
    raise AssertionError(f"pcscd still sees a card in {reader} {timeout:.0f} s after it was removed")


class VpcdSlot:
    """Inserts VirtualUsims into the vpcd reader (``slot(usim) -> VpcdCard``) and removes them."""

    def __init__(self) -> None:
        self.cards: list = []

    def __call__(self, usim, timeout: float = 20.0):
        """Insert ``usim`` and wait until pcscd serves it (gw's SIM layer reads its IMSI)."""
        from gw_emulators.vpcd import VpcdCard

        card = VpcdCard(usim).start()
        self.cards.append(card)
        if not card.wait_connected(timeout):
            raise AssertionError("vpcd did not accept the virtual card on port 35963")
        wait_for_card(VPCD_READER, usim.imsi, timeout)
        return card

    def remove(self, card, timeout: float = 20.0) -> None:
        """Pull the card out and wait until pcscd has noticed."""
        card.stop()
        wait_for_empty(VPCD_READER, timeout)

    def close(self) -> None:
        for card in self.cards:
            card.stop()
        if self.cards:
            wait_for_empty(VPCD_READER)


@pytest.fixture
def vpcd_insert(pcscd):
    """A :class:`VpcdSlot`: ``vpcd_insert(usim)`` puts a VirtualUsim in reader 00 00 and waits for pcscd.

    Cards still in at the end of the test are removed, and the fixture waits until pcscd has
    seen the reader empty, so the next test never meets this test's card.
    """
    slot = VpcdSlot()
    yield slot
    slot.close()
