"""``gw login``: console sign-in URLs checked by the federation emulator over real HTTPS."""

from __future__ import annotations

from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.core.gw_test_support import OTHER_ROLE, ROLE, assert_clean_failure

USER = '{ use = "aws-keys", access_key_id = "vault:akid", secret_access_key = "vault:secret" }'


@pytest.fixture
def login_home(aws_home, iam_user):
    aws_home.vault_set("akid", iam_user[0])
    aws_home.vault_set("secret", iam_user[1])
    return aws_home


def _config(home, fed, *steps: str, login: str = "") -> None:
    table = f'endpoint = "{fed.federation_url}"' + (f", {login}" if login else "")
    body = "[profiles.p]\nsteps = [\n" + "".join(f"  {s},\n" for s in steps) + "]\n"
    home.write_config(body + f"login = {{ {table} }}\n")


def _assume(role: str = ROLE) -> str:
    return f'{{ use = "assume-role", role_arn = "{role}" }}'


def _login(home, *extra: str):
    result = home.run_in_process("login", "--profile", "p", "--print", *extra)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    url = result.stdout.strip()
    assert "\n" not in url
    return url, result.stderr


def _follow(url: str, ca) -> requests.Response:
    response = requests.get(url, verify=str(ca.ca_path), allow_redirects=False, timeout=30)
    return response


def test_login_url_is_accepted_and_redirects_to_the_destination(login_home, federation, ca):
    _config(login_home, federation, USER, _assume(), login=f'destination = "{federation.console_url}"')
    url, stderr = _login(login_home)
    assert stderr == ""
    assert url.startswith(federation.federation_url + "?Action=login&")
    response = _follow(url, ca)
    assert response.status_code == 302
    assert response.headers["Location"] == federation.console_url
    session = federation.last_session
    assert session.logged_in and session.arn.endswith(":assumed-role/Admin/gw-p")
    assert not session.duration_requested
    # the sign-in token is single-use: the emulator really checked it
    assert _follow(url, ca).status_code == 400


def test_duration_is_sent_for_plain_role_credentials(login_home, federation, ca):
    _config(login_home, federation, USER, _assume())
    url, stderr = _login(login_home, "--duration", "3600")
    assert stderr == ""
    assert federation.last_session.duration_requested and federation.last_session.duration == 3600
    assert federation.last_session.kind == "assume-role" and not federation.last_session.chained
    assert _follow(url, ca).status_code == 302


def test_duration_is_left_out_for_role_chained_credentials(login_home, federation, ca, moto):
    _config(login_home, federation, USER, _assume(), _assume(OTHER_ROLE))
    url, stderr = _login(login_home, "--duration", "3600")  # the emulator answers 400 if it were sent
    assert [line for line in stderr.splitlines()] == [
        "gw: warning: SessionDuration is not allowed with role-chained credentials; "
        "the console session follows their lifetime"
    ]
    session = federation.last_session
    assert session.chained and not session.duration_requested
    assert session.arn.endswith(":assumed-role/Other/gw-p")
    assert _follow(url, ca).status_code == 302


def test_long_term_keys_go_through_get_federation_token(login_home, federation, ca, moto):
    _config(login_home, federation, USER)
    before = moto.count("GetFederationToken")
    url, stderr = _login(login_home, "--duration", "3600")
    assert moto.count("GetFederationToken") == before + 1
    assert stderr.splitlines() == [
        "gw: warning: SessionDuration is not allowed with GetFederationToken credentials; "
        "the console session follows their lifetime"
    ]
    session = federation.last_session
    assert session.kind == "federation-token" and not session.duration_requested
    response = _follow(url, ca)
    assert response.status_code == 302 and response.headers["Location"] == "https://console.aws.amazon.com/"


@pytest.mark.parametrize(
    "partition, destination",
    [("aws-us-gov", "https://console.amazonaws-us-gov.com/"), ("aws-cn", "https://console.amazonaws.cn/")],
)
def test_partitions_default_destinations(login_home, federation, ca, partition, destination):
    _config(login_home, federation, USER, _assume(), login=f'partition = "{partition}"')
    url, _ = _login(login_home)
    assert parse_qs(urlsplit(url).query)["Destination"] == [destination]
    response = _follow(url, ca)
    assert response.status_code == 302 and response.headers["Location"] == destination


@pytest.mark.parametrize(
    "partition, endpoint",
    [("aws", "https://signin.aws.amazon.com/federation"),
     ("aws-us-gov", "https://signin.amazonaws-us-gov.com/federation"),
     ("aws-cn", "https://signin.amazonaws.cn/federation")],
)
def test_partitions_default_endpoints(partition, endpoint):
    from gw_plugins.federation import plan_login

    args = SimpleNamespace(destination=None, issuer=None, duration=None, logout_first=False)
    assert plan_login({"partition": partition}, args).endpoint == endpoint


def test_logout_first_wraps_the_login_url(login_home, federation, ca):
    _config(login_home, federation, USER, _assume(), login=f'destination = "{federation.console_url}"')
    url, _ = _login(login_home, "--logout-first", "--issuer", "https://idp.example/")
    prefix = f"{federation.url}/oauth?Action=logout&redirect_uri="
    assert url.startswith(prefix)
    inner = parse_qs(urlsplit(url).query)["redirect_uri"][0]
    assert inner.startswith(federation.federation_url + "?Action=login&")
    first = _follow(url, ca)
    assert first.status_code == 302 and first.headers["Location"] == inner
    second = _follow(inner, ca)
    assert second.status_code == 302 and second.headers["Location"] == federation.console_url
    assert federation.last_session.issuer == "https://idp.example/"


def test_session_token_chains_cannot_open_the_console(login_home, federation):
    _config(login_home, federation, USER, '{ use = "session-token" }')
    result = login_home.run_in_process("login", "--profile", "p", "--print")
    assert_clean_failure(result, contains="GetSessionToken credentials, which cannot open the console")
    assert sum(federation.calls.values()) == 0  # refused before anything was sent


def test_duration_out_of_range_is_rejected_by_argparse(login_home, federation):
    _config(login_home, federation, USER, _assume())
    result = login_home.run_in_process("login", "--profile", "p", "--print", "--duration", "100")
    assert result.returncode == 2 and result.stdout == ""
    assert "argument --duration: must be between 900 and 43200 seconds" in result.stderr
    assert "Traceback" not in result.stderr
