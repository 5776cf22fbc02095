"""Console federation emulator: real HTTPS from requests, credentials minted by boto3 in moto."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import requests

from gw_emulators.aws import MotoStack
from gw_emulators.federation import FederationEmulator
from gw_emulators.tls import LocalCA


def _session(creds: dict[str, Any]) -> str:
    return json.dumps(
        {"sessionId": creds["AccessKeyId"], "sessionKey": creds["SecretAccessKey"], "sessionToken": creds["SessionToken"]}
    )


def _get(federation: FederationEmulator, ca: LocalCA, path: str, params: dict[str, str]) -> requests.Response:
    return requests.get(
        f"{federation.url}{path}", params=params, verify=str(ca.ca_path), allow_redirects=False, timeout=10
    )


def _signin(federation: FederationEmulator, ca: LocalCA, session: str, duration: str | None = None) -> requests.Response:
    params = {"Action": "getSigninToken", "Session": session}
    if duration is not None:
        params["SessionDuration"] = duration
    return _get(federation, ca, "/federation", params)


def _assert_html_400(response: requests.Response) -> None:
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        response.json()


@pytest.fixture
def role_creds(moto: MotoStack, user: tuple[str, str], role_arn: str) -> dict[str, Any]:
    sts = moto.client("sts", *user)
    return sts.assume_role(RoleArn=role_arn, RoleSessionName="console", DurationSeconds=3600)["Credentials"]


@pytest.fixture
def chained_creds(moto: MotoStack, role_creds: dict[str, Any], role_arn: str) -> dict[str, Any]:
    sts = moto.client("sts", role_creds["AccessKeyId"], role_creds["SecretAccessKey"], role_creds["SessionToken"])
    return sts.assume_role(RoleArn=role_arn, RoleSessionName="chained")["Credentials"]


@pytest.fixture
def fed_creds(moto: MotoStack, user: tuple[str, str]) -> dict[str, Any]:
    policy = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
    return moto.client("sts", *user).get_federation_token(Name="console-user", Policy=policy)["Credentials"]


def test_role_credentials_get_a_token_and_log_in(federation, ca, moto, role_creds) -> None:
    r = _signin(federation, ca, _session(role_creds))
    assert r.status_code == 200
    token = r.json()["SigninToken"]
    granted = federation.last_session
    assert granted.arn == moto.lookup(role_creds["AccessKeyId"]).arn
    assert granted.kind == "assume-role" and not granted.duration_requested and not granted.logged_in
    assert 3500 < granted.duration <= 3600  # follows the credentials' remaining lifetime
    assert role_creds["SecretAccessKey"] not in repr(granted)

    destination = "https://console.aws.amazon.com/ec2/home?region=us-east-1"
    login = _get(
        federation, ca, "/federation",
        {"Action": "login", "Issuer": "https://example.org/gw", "Destination": destination, "SigninToken": token},
    )
    assert login.status_code == 302 and login.headers["Location"] == destination
    assert federation.last_session.logged_in and federation.last_session.issuer == "https://example.org/gw"
    # single use
    again = _get(federation, ca, "/federation", {"Action": "login", "Destination": destination, "SigninToken": token})
    _assert_html_400(again)
    assert federation.calls["federation"] == 3
    assert (federation.calls["getSigninToken"], federation.calls["login"], federation.calls["login-rejected"]) == (1, 1, 1)


def test_session_duration_for_plain_role_credentials(federation, ca, role_creds) -> None:
    for value in ("900", "43200"):
        r = _signin(federation, ca, _session(role_creds), value)
        assert r.status_code == 200, r.text
        assert federation.last_session.duration == int(value) and federation.last_session.duration_requested
    for bad in ("899", "43201", "abc", "3600.0", "-900", ""):
        _assert_html_400(_signin(federation, ca, _session(role_creds), bad))
    assert federation.calls["getSigninToken"] == 2 and federation.calls["getSigninToken-rejected"] == 6


def test_federation_token_credentials(federation, ca, moto, fed_creds) -> None:
    r = _signin(federation, ca, _session(fed_creds))
    assert r.status_code == 200
    assert federation.last_session.kind == "federation-token"
    assert federation.last_session.arn.endswith(":federated-user/console-user")
    assert 43100 < federation.last_session.duration <= 43200  # moto's 12 h default lifetime
    _assert_html_400(_signin(federation, ca, _session(fed_creds), "3600"))


def test_chained_role_credentials_refuse_session_duration(federation, ca, moto, chained_creds) -> None:
    assert moto.lookup(chained_creds["AccessKeyId"]).chained
    assert _signin(federation, ca, _session(chained_creds)).status_code == 200
    assert federation.last_session.chained is True
    _assert_html_400(_signin(federation, ca, _session(chained_creds), "3600"))


def test_role_assumed_from_a_session_token_refuses_session_duration(federation, ca, moto, user, role_arn) -> None:
    """protocols.md section 2: a role assumed with GetSessionToken (MFA session) credentials signs
    in, but SessionDuration is refused (only a role assumed with long-term IAM user keys takes it)."""
    session = moto.client("sts", *user).get_session_token(DurationSeconds=43200)["Credentials"]
    sts = moto.client("sts", session["AccessKeyId"], session["SecretAccessKey"], session["SessionToken"])
    creds = sts.assume_role(RoleArn=role_arn, RoleSessionName="via-mfa-session")["Credentials"]
    issued = moto.lookup(creds["AccessKeyId"])
    assert issued.kind == "assume-role" and issued.source_kind == "session-token" and not issued.chained
    refused = _signin(federation, ca, _session(creds), "3600")
    _assert_html_400(refused)
    assert "long-term IAM user credentials" in refused.text
    assert federation.calls["getSigninToken-rejected"] == 1
    # without SessionDuration it signs in, for the credentials' own remaining lifetime
    accepted = _signin(federation, ca, _session(creds))
    assert accepted.status_code == 200 and accepted.json()["SigninToken"]
    assert not federation.last_session.duration_requested
    assert 3500 < federation.last_session.duration <= 3600


def test_role_assumed_with_long_term_keys_records_its_source(federation, ca, moto, role_creds) -> None:
    assert moto.lookup(role_creds["AccessKeyId"]).source_kind == "long-term"
    assert _signin(federation, ca, _session(role_creds), "900").status_code == 200
    assert federation.last_session.duration == 900


def test_web_identity_credentials_work(federation, ca, moto, role_arn) -> None:
    creds = moto.client("sts").assume_role_with_web_identity(
        RoleArn=role_arn, RoleSessionName="web", WebIdentityToken="header.payload.signature"
    )["Credentials"]
    assert _signin(federation, ca, _session(creds), "7200").status_code == 200
    assert federation.last_session.kind == "web-identity"


def test_credentials_that_cannot_sign_in(federation, ca, moto, user) -> None:
    session_creds = moto.client("sts", *user).get_session_token()["Credentials"]
    _assert_html_400(_signin(federation, ca, _session(session_creds)))
    akid, secret = user
    long_term = {"AccessKeyId": akid, "SecretAccessKey": secret, "SessionToken": "none"}
    _assert_html_400(_signin(federation, ca, _session(long_term)))
    unknown = {"AccessKeyId": "ASIAUNKNOWNUNKNOWN00", "SecretAccessKey": "x" * 40, "SessionToken": "y" * 100}
    _assert_html_400(_signin(federation, ca, _session(unknown)))
    assert federation.last_session is None
    assert federation.calls["getSigninToken-rejected"] == 3


def test_wrong_secret_or_token_and_bad_session_documents(federation, ca, role_creds) -> None:
    good = json.loads(_session(role_creds))
    bad_documents = [
        # a different last character (appending "A" alone left the key unchanged when it ended in "A")
        {**good, "sessionKey": good["sessionKey"][:-1] + ("B" if good["sessionKey"].endswith("A") else "A")},
        {**good, "sessionToken": good["sessionToken"] + "x"},
        {**good, "extra": "field"},
        {k: v for k, v in good.items() if k != "sessionToken"},
        {**good, "sessionToken": ""},
        [good],
    ]
    for doc in bad_documents:
        _assert_html_400(_signin(federation, ca, json.dumps(doc)))
    _assert_html_400(_signin(federation, ca, "{not json"))
    _assert_html_400(_get(federation, ca, "/federation", {"Action": "getSigninToken"}))
    _assert_html_400(_get(federation, ca, "/federation", {"Action": "somethingElse"}))
    assert federation.calls["getSigninToken"] == 0


def test_expired_credentials_are_refused(federation, ca, role_creds, clock) -> None:
    clock.advance(hours=1, seconds=1)
    _assert_html_400(_signin(federation, ca, _session(role_creds)))


def test_remaining_lifetime_shrinks_the_default_duration(federation, ca, role_creds, clock) -> None:
    clock.advance(minutes=40)
    assert _signin(federation, ca, _session(role_creds)).status_code == 200
    assert 1100 < federation.last_session.duration <= 1200


def test_signin_token_expires_after_15_minutes(federation, ca, role_creds, clock) -> None:
    token = _signin(federation, ca, _session(role_creds)).json()["SigninToken"]
    clock.advance(minutes=15, seconds=1)
    login = {"Action": "login", "Destination": "https://console.aws.amazon.com/", "SigninToken": token}
    _assert_html_400(_get(federation, ca, "/federation", login))


def test_login_needs_a_known_token_and_a_destination(federation, ca, role_creds) -> None:
    token = _signin(federation, ca, _session(role_creds)).json()["SigninToken"]
    _assert_html_400(_get(federation, ca, "/federation", {"Action": "login", "Destination": "https://console.aws.amazon.com/", "SigninToken": "nope"}))
    _assert_html_400(_get(federation, ca, "/federation", {"Action": "login", "SigninToken": token}))
    _assert_html_400(_get(federation, ca, "/federation", {"Action": "login", "Destination": "/relative", "SigninToken": token}))
    # the failed attempts did not consume it
    ok = _get(federation, ca, "/federation", {"Action": "login", "Destination": federation.console_url, "SigninToken": token})
    assert ok.status_code == 302


def test_logout_wrapper_leads_through_login_to_the_console(federation, ca, moto, role_creds) -> None:
    token = _signin(federation, ca, _session(role_creds)).json()["SigninToken"]
    login_url = f"{federation.federation_url}?" + urlencode(
        {"Action": "login", "Issuer": "gw", "Destination": federation.console_url, "SigninToken": token}
    )
    wrapped = f"{federation.logout_url}?Action=logout&redirect_uri={quote(login_url, safe='')}"
    r = requests.get(wrapped, verify=str(ca.ca_path), timeout=10)
    assert [h.status_code for h in r.history] == [302, 302]
    assert r.history[0].headers["Location"] == login_url
    assert r.status_code == 200 and moto.lookup(role_creds["AccessKeyId"]).arn in r.text
    assert (federation.calls["oauth"], federation.calls["logout"], federation.calls["login"]) == (1, 1, 1)
    _assert_html_400(_get(federation, ca, "/oauth", {"Action": "login"}))
    assert federation.calls["logout-rejected"] == 1


def test_untrusted_clients_fail_tls(federation) -> None:
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(federation.federation_url, timeout=10)
