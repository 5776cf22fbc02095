"""Fixtures for the SORACOM / 1Password tests: a local CA, the SORACOM API
emulator with MFA users (on the root conftest's CA), and an ``op`` emulator fixture file with its shim."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.plugins.soracom.soracom_testdata import make_emulator, op_fixture_doc

from gw_emulators.op_cli import install_op_shim


@pytest.fixture
def soracom_api(ca):
    """The SORACOM API emulator (TLS from the shared test CA) with MFA users."""
    emu = make_emulator(ca).start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def op_shim(tmp_path) -> tuple[Path, Path]:
    """(bin dir holding an executable ``op``, fixture path)."""
    fixture = tmp_path / "op-fixture.json"
    fixture.write_text(json.dumps(op_fixture_doc()))
    bindir = tmp_path / "opbin"
    install_op_shim(bindir, fixture)
    return bindir, fixture
