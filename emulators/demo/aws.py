"""Parts ``aws`` and ``login``: MFA role credentials through credential_process, boto3 and the console."""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import ExitStack

from .show import Demo, DemoFailed, redact

SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # the demo's AWS MFA seed (base32, 160 bits)


def start_aws(demo: Demo, stack: ExitStack) -> None:
    """moto (STS, IAM), the console federation endpoint, the demo user and its MFA-protected role."""
    from ..aws import MotoStack
    from ..federation import FederationEmulator
    from ..tls import LocalCA

    ca = LocalCA(demo.root / "ca")
    demo.services["ca"] = ca
    moto = stack.enter_context(MotoStack())
    demo.services["moto"] = moto
    federation = FederationEmulator(ca, moto)
    stack.enter_context(federation)
    demo.services["federation"] = federation
    demo.env.update(AWS_ENDPOINT_URL=moto.url, GW_DEMO_CA=str(ca.ca_path))
    demo.config_parts.append(f'[settings]\nca_bundle = "{ca.ca_path}"\n')
    demo.config_parts.append(admin_profile(federation.federation_url))
    akid, secret = moto.create_user("demo-user")
    moto.create_role("DemoAdmin")
    demo.secrets.update({"demo-akid": akid, "demo-secret": secret, "demo-mfa-seed": SEED})


def part_aws(demo: Demo) -> None:
    """credential_process cold and warm, boto3 through ~/.aws/config, MFA by TOTP."""
    moto = demo.services["moto"]
    demo.step("AWS: credential_process with an MFA-protected role")
    demo.show("Profile [bold]admin[/bold]: IAM user keys from gw's vault -> AssumeRole with a TOTP MFA code.")
    demo.command("gw credential-process --profile admin     # cold: STS call")
    cold, cold_time = demo.gw_run("credential-process", "--profile", "admin")
    doc = json.loads(cold.stdout)
    demo.console.print_json(json.dumps(redact(doc)))
    demo.command("gw credential-process --profile admin     # warm: from the encrypted cache")
    warm, warm_time = demo.gw_run("credential-process", "--profile", "admin")
    same = "same credentials" if warm.stdout == cold.stdout else "DIFFERENT credentials"
    demo.show(
        f"cold: [bold]{cold_time * 1000:.0f} ms[/bold] ({moto.count('AssumeRole')} AssumeRole call)   "
        f"warm: [bold]{warm_time * 1000:.0f} ms[/bold] ({same}, no STS call)"
    )

    demo.step("AWS: any SDK, through ~/.aws/config")
    demo.command("gw setup aws --profile admin")
    setup, _ = demo.gw_run("setup", "aws", "--profile", "admin", "--region", "us-east-1")
    demo.output(setup.stdout.strip())
    demo.command("python -c 'boto3.Session(profile_name=\"admin\").client(\"sts\").get_caller_identity()'")
    script = "import boto3; print(boto3.Session(profile_name='admin').client('sts').get_caller_identity()['Arn'])"
    result = subprocess.run([sys.executable, "-c", script], env=demo.env, capture_output=True, text=True,
                            timeout=120, start_new_session=True)
    if result.returncode != 0:
        raise DemoFailed(f"boto3 via credential_process failed: {result.stderr.strip()[-300:]}")
    demo.show(f"caller identity: [green]{result.stdout.strip()}[/green]")


def part_login(demo: Demo) -> None:
    """A console sign-in URL from the cached role credentials."""
    import requests

    federation = demo.services["federation"]
    demo.step("AWS console: gw login")
    demo.command("gw login --profile admin --print")
    result, elapsed = demo.gw_run("login", "--profile", "admin", "--print")
    url = result.stdout.strip()
    demo.show(f"{url[:90]}…  ({elapsed * 1000:.0f} ms)")
    answer = requests.get(url, allow_redirects=False, timeout=30, verify=demo.env["GW_DEMO_CA"])
    landing = answer.headers.get("Location", "")
    verdict = "[green]accepted[/green]" if answer.status_code == 302 else f"[red]refused ({answer.status_code})[/red]"
    demo.show(f"federation endpoint: {verdict}, redirects to {landing}")
    if answer.status_code != 302:
        raise DemoFailed("the federation emulator refused the login URL")
    session = federation.last_session
    demo.show(f"console session for [bold]{session.arn}[/bold], {session.duration // 60} min")


def admin_profile(federation_url: str) -> str:
    return f"""[profiles.admin]
description = "IAM user keys from the vault, then an MFA-protected role"
steps = [
  {{ use = "aws-keys", access_key_id = "vault:demo-akid", secret_access_key = "vault:demo-secret" }},
  {{ use = "assume-role", role_arn = "arn:aws:iam::123456789012:role/DemoAdmin", mfa_serial = "arn:aws:iam::123456789012:mfa/demo-user", mfa_code = "totp:vault:demo-mfa-seed" }},
]
login = {{ endpoint = "{federation_url}", issuer = "gw-demo" }}
"""
