"""Fixtures for the Krypton tests: a local CA, a moto server, the Krypton emulator and virtual SIMs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gw.testing import StubStepContext
from gw_emulators.krypton import KryptonEmulator
from gw_emulators.tls import LocalCA

SET1 = {
    "K": "465b5ce8b199b49faa5f0a2ee238a6bc",
    "OPc": "cd63cb71954a9f4e48a5994e37a02baf",
    "f3": "b40ba9a3c58b2a05bbf0d987b21bf8cb",
}
IMSI = "440103123456789"
K = bytes.fromhex(SET1["K"])
OPC = bytes.fromhex(SET1["OPc"])


@pytest.fixture(scope="session")
def moto_endpoint(moto) -> str:
    """The shared moto stack of tests/conftest.py."""
    return moto.url


@pytest.fixture
def krypton(ca: LocalCA) -> Iterator[KryptonEmulator]:
    emulator = KryptonEmulator(ca)
    emulator.add_subscriber(IMSI, K, OPC, sqn=0, userdata='{"greeting": "hello"}')
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


def write_sim(path: Path, *, imsi: str = IMSI, k: bytes = K, opc: bytes = OPC, sqn: int = 0) -> str:
    path.write_text(json.dumps({"imsi": imsi, "k": k.hex(), "opc": opc.hex(), "sqn": sqn}))
    return str(path)


@pytest.fixture
def sim_file(tmp_path: Path) -> str:
    return write_sim(tmp_path / "sim.json")


@pytest.fixture
def step_ctx(tmp_path: Path, ca: LocalCA) -> StubStepContext:
    """gw.testing's stub context, with the demo plugin's ``gw_krypton_readers`` as gw would call it."""
    from gw_emulators import demo

    return StubStepContext(tmp_path / "state", step_type="krypton", plugin="krypton", tls_verify=str(ca.ca_path),
                           hooks={"gw_krypton_readers": lambda **kwargs: [demo.gw_krypton_readers()]})
