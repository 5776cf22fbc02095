"""Fixtures for the SSO tests: the IAM Identity Center emulator (its role credentials come
from the suite's moto) and a gw home signed in through a scripted or real browser."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gw_emulators.sso import SsoEmulator

START_URL = "https://d-9067000000.awsapps.com/start"
BROWSER = Path(__file__).with_name("browser_approve.py")
ACCOUNTS = {
    "111111111111": ("Development", ["AdministratorAccess", "ReadOnly"]),
    "222222222222": ("Production", ["ReadOnly"]),
    "123456789012": ("Sandbox", ["AdministratorAccess", "PowerUser", "ViewOnly"]),
}


@pytest.fixture
def sso(ca, moto, clock):
    emulator = SsoEmulator(ca, moto=moto, clock=clock)
    for account_id, (name, roles) in ACCOUNTS.items():
        emulator.add_account(account_id, name, roles)
    with emulator:
        yield emulator


def session_config(*profiles: str, session: str = "work", start_url: str = START_URL) -> str:
    text = f'[sso_sessions.{session}]\nstart_url = "{start_url}"\nregion = "us-east-1"\n'
    return text + "".join(profiles)


def sso_profile(name: str, account_id: str = "111111111111", role: str = "ReadOnly", *, session: str = "work",
                extra: str = "") -> str:
    return (f'\n[profiles."{name}"]\nsteps = [{{ use = "aws-sso", session = "{session}", '
            f'account_id = "{account_id}", role_name = "{role}" }}{extra}]\n')


@pytest.fixture
def sso_home(aws_home, sso, ca, tmp_path):
    """A gw home whose SSO calls go to the emulator and whose $BROWSER presses Approve."""
    aws_home.env["AWS_ENDPOINT_URL_SSO"] = sso.url
    aws_home.env["AWS_ENDPOINT_URL_SSO_OIDC"] = sso.url
    aws_home.env["AWS_CA_BUNDLE"] = str(ca.ca_path)
    aws_home.env["SSO_TEST_CA"] = str(ca.ca_path)
    aws_home.env["SSO_TEST_BROWSER_LOG"] = str(tmp_path / "browser.log")
    aws_home.env["BROWSER"] = f"{sys.executable} {BROWSER}"
    aws_home.write_config(session_config(sso_profile("dev"), sso_profile("prod", "222222222222")))
    return aws_home
