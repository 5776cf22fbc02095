"""Fixtures for the Krypton tests: a local CA, a moto server, the Krypton emulator and virtual SIMs."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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


class LocalContext:
    """A StepContext for driving the step function directly: in-memory state, no terminal."""

    def __init__(self, state_dir: Path, verify: str) -> None:
        self.profile = "test"
        self.step_index = 0
        self.step_type = "krypton"
        self.state_dir = state_dir
        self.ca_bundle = verify
        self.tls_verify = verify
        self.state: dict[str, tuple[dict[str, Any], float]] = {}
        self.secrets: list[str] = []
        self.messages: list[str] = []

    @contextlib.contextmanager
    def status(self, message: str) -> Iterator[None]:
        self.messages.append(message)
        yield

    def info(self, message: str) -> None:
        self.messages.append(message)

    def warn(self, message: str) -> None:
        self.messages.append(message)

    def add_secret(self, value: str | None) -> None:
        if value:
            self.secrets.append(value)

    def state_get(self, name: str) -> dict[str, Any] | None:
        import time

        entry = self.state.get(name)
        return entry[0] if entry and entry[1] > time.time() else None

    def state_put(self, name: str, data: dict[str, Any], expires_at: float) -> None:
        self.state[name] = (json.loads(json.dumps(data)), expires_at)

    def state_delete(self, name: str) -> None:
        self.state.pop(name, None)

    def call_hook(self, name: str, **kwargs: Any) -> list[Any]:
        """The demo plugin's ``gw_krypton_readers``, as gw's plugin manager would call it."""
        from gw_emulators import demo

        return [demo.gw_krypton_readers()] if name == "gw_krypton_readers" else []


@pytest.fixture
def step_ctx(tmp_path: Path, ca: LocalCA) -> LocalContext:
    return LocalContext(tmp_path / "state", str(ca.ca_path))
