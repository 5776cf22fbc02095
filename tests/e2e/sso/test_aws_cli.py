"""gw and the real AWS CLI / botocore share one SSO sign-in (docs/protocols.md §11).

- botocore's own SSO credential provider (an ``~/.aws/config`` profile with ``sso_session``)
  gets role credentials from the emulator with the token gw wrote;
- botocore's ``SSOTokenProvider`` refreshes that token in the file (CreateToken with the
  refresh token gw stored), and gw then uses the refreshed file;
- ``aws sts get-caller-identity`` through ``credential_process`` on an aws-sso profile.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import AWS_CLI
from tests.plugins.sso.conftest import START_URL, session_config, sso_profile
from tests.plugins.sso.test_step import _expire_soon, read_token

pytestmark = pytest.mark.skipif(AWS_CLI is None, reason="the AWS CLI is not installed (pip install awscli)")

NATIVE = f"""[sso-session work]
sso_start_url = {START_URL}
sso_region = us-east-1
sso_registration_scopes = sso:account:access

[profile native-prod]
sso_session = work
sso_account_id = 222222222222
sso_role_name = ReadOnly
region = us-east-1

[profile native-sandbox]
sso_session = work
sso_account_id = 123456789012
sso_role_name = ViewOnly
region = us-east-1
"""


def aws(home, *args: str) -> subprocess.CompletedProcess:
    assert AWS_CLI is not None
    return subprocess.run([AWS_CLI, *args, "--output", "json"], env=home.env, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


@pytest.fixture
def native(sso_home, moto):
    """~/.aws/config with the AWS CLI's own sso-session profiles; STS calls go to moto."""
    sso_home.aws_config.write_text(NATIVE)
    sso_home.env["AWS_ENDPOINT_URL_STS"] = moto.url
    return sso_home


def test_botocore_uses_the_token_gw_wrote_then_refreshes_it_and_gw_uses_the_refreshed_file(native, sso):
    assert native.run("sso", "login", "--session", "work").returncode == 0
    written = read_token(native)
    result = aws(native, "sts", "get-caller-identity", "--profile", "native-prod")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["Account"] == "222222222222"
    assert sso.calls["GetRoleCredentials"] == 1 and sso.calls["CreateToken"] == 1  # gw's token, as it was

    _expire_soon(native)  # under botocore's 15-minute refresh window
    result = aws(native, "sts", "get-caller-identity", "--profile", "native-sandbox")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["Account"] == "123456789012"
    refreshed = read_token(native)
    assert sso.calls["CreateToken"] == 2  # botocore's refresh_token grant with gw's client
    assert refreshed["accessToken"] != written["accessToken"] and refreshed["clientId"] == written["clientId"]
    assert not sso.valid_token(written["accessToken"])  # rotated: only the refreshed file works now

    native.write_config(session_config(sso_profile("sandbox", "123456789012", "AdministratorAccess")))
    result = native.run("credential-process", "--profile", "sandbox")
    assert result.returncode == 0, result.stderr
    assert sso.calls["CreateToken"] == 2 and sso.calls["authorize"] == 1  # gw read botocore's file


def test_aws_cli_through_credential_process_on_an_aws_sso_profile(sso_home, sso):
    assert sso_home.run("setup", "aws", "--profile", "dev").returncode == 0
    result = aws(sso_home, "sts", "get-caller-identity", "--profile", "dev")
    assert result.returncode == 0, result.stderr
    identity = json.loads(result.stdout)
    assert identity["Account"] == "111111111111" and ":assumed-role/ReadOnly/" in identity["Arn"]
    assert sso.calls["authorize"] == 1  # signed in from inside credential_process, through $BROWSER


def test_a_token_botocore_wrote_signs_gw_in(sso_home, sso, ca):
    """The token the AWS CLI's code writes (botocore's sso-oidc client, SSOTokenLoader.save_token and
    JSONFileCache, as after `aws sso login --use-device-code`) is used by gw with no sign-in of its own."""
    from datetime import UTC, datetime, timedelta

    import botocore.session
    from botocore import UNSIGNED
    from botocore.config import Config
    from botocore.utils import JSONFileCache, SSOTokenLoader

    oidc = botocore.session.Session(session_vars={"profile": (None, None, None, None)}).create_client(
        "sso-oidc", region_name="us-east-1", endpoint_url=sso.url, verify=str(ca.ca_path),
        config=Config(signature_version=UNSIGNED))
    reg = oidc.register_client(clientName="botocore-client-work", clientType="public",
                               scopes=["sso:account:access"])
    device = oidc.start_device_authorization(clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                                             startUrl=START_URL)
    sso.approve(device["userCode"])
    answer = oidc.create_token(clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                               grantType="urn:ietf:params:oauth:grant-type:device_code",
                               deviceCode=device["deviceCode"])
    when = lambda seconds: (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    cache = JSONFileCache(str(sso_home.home / ".aws" / "sso" / "cache"))
    SSOTokenLoader(cache).save_token(START_URL, {
        "startUrl": START_URL, "region": "us-east-1", "accessToken": answer["accessToken"],
        "expiresAt": when(answer["expiresIn"]), "refreshToken": answer["refreshToken"], "clientId": reg["clientId"],
        "clientSecret": reg["clientSecret"],
        "registrationExpiresAt": datetime.fromtimestamp(reg["clientSecretExpiresAt"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }, session_name="work")
    calls = dict(sso.calls)
    result = sso_home.run("credential-process", "--profile", "dev")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["AccountId"] == "111111111111"
    assert sso.calls["CreateToken"] == calls["CreateToken"] and sso.calls["RegisterClient"] == calls["RegisterClient"]
    assert "authorize" not in sso.calls
