"""Fixtures for the SIM layer tests: Milenage vectors, virtual SIMs, and a pcscd with vpcd.

The PC/SC tests run the real stack (VirtualUsim -> VpcdCard -> pcscd + vpcd -> pyscard).
With ``CI=true`` they must run: a missing pcscd, vpcd or pyscard fails them loudly. Elsewhere
they are skipped with the reason. ``tests/pcsc/install.sh`` installs the system packages.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest

HERE = Path(__file__).resolve().parent
PCSC_DIR = HERE.parent / "pcsc"
VECTORS = json.loads((HERE / "data" / "milenage-ts35207.json").read_text())["sets"]
IN_CI = os.environ.get("CI", "").lower() == "true"


def h(value: str) -> bytes:
    return bytes.fromhex(value)


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"PC/SC end-to-end test cannot run under CI=true: {reason}")
    pytest.skip(reason)


@pytest.fixture(params=VECTORS, ids=lambda s: s["name"].rsplit(" ", 2)[-2] + s["name"][-1])
def vector(request: pytest.FixtureRequest) -> dict[str, Any]:
    return request.param


def _status() -> bool:
    return subprocess.run(["sh", str(PCSC_DIR / "pcscd.sh"), "status"], capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def pcscd() -> Iterator[None]:
    """A pcscd serving the vpcd reader: the one already running, or one started for this session."""
    try:
        import smartcard.System  # noqa: F401
    except ImportError:
        _unavailable("pyscard is not installed (pip install 'gw-credential-gateway[sim]')")
    if shutil.which("pcscd") is None and not Path("/usr/sbin/pcscd").exists():
        _unavailable("pcscd is not installed (run tests/pcsc/install.sh)")
    if not Path("/etc/reader.conf.d/vpcd").exists():
        _unavailable("the vpcd reader driver is not installed (package vsmartcard-vpcd; tests/pcsc/install.sh)")
    started = False
    if not _status():
        if os.geteuid() != 0:
            _unavailable("pcscd with the vpcd reader is not running and starting it needs root")
        out = subprocess.run(["sh", str(PCSC_DIR / "pcscd.sh"), "start"], capture_output=True, text=True)
        if out.returncode != 0:
            _unavailable(f"cannot start pcscd: {(out.stderr or out.stdout).strip()}")
        started = True
    yield
    if started:
        subprocess.run(["sh", str(PCSC_DIR / "pcscd.sh"), "stop"], capture_output=True)
