"""The demo entry points (gw_emulators.demo.iot.start_iot / part_iot) run against the real emulators."""

from __future__ import annotations

import io
import re
import uuid
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.conftest import GW
from tests.plugins.krypton.conftest import IMSI, OPC, K, write_sim


def test_demo_part_runs(gw_home, ca, moto, tmp_path):
    rich = pytest.importorskip("rich.console")
    from gw_emulators.demo.iot import part_iot, start_iot
    from gw_emulators.demo.show import Demo
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
    role = f"arn:aws:sts::{moto.account_id}:assumed-role/DemoIotDevice"
    assert f"caller identity: {role}/demo-sensor" in text
    # the SIM-bootstrapped certificate's session is named after its certificateId
    assert re.search(rf"caller identity: {re.escape(role)}/[0-9a-f]{{64}}\n", text), text
    assert "$ aws sts get-caller-identity --profile iot-device" in text
    assert "$ aws sts get-caller-identity --profile iot-sim" in text
    assert "two fetches, 1 Krypton bootstrap" in text
    assert "attempt 1: refused" in text and "attempt 3: accepted" in text
    # gw setup aws wrote both profiles' credential_process lines into the real ~/.aws/config
    aws_config = Path(gw_home.env["AWS_CONFIG_FILE"]).read_text()
    for profile in ("iot-device", "iot-sim"):
        assert f"[profile {profile}]" in aws_config
        assert f"credential_process = {GW} credential-process --profile {profile}" in aws_config


def _demo(gw_home, ca, moto, tmp_path, out):
    rich = pytest.importorskip("rich.console")
    from gw_emulators.demo.show import Demo

    demo = Demo(root=tmp_path, gw=GW, console=rich.Console(file=out, width=200), env=dict(gw_home.env))
    demo.services.update(ca=ca, moto=moto)
    demo.env["AWS_ENDPOINT_URL"] = moto.url
    demo.config_parts.append(f'[settings]\nca_bundle = "{ca.ca_path}"\n')
    return demo


def test_demo_part_fails_on_a_wrong_identity(gw_home, ca, moto, tmp_path):
    """When the AWS CLI ends up as another identity than the IoT role, the demo part fails."""
    from gw_emulators.demo.iot import part_iot, start_iot
    from gw_emulators.demo.show import DemoFailed

    out = io.StringIO()
    demo = _demo(gw_home, ca, moto, tmp_path, out)
    with ExitStack() as stack:
        start_iot(demo, stack)
        # the role alias now points at another role: the credentials are real but the wrong ones
        other = moto.create_role(f"NotTheDeviceRole{uuid.uuid4().hex[:8]}")
        demo.services["iot"].add_role_alias("demo-device", other)
        demo.write_config()
        with pytest.raises(DemoFailed, match=r"profile iot-device: the AWS CLI ran as .*NotTheDeviceRole[0-9a-f]{8}/demo-sensor, "
                                             r"expected .*DemoIotDevice/demo-sensor"):
            part_iot(demo)


def test_demo_part_fails_when_the_aws_cli_fails(gw_home, ca, moto, tmp_path):
    from gw_emulators.demo.iot import part_iot, start_iot
    from gw_emulators.demo.show import DemoFailed

    out = io.StringIO()
    demo = _demo(gw_home, ca, moto, tmp_path, out)
    with ExitStack() as stack:
        start_iot(demo, stack)
        demo.services["iot"].revoke(demo.root / "iot" / "iot-device-ca" / "demo-device.pem")
        demo.write_config()
        with pytest.raises(DemoFailed, match="aws sts get-caller-identity --profile iot-device failed"):
            part_iot(demo)
