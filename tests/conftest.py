"""The one shared harness: a moto server, a local CA, an isolated gw home, PC/SC.

Every test runs the real ``gw`` executable in a temporary HOME with its own
config, state dir and ``~/.aws`` files, against emulators on 127.0.0.1. The
isolated home is gw's own testing kit (:mod:`gw.testing`), the same one plugin
authors use.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gw.testing import GwHome, StubStepContext, clean_environ, gw_executable  # noqa: F401 (re-exported)
from gw_emulators.vpcd import PCSC_LOCK, pcsc_lock

pytest_plugins = ["gw.testing"]

VENV_BIN = Path(sys.executable).parent
GW = gw_executable()
AWS_CLI = shutil.which("aws", path=str(VENV_BIN)) or shutil.which("aws")

# -- nothing listens beyond 127.0.0.1, even in tests (issue 15.8) ---------------------
# The guard (tests/bind_guard/loopback_only.py) runs in this process from here on, and in
# every Python process the tests start: its directory goes on PYTHONPATH (sitecustomize),
# and the children note each refused bind in GW_TEST_BIND_LOG.
BIND_GUARD = Path(__file__).resolve().parent / "bind_guard"
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(BIND_GUARD), os.environ.get("PYTHONPATH")) if p)
# gw's launcher isolates Python (-I -S: no PYTHONPATH, no sitecustomize); the suite's gw runs opt
# out so the guard reaches them too. Tests of the launcher's isolation drop the opt-out
# (tests/core/test_hot_path.py's launcher tests, the early-SIGINT test): their gw opens no socket.
os.environ["GW_NO_ISOLATION"] = "1"
# One log per pytest process: under xdist each worker has its own (the controller's would be
# inherited and shared, and one worker's deliberate refusal would fail the other's test).
_bind_log = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"gw-test-binds-{os.getpid()}.log")
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["GW_TEST_BIND_LOG"] = _bind_log
else:
    os.environ.setdefault("GW_TEST_BIND_LOG", _bind_log)


@pytest.fixture(scope="session", autouse=True)
def _loopback_only():
    from tests.bind_guard import loopback_only

    loopback_only.install(log_to_file=False)
    yield
    try:
        os.unlink(os.environ["GW_TEST_BIND_LOG"])
    except FileNotFoundError:
        pass


@pytest.fixture(autouse=True)
def _no_bind_beyond_loopback(_loopback_only):
    """Fails the test that bound (or tried to bind) an address beyond loopback, here or in a child."""
    from tests.bind_guard import loopback_only

    log = Path(os.environ["GW_TEST_BIND_LOG"])
    start = log.stat().st_size if log.exists() else 0
    yield
    found = list(loopback_only.violations)
    loopback_only.violations.clear()
    if log.exists() and log.stat().st_size > start:
        with log.open(encoding="utf-8") as f:
            f.seek(start)
            found += f.read().splitlines()
    if found:
        pytest.fail("a test bound beyond loopback:\n" + "\n".join(found), pytrace=False)


@pytest.fixture(autouse=True)
def _signal_dispositions_kept():
    """Fails the test that left this process's signal dispositions changed: gw sets SIGPIPE and
    SIGXFSZ to default for a program it execs, and a test process left so dies, without a
    word, at a later test's write to a closed socket."""
    import signal

    watched = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM)
    before = {signum: signal.getsignal(signum) for signum in watched}
    yield
    changed = {signum.name: handler for signum, handler in before.items() if signal.getsignal(signum) != handler}
    for name in changed:
        signal.signal(getattr(signal, name), changed[name])
    if changed:
        pytest.fail(f"the test left signal dispositions changed: {sorted(changed)}", pytrace=False)


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
class Clock:
    """Real UTC time plus an offset tests can push forward (an emulator's injectable clock)."""

    offset: timedelta = field(default_factory=timedelta)

    def __call__(self) -> float:
        return (datetime.now(UTC) + self.offset).timestamp()

    def advance(self, **kwargs: float) -> None:
        self.offset += timedelta(**kwargs)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def federation(ca, moto, clock):
    """The console federation emulator, with a movable clock."""
    from gw_emulators.federation import FederationEmulator

    with FederationEmulator(ca, moto, clock=clock) as emulator:
        yield emulator


