"""Fixtures for the SIM layer tests: Milenage vectors, virtual SIMs, and a pcscd with vpcd.

The PC/SC tests run the real stack (VirtualUsim -> VpcdCard -> pcscd + vpcd -> pyscard), with the
``pcscd`` and ``vpcd_insert`` fixtures of tests/conftest.py. With ``CI=true`` they must run: a
missing pcscd, vpcd or pyscard fails them loudly. Elsewhere they are skipped with the reason.
``tests/pcsc/install.sh`` installs the system packages.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
# The published vectors in ../shared/vectors (beside the repository, as in CI); a copy
# ships in tests/sim/data for checkouts without it, and test_milenage checks they agree.
SHARED_VECTORS = HERE.parents[4] / "shared" / "vectors" / "milenage-ts35207.json"
BUNDLED_VECTORS = HERE / "data" / "milenage-ts35207.json"
VECTORS = json.loads((SHARED_VECTORS if SHARED_VECTORS.exists() else BUNDLED_VECTORS).read_text())["sets"]


def h(value: str) -> bytes:
    return bytes.fromhex(value)


@pytest.fixture(params=VECTORS, ids=lambda s: s["name"].rsplit(" ", 2)[-2] + s["name"][-1])
def vector(request: pytest.FixtureRequest) -> dict[str, Any]:
    return request.param


# The session fixture ``pcscd`` and ``vpcd_insert`` (a VirtualUsim inserted through vpcd) live in
# tests/conftest.py, shared with tests/krypton.
