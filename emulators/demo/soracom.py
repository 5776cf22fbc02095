"""Part ``soracom``: soracom-cli's profileCommand from 1Password, and an API session with TOTP."""

from __future__ import annotations

import json
import subprocess
from contextlib import ExitStack
from pathlib import Path

from .show import Demo, DemoFailed, redact

SORACOM_SEED = "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU"  # the demo SORACOM account's MFA seed


SORACOM_PROFILES = """[profiles.soracom-cli]
description = "SORACOM CLI root user: password and MFA code from 1Password"
steps = [
  {{ use = "onepassword", item = "SORACOM root", vault = "Private", produces = "soracom-credentials", fields = {{ email = "username", password = "password" }}, otp = true }},
]

[profiles.soracom-api]
description = "SORACOM API session of a SAM user, MFA code from the vault's TOTP seed"
steps = [
  {{ use = "soracom-keys", operator_id = "OP0000000001", username = "deploy", password = "vault:soracom-deploy", mfa_code = "totp:vault:soracom-mfa-seed" }},
  {{ use = "soracom-auth", endpoint = "{url}", token_timeout = 3600 }},
]
"""


def start_soracom(demo: Demo, stack: ExitStack) -> None:
    from ..op_cli import install_op_shim
    from ..soracom_api import SoracomApiEmulator

    api = SoracomApiEmulator(demo.services["ca"], mfa_seed=SORACOM_SEED)
    api.add_root("root@example.com", "demo-root-Pa55word", "OP0000000001", mfa=True)
    api.add_sam_user("OP0000000001", "deploy", "demo-deploy-Pa55word", mfa=True)
    api.add_subscriber("440103123456789", operator_id="OP0000000001")
    stack.enter_context(api)
    demo.services["soracom"] = api
    demo.secrets.update({"soracom-deploy": "demo-deploy-Pa55word", "soracom-mfa-seed": SORACOM_SEED})
    fixture = demo.root / "op-items.json"
    fixture.write_text(json.dumps({"items": [{
        "title": "SORACOM root", "vault": "Private",
        "fields": [
            {"id": "username", "label": "username", "type": "STRING", "value": "root@example.com"},
            {"id": "password", "label": "password", "type": "CONCEALED", "value": "demo-root-Pa55word"},
            {"id": "totp", "label": "one-time password", "type": "OTP", "value": SORACOM_SEED},
        ],
    }]}))
    fixture.chmod(0o600)
    shim = install_op_shim(demo.root / "bin", fixture)
    demo.env.update(GW_OP_PATH=str(shim), SORACOM_PROFILE_DIR=str(demo.root / "home" / ".soracom"))
    demo.config_parts.append(SORACOM_PROFILES.format(url=api.url))


def part_soracom(demo: Demo) -> None:
    """SORACOM CLI profileCommand from 1Password (with MFA), and an API sign-in with a TOTP code."""
    import requests

    api = demo.services["soracom"]
    demo.step("SORACOM CLI: profileCommand, credentials and MFA code from 1Password")
    demo.command("gw setup soracom --profile soracom-cli --soracom-profile gw-demo")
    setup, _ = demo.gw_run("setup", "soracom", "--profile", "soracom-cli", "--soracom-profile", "gw-demo")
    demo.output(setup.stdout.strip())
    profile_file = Path(demo.env["SORACOM_PROFILE_DIR"]) / "gw-demo.json"
    command = json.loads(profile_file.read_text())["profileCommand"]
    demo.show(f"{profile_file.name}: [bold]profileCommand[/bold] = {command}")
    demo.show("Running it the way soracom-cli does (argv split, no shell, stdin /dev/null):")
    import shlex

    result = subprocess.run(shlex.split(command), env=demo.env, stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, timeout=120, start_new_session=True)
    if result.returncode != 0:
        raise DemoFailed(f"profileCommand failed: {result.stderr.strip()}")
    profile = json.loads(result.stdout)
    demo.console.print_json(json.dumps(redact(profile)))
    body = {"email": profile["email"], "password": profile["password"], "mfaOTPCode": profile["mfaOTPCode"]}
    answer = requests.post(f"{api.url}/v1/auth", json=body, timeout=30, verify=demo.env["GW_DEMO_CA"])
    verdict = "[green]signed in[/green]" if answer.status_code == 200 else f"[red]refused ({answer.status_code})[/red]"
    demo.show(f"POST /v1/auth with that profile, as soracom-cli would: {verdict}")
    if answer.status_code != 200:
        raise DemoFailed(f"the SORACOM API emulator refused the profile: {answer.text[:200]}")

    demo.step("SORACOM API: a cached session for scripts (SAM user, TOTP from gw's vault)")
    demo.command("gw soracom-token --profile soracom-api --format env")
    token, elapsed = demo.gw_run("soracom-token", "--profile", "soracom-api", "--format", "env")
    values = dict(line.removeprefix("export ").split("=", 1) for line in token.stdout.splitlines() if "=" in line)
    shown = {k: (v[:8] + "…" if k in ("SORACOM_API_KEY", "SORACOM_TOKEN") else v) for k, v in values.items()}
    for key, value in shown.items():
        demo.output(f"export {key}={value}")
    again, again_time = demo.gw_run("soracom-token", "--profile", "soracom-api", "--format", "json")
    session = json.loads(again.stdout)
    listing = requests.get(
        f"{api.url}/v1/subscribers", timeout=30, verify=demo.env["GW_DEMO_CA"],
        headers={"X-Soracom-API-Key": session["apiKey"], "X-Soracom-Token": session["token"]},
    )
    demo.show(
        f"sign-in {elapsed * 1000:.0f} ms, then {again_time * 1000:.0f} ms from the cache "
        f"({api.calls['auth']} /v1/auth calls in all); GET /v1/subscribers -> HTTP {listing.status_code}, "
        f"{len(listing.json()) if listing.ok else 0} SIM(s)"
    )
