"""The demo functions handed to the lead: start_endorse + part_endorse run on a real Demo."""

from __future__ import annotations

import io
import os
from contextlib import ExitStack

from rich.console import Console

from gw_emulators.demo.endorse import part_endorse, start_endorse
from gw_emulators.demo.show import Demo
from tests.conftest import GW


def test_demo_part_shows_the_imsi_session_through_the_aws_cli(tmp_path, ca, moto):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GW_", "SORACOM_"))}
    env.update(HOME=str(tmp_path / "home"), GW_HOME=str(tmp_path / "state"), GW_CONFIG=str(tmp_path / "config.toml"),
               AWS_CONFIG_FILE=str(tmp_path / "home" / ".aws" / "config"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "home" / ".aws" / "credentials"),
               AWS_EC2_METADATA_DISABLED="true", AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL=moto.url)
    out = io.StringIO()
    demo = Demo(root=tmp_path, gw=GW, console=Console(file=out, width=200), env=env)
    demo.services.update(ca=ca, moto=moto)
    demo.config_parts.append(f'[settings]\nca_bundle = "{ca.ca_path}"\n')
    with ExitStack() as stack:
        start_endorse(demo, stack)
        demo.write_config()
        part_endorse(demo)
    shown = out.getvalue()
    imsi = demo.services["endorse"].default_imsi
    assert f"assumed-role/EndorseDevice/endorse-{imsi}" in shown
