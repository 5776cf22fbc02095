"""Part ``krypton``: a (software) SIM authenticates to SORACOM Krypton."""

from __future__ import annotations

import json
import os
from contextlib import ExitStack

from .show import Demo, DemoFailed, redact

KRYPTON_PROFILE = """[profiles.device]
description = "AWS credentials from the SIM via SORACOM Krypton (emulated SIM for the demo)"
steps = [
  {{ use = "krypton", operation = "cognito-credentials", reader = "emulated", sim_file = "{sim_file}", endpoint = "{url}" }},
]
login = {{ endpoint = "{federation}" }}
"""


def start_krypton(demo: Demo, stack: ExitStack) -> None:
    from ..krypton import KryptonEmulator

    krypton = KryptonEmulator(demo.services["ca"], aws_endpoint=demo.services["moto"].url)
    imsi, k, opc = "440103123456789", os.urandom(16), os.urandom(16)
    krypton.add_subscriber(imsi, k, opc, sqn=0)
    stack.enter_context(krypton)
    demo.services["krypton"] = krypton
    sim_file = demo.root / "virtual-sim.json"
    sim_file.write_text(json.dumps({"imsi": imsi, "k": k.hex(), "opc": opc.hex(), "sqn": 0}))
    sim_file.chmod(0o600)
    demo.config_parts.append(KRYPTON_PROFILE.format(
        sim_file=sim_file, url=krypton.url, federation=demo.services["federation"].federation_url))


def part_krypton(demo: Demo) -> None:
    """A (software) SIM authenticates to Krypton: AWS credentials and a console login, no password."""
    import requests

    krypton = demo.services["krypton"]
    demo.step("SORACOM Krypton: the SIM becomes AWS credentials")
    demo.show("Profile [bold]device[/bold]: a SIM (emulated here; a USB reader or modem in real life) -> Krypton "
              "-> Cognito credentials.")
    demo.command("gw credential-process --profile device")
    cold, cold_time = demo.gw_run("credential-process", "--profile", "device")
    demo.console.print_json(json.dumps(redact(json.loads(cold.stdout))))
    demo.show(f"{cold_time * 1000:.0f} ms: {krypton.handshakes} SIM handshake, "
              f"{krypton.calls['aws/cognito/credentials']} credentials call")
    demo.gw_run("cache", "clear", "--profile", "device")
    demo.command("gw cache clear --profile device && gw credential-process --profile device")
    _, warm_time = demo.gw_run("credential-process", "--profile", "device")
    demo.show(f"{warm_time * 1000:.0f} ms: still {krypton.handshakes} handshake - the Krypton session "
              f"(keyId, CK) stays in gw's encrypted cache for its hour")
    demo.command("gw login --profile device --print")
    login, _ = demo.gw_run("login", "--profile", "device", "--print")
    answer = requests.get(login.stdout.strip(), allow_redirects=False, timeout=30, verify=demo.env["GW_DEMO_CA"])
    if answer.status_code != 302:
        raise DemoFailed("the federation emulator refused the Krypton credentials")
    demo.show(f"console sign-in URL [green]accepted[/green] for "
              f"{demo.services['federation'].last_session.arn}: no password, no MFA code typed")
