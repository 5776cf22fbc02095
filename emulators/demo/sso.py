"""Part ``sso``: one IAM Identity Center sign-in, then every account and role.

Run as ``python -m gw_emulators.demo.sso URL``, it is the demo's ``$BROWSER``."""

from __future__ import annotations

from typing import Any

from ..sso import SsoEmulator
from .show import DemoFailed

DEMO_ACCOUNTS = {"111111111111": ("Development", ["AdministratorAccess", "ReadOnly"]),
                 "123456789012": ("Sandbox", ["ReadOnly"])}


def start_sso(demo: Any, stack: Any) -> None:
    """The demo's IAM Identity Center: approves every sign-in by itself; the "browser" follows the redirect."""
    import sys

    sso = SsoEmulator(demo.services["ca"], moto=demo.services["moto"], auto_approve=True)
    for account_id, (name, roles) in DEMO_ACCOUNTS.items():
        sso.add_account(account_id, name, roles)
    stack.enter_context(sso)
    demo.services["sso"] = sso
    demo.env.update(AWS_ENDPOINT_URL_SSO=sso.url, AWS_ENDPOINT_URL_SSO_OIDC=sso.url,
                    BROWSER=f"{sys.executable} -m gw_emulators.demo.sso")
    demo.config_parts.append('[sso_sessions.demo]\nstart_url = "https://d-9067000000.awsapps.com/start"\n'
                             'region = "us-east-1"\n')


def part_sso(demo: Any) -> None:
    """One browser sign-in to IAM Identity Center, then a profile per account and role, used by boto3."""
    import subprocess
    import sys


    sso = demo.services["sso"]
    demo.step("AWS IAM Identity Center: one sign-in, every account and role")
    demo.command("gw sso login --session demo      # PKCE in the browser (the demo's approves by itself)")
    login, _ = demo.gw_run("sso", "login", "--session", "demo")
    demo.output(login.stdout.strip())
    demo.command("gw sso roles --session demo")
    roles, _ = demo.gw_run("sso", "roles", "--session", "demo")
    demo.output(roles.stdout.strip())
    demo.command("gw setup aws --sso demo")
    setup, _ = demo.gw_run("setup", "aws", "--sso", "demo")
    demo.output(setup.stdout.strip())
    script = ("import boto3; print(boto3.Session(profile_name='demo.sandbox.ReadOnly')"
              ".client('sts').get_caller_identity()['Arn'])")
    demo.command("python -c 'boto3.Session(profile_name=\"demo.sandbox.ReadOnly\").client(\"sts\")"
                 ".get_caller_identity()'")
    result = subprocess.run([sys.executable, "-c", script], env=demo.env, capture_output=True, text=True,
                            timeout=120, start_new_session=True)
    if result.returncode != 0:
        raise DemoFailed(f"boto3 through the SSO profile failed: {result.stderr.strip()[-300:]}")
    demo.show(f"caller identity: [green]{result.stdout.strip()}[/green]   ({sso.calls['CreateToken']} CreateToken, "
              f"{sso.calls['GetRoleCredentials']} GetRoleCredentials; the token is in ~/.aws/sso/cache for the AWS CLI)")


def _demo_browser(url: str) -> None:
    """``$BROWSER`` of the demo: load the sign-in page and follow its redirect to gw's loopback listener."""
    import os
    import ssl
    import urllib.request

    context = ssl.create_default_context(cafile=os.environ.get("GW_DEMO_CA"))
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))
    opener.open(url, timeout=30).read()


if __name__ == "__main__":
    import sys

    _demo_browser(sys.argv[1])
