"""Part ``endorse``: an Endorse token exchanged for AWS credentials by the exchange service."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from ..endorse import EndorseEmulator
from .show import DemoFailed


def start_endorse(demo: Any, stack: Any) -> None:
    """Start the Endorse emulator and a real ``gw serve endorse-exchange`` for the demo.

    ``demo`` is a :class:`gw_emulators.demo.Demo` whose ``services`` hold ``"ca"`` and
    ``"moto"``; ``stack`` an ExitStack that stops both at the end. Adds the profile
    ``device`` (endorse -> endorse-exchange) to the demo config.
    """

    ca, moto = demo.services["ca"], demo.services["moto"]
    endorse = stack.enter_context(EndorseEmulator(ca))
    demo.services["endorse"] = endorse
    role_arn = moto.create_role("EndorseDevice")
    config = demo.root / "endorse-exchange.toml"
    config.write_text(
        "[endorse_exchange]\n"
        f'key_store_url = "{endorse.key_store_url}"\n'
        f'allowed_imsis = ["{endorse.default_imsi}"]\n'
        f'role_arn = "{role_arn}"\n'
        f'sts_endpoint = "{moto.url}"\n'
        'region = "us-east-1"\n'
        f'ca_bundle = "{ca.ca_path}"\n'
    )
    # the service's own AWS identity (a Lambda function's role in production)
    env = {**demo.env, "AWS_ACCESS_KEY_ID": "AKIAEXCHANGESERVICE0", "AWS_SECRET_ACCESS_KEY": "exchange-service-secret"}
    service = subprocess.Popen(
        [demo.gw, "serve", "endorse-exchange", "--config", str(config), "--listen", "127.0.0.1:0"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        start_new_session=True,
    )
    stack.callback(service.wait, 10)
    stack.callback(service.terminate)
    assert service.stdout is not None
    url = service.stdout.readline().strip()  # printed once it listens
    if not url.startswith("http://127.0.0.1:"):
        from .show import DemoFailed

        raise DemoFailed("the Endorse exchange service did not start")
    demo.services["endorse-exchange"] = url
    demo.config_parts.append(
        "[profiles.endorse-device]\n"
        'description = "SIM-authenticated: a SORACOM Endorse token exchanged for an AWS role"\n'
        'region = "us-east-1"\n'
        f'steps = [ {{ use = "endorse", endpoint = "{endorse.url}", verify = true, '
        f'key_store_url = "{endorse.key_store_url}" }},\n'
        f'          {{ use = "endorse-exchange", url = "{url}/exchange" }} ]\n'
    )


def part_endorse(demo: Any) -> None:
    """A device's Endorse token -> the exchange service -> AWS credentials -> the real AWS CLI."""
    import json
    import shutil
    import sys

    endorse = demo.services["endorse"]
    demo.step("SORACOM Endorse: the SIM is the credential")
    demo.show(f"Profile [bold]endorse-device[/bold]: a token from SORACOM Endorse for SIM {endorse.default_imsi} (verified "
              f"locally, nonce checked) -> the exchange service ({demo.services['endorse-exchange']}) -> AWS credentials.")
    aws_config = Path(demo.env["AWS_CONFIG_FILE"])
    aws_config.parent.mkdir(parents=True, exist_ok=True)
    with open(aws_config, "a") as f:
        f.write(f"\n[profile endorse-device]\ncredential_process = {demo.gw} credential-process --profile endorse-device\n"
                "region = us-east-1\n")

    aws = shutil.which("aws", path=str(Path(sys.executable).parent)) or shutil.which("aws")
    if aws is None:
        raise DemoFailed("the AWS CLI is not installed (pip install awscli)")
    demo.command("aws sts get-caller-identity --profile endorse-device")
    result = subprocess.run(check=False, args=[aws, "sts", "get-caller-identity", "--profile", "endorse-device", "--output", "json"],
                            env=demo.env, capture_output=True, text=True, timeout=120, start_new_session=True)
    if result.returncode != 0:
        raise DemoFailed(f"aws sts get-caller-identity failed: {result.stderr.strip()[-300:]}")
    arn = json.loads(result.stdout)["Arn"]
    demo.show(f"caller identity: [green]{arn}[/green] (session named after the SIM's IMSI)")