@pytest.fixture
def gw_home(tmp_path, ca) -> GwHome:
    """An isolated user (gw.testing's) whose config trusts the suite's CA."""
    return GwHome.create(tmp_path, ca_path=str(ca.ca_path))


@pytest.fixture
def aws_home(gw_home, moto) -> GwHome:
    """A gw home whose AWS calls go to the moto server."""
    gw_home.env["AWS_ENDPOINT_URL"] = moto.url
    gw_home.env["AWS_DEFAULT_REGION"] = "us-east-1"
    return gw_home


WARM_SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@pytest.fixture(scope="session")
def warm_template(tmp_path_factory, ca, moto, iam_user) -> GwHome:
    """Built once per session: a home with its key and a vault holding the suite's IAM user's
    keys (``akid``, ``secret``) and a TOTP seed (``seed``). Tests get a clone (``warm_home``)."""
    home = GwHome.create(tmp_path_factory.mktemp("warm"), ca_path=str(ca.ca_path))
    home.env.update(AWS_ENDPOINT_URL=moto.url, AWS_DEFAULT_REGION="us-east-1")
    home.vault_set("akid", iam_user[0])
    home.vault_set("secret", iam_user[1])
    home.vault_set("seed", WARM_SEED)
    return home


@pytest.fixture
def warm_home(warm_template, tmp_path) -> GwHome:
    """A per-test copy of the session's warmed home (key and vault ready, AWS calls to moto)."""
    return warm_template.clone(tmp_path / "warm")


@pytest.fixture
def tripwire():
    """A listener on 127.0.0.1 that nothing may contact: where injected redirects point
    (``tests/redirect_checks.py`` checks it got nothing)."""
    from gw_emulators.httpserver import Tripwire

    with Tripwire() as listener:
        yield listener


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
PCSC_IN_CI = os.environ.get("CI", "").lower() == "true"
VPCD_READER = "Virtual PCD 00 00"  # port 35963, where VpcdCard inserts its card
VPCD_EMPTY_READER = "Virtual PCD 00 01"  # port 35964, always empty in the tests


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items) -> None:
    """Under pytest-xdist (``--dist loadgroup``), every test on the one pcscd and vpcd port runs on one worker.

    First, so that the mark is there when xdist's worker turns ``xdist_group`` marks into the
    ``@pcsc`` suffix of the node id, which is what its scheduler groups by.
    """
    for item in items:
        if "pcscd" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("pcsc"))


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session) -> None:
    """Fail the run at once if xdist did not group the PC/SC tests.

    Ungrouped, they land on several workers and each waits minutes for the session-long PC/SC
    lock another holds. pytest 9.2 changed how a node stores its id, and xdist 3.8's grouping
    silently stopped working with it (hence ``pytest<9.2`` in pyproject.toml).
    """
    if not getattr(session.config.option, "loadgroup", False):
        return
    ungrouped = [
        item.nodeid
        for item in session.items
        if "pcscd" in getattr(item, "fixturenames", ()) and not item.nodeid.endswith("@pcsc")
    ]
    if ungrouped:
        raise pytest.UsageError(
            f"pytest-xdist did not group {len(ungrouped)} PC/SC tests (e.g. {ungrouped[0]}): "
            "this pytest and pytest-xdist do not work together; see the pins in pyproject.toml"
        )


def pcsc_unavailable(reason: str) -> None:
    """Skip (or, under CI=true, fail) a test that needs the PC/SC stack."""
    if PCSC_IN_CI:
        pytest.fail(f"PC/SC end-to-end test cannot run under CI=true: {reason}")
    pytest.skip(reason)


def _pcscd_script(action: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(PCSC_DIR / "pcscd.sh"), action], capture_output=True, text=True)


def _pcsc_lock(timeout: float = 900.0):
    handle = pcsc_lock(timeout, PCSC_LOCK)
    if handle is None:
        pcsc_unavailable(f"another test session kept the PC/SC lock {PCSC_LOCK} for {timeout:.0f} s")
    return handle


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
