"""The demo functions handed to the lead: start_iot_demo + part_iot_ws on a real Demo.

``gw iot-url`` comes with the endorse branch: until it is merged this test skips (the
Endorse emulator module is missing); after the merge it runs the real gw, the Endorse
emulator, the real exchange service, the IoT emulator and mosquitto.
"""

from __future__ import annotations

import io
import os
from contextlib import ExitStack

import pytest
from rich.console import Console

from gw_emulators.demo.iot_ws import part_iot_ws, start_iot_demo
from gw_emulators.demo.show import Demo, DemoSkipped
from tests.browser.iot_fixtures import require_mosquitto
from tests.conftest import GW


def test_demo_part_chats_through_the_iot_emulator(tmp_path, ca, moto):
    endorse_demo = pytest.importorskip("gw_emulators.demo.endorse")
    require_mosquitto()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GW_", "SORACOM_"))}
    env.update(HOME=str(tmp_path / "home"), GW_HOME=str(tmp_path / "state"), GW_CONFIG=str(tmp_path / "config.toml"),
               AWS_CONFIG_FILE=str(tmp_path / "home" / ".aws" / "config"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "home" / ".aws" / "credentials"),
               AWS_EC2_METADATA_DISABLED="true", AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL=moto.url)
    out = io.StringIO()
    demo = Demo(root=tmp_path, gw=GW, console=Console(file=out, width=300), env=env)
    demo.services.update(ca=ca, moto=moto)
    demo.config_parts.append(f'[settings]\nca_bundle = "{ca.ca_path}"\n')
    with ExitStack() as stack:
        start_iot_demo(demo, stack)
        endorse_demo.start_endorse(demo, stack)
        demo.write_config()
        part_iot_ws(demo, profile="endorse-device")
        iot = demo.services["iot-ws"]
        assert iot.emulator.calls["accepted"] == 1 and iot.emulator.refusals() == 0
    shown = out.getvalue()
    assert "the device received: hello, device" in shown
    assert "X-Amz-Security-Token=" in shown
    token_shown = shown.split("X-Amz-Security-Token=", 1)[1].split()[0]
    assert token_shown.endswith("…") and len(token_shown) <= 8  # the session token is never shown whole
    assert iot.broker.process.poll() is not None  # the ExitStack stopped mosquitto


def test_demo_part_without_mosquitto_says_it_skipped(tmp_path):
    out = io.StringIO()
    demo = Demo(root=tmp_path, gw=GW, console=Console(file=out, width=200))
    demo.services["iot-ws"] = None
    with pytest.raises(DemoSkipped, match="mosquitto is not installed"):
        part_iot_ws(demo)
