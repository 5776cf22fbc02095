"""The demo entry points (gw_emulators.iot.start_iot / part_iot) run against the real emulators."""

from __future__ import annotations

import io
from contextlib import ExitStack

import pytest

from tests.conftest import GW
from tests.plugins.krypton.conftest import IMSI, OPC, K, write_sim


def test_demo_part_runs(gw_home, ca, moto, tmp_path):
    rich = pytest.importorskip("rich.console")
    from gw_emulators.demo import Demo
    from gw_emulators.iot import part_iot, start_iot
    from gw_emulators.krypton import KryptonEmulator

    out = io.StringIO()
    demo = Demo(root=tmp_path, gw=GW, console=rich.Console(file=out, width=200), env=dict(gw_home.env))
    demo.services.update(ca=ca, moto=moto)
    demo.env["AWS_ENDPOINT_URL"] = moto.url
    demo.config_parts.append(f'[settings]\nca_bundle = "{ca.ca_path}"\n')
    with ExitStack() as stack:
        krypton = stack.enter_context(KryptonEmulator(ca))
        krypton.add_subscriber(IMSI, K, OPC)
        demo.services["krypton"] = krypton
        write_sim(tmp_path / "virtual-sim.json")
        start_iot(demo, stack)
        demo.write_config()
        part_iot(demo)
    text = out.getvalue()
    assert ":assumed-role/DemoIotDevice/demo-sensor" in text
    assert "two fetches, 1 Krypton bootstrap" in text
    assert "attempt 1: refused" in text and "attempt 3: accepted" in text
