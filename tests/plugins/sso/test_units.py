"""The sso plugin's logic in-process: the token file, the refresh rule, polling, names, checks."""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest

from gw.plugin import StepError
from gw.testing import StubStepContext
from gw_plugins.sso import check_step, session_table, tokens
from gw_plugins.sso.commands import format_table, profile_name
from gw_plugins.sso.flow import access_token
from gw_plugins.sso.oidc import SsoSession
from gw_plugins.sso.signin import open_browser, sign_in_device
from tests.plugins.sso.conftest import START_URL


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("BROWSER", "DISPLAY", "WAYLAND_DISPLAY", "AWS_ENDPOINT_URL", "AWS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def session(sso, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSO_OIDC", sso.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSO", sso.url)
    return SsoSession(start_url=START_URL, region="us-east-1", name="work")


@pytest.fixture
def ctx(tmp_path, ca):
    return StubStepContext(tmp_path, plugin="sso", tls_verify=str(ca.ca_path))


def test_the_token_file_is_what_botocore_reads(home):
    from botocore.utils import JSONFileCache, SSOTokenLoader

    token = tokens.Token(START_URL, "us-east-1", "aoa-x", 1_900_000_000, "aor-y", "cid", "csecret", 1_950_000_000)
    path = tokens.save("work", token)
    assert os.path.basename(path) == hashlib.sha1(b"work").hexdigest() + ".json"
    loaded = SSOTokenLoader(JSONFileCache(os.path.dirname(path)))(START_URL, session_name="work")
    assert loaded["accessToken"] == "aoa-x" and loaded["expiresAt"] == "2030-03-17T17:46:40Z"
    assert tokens.load("work") == token
    # botocore's own writer may use an offset instead of Z; a naive time is read as UTC
    doc = json.loads(open(path).read())
    doc["expiresAt"] = "2030-03-17T17:46:40+00:00"
    doc["registrationExpiresAt"] = tokens.format_time(1_950_000_000).rstrip("Z")
    open(path, "w").write(json.dumps(doc))
    assert tokens.load("work") == token


def test_no_refresh_fields_without_a_complete_registration(home):
    tokens.save(START_URL, tokens.Token(START_URL, "us-east-1", "aoa-x", 1_900_000_000, "aor-y"))
    assert set(json.loads(open(tokens.cache_path(START_URL)).read())) == {"startUrl", "region", "accessToken",
                                                                          "expiresAt"}


@pytest.mark.parametrize("content", [b"", b"not json", b"[]", b'{"accessToken": 1}', b'{"accessToken": "a"}',
                                     b'{"accessToken": "a", "expiresAt": "soon"}'])
def test_an_unreadable_token_file_is_no_token(home, content):
    os.makedirs(tokens.cache_dir())
    open(tokens.cache_path("work"), "wb").write(content)
    assert tokens.load("work") is None


def test_a_symlinked_token_file_is_not_followed(home, tmp_path):
    tokens.save("other", tokens.Token(START_URL, "us-east-1", "aoa-x", 1_900_000_000))
    os.symlink(tokens.cache_path("other"), tokens.cache_path("work"))
    assert tokens.load("work") is None


def _save(seconds_left: float, refreshable: bool = True, **kw) -> tokens.Token:
    token = tokens.Token(START_URL, "us-east-1", "aoa-old", time.time() + seconds_left,
                         "aor-old" if refreshable else None, "cid" if refreshable else None,
                         "csecret" if refreshable else None, time.time() + 86400 if refreshable else None, **kw)
    tokens.save("work", token)
    return token


def test_more_than_15_minutes_left_is_used_as_it_is(home, session, ctx, sso):
    _save(16 * 60)
    assert access_token(ctx, session).access_token == "aoa-old"
    assert sum(sso.calls.values()) == 0


def test_under_15_minutes_a_refused_refresh_still_uses_a_usable_token(home, session, ctx, sso):
    _save(10 * 60)
    assert access_token(ctx, session).access_token == "aoa-old"
    assert sso.calls["CreateToken"] == 1  # tried (the client is unknown to the emulator), kept the token


def test_an_expired_token_whose_refresh_is_refused_says_sign_in_again(home, session, ctx, sso):
    _save(-60)
    with pytest.raises(StepError, match="sign in again: gw sso login --session work"):
        access_token(ctx, session)
    assert sso.calls["authorize"] == 0 and sso.calls["StartDeviceAuthorization"] == 0


def test_a_token_of_another_start_url_is_ignored(home, session, ctx, sso):
    token = _save(3600)
    token.start_url = "https://elsewhere.awsapps.com/start"
    tokens.save("work", token)
    with pytest.raises(StepError, match="sign in again"):
        access_token(ctx, session, sign_in=False)


def test_device_polling_honours_slow_down(home, session, ctx, sso):
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:
            sso.approve(next(iter(sso.devices.values())).user_code)

    result = sign_in_device(ctx, session, sleep=sleep)
    assert result["answer"]["accessToken"].startswith("aoa-")
    assert slept == [1, 6]  # the emulator's interval, then +5 s after slow_down (botocore's rule)
    assert any("enter the code" in w for w in ctx.warnings)
    assert result["answer"]["accessToken"] in ctx.added_secrets and result["client"]["clientSecret"] in ctx.added_secrets


def test_browser_from_the_environment(home, monkeypatch, tmp_path):
    out = tmp_path / "opened"
    script = tmp_path / "b.sh"
    script.write_text(f'#!/bin/sh\necho "$1" > {out}\n')
    script.chmod(0o700)
    assert open_browser("https://x/") is False  # no $BROWSER, no display
    monkeypatch.setenv("BROWSER", f"/nonexistent/browser:{script} %s")
    assert open_browser("https://x/?a=1&b=2") is True
    for _ in range(100):
        if out.exists() and out.read_text():
            break
        time.sleep(0.02)
    assert out.read_text().strip() == "https://x/?a=1&b=2"


def test_table_fits_80_columns():
    rows = [{"accountId": "1" * 12, "accountName": "N" * 60, "emailAddress": "", "roleName": "R" * 90},
            {"accountId": "2" * 12, "accountName": "Dev", "emailAddress": "", "roleName": "ReadOnly"}]
    lines = format_table(rows).splitlines()
    assert max(map(len, lines)) <= 80
    assert lines[1].split() == ["222222222222", "Dev", "ReadOnly"]  # sorted by account name
    assert lines[2].startswith("111111111111  " + "N" * 27 + "…") and lines[2].endswith("…")
    assert format_table([]) == "no accounts or roles are assigned to this user"


def test_profile_names_are_predictable_and_fit():
    assert profile_name("work", "Development", "111111111111", "ReadOnly") == "work.development.ReadOnly"
    assert profile_name("work", "Ünïcode Tëam!", "111111111111", "Admin") == "work.n-code-t-am.Admin"
    assert profile_name("work", "", "111111111111", "Admin") == "work.111111111111.Admin"
    long = profile_name("work", "x" * 60, "111111111111", "y" * 60)
    assert len(long) <= 64 and long.endswith(".111111111111")


@pytest.mark.parametrize("options, message", [
    ({"account_id": "111111111111", "role_name": "R"}, "give either session"),
    ({"session": "w", "start_url": "https://x", "account_id": "111111111111", "role_name": "R"}, "give either"),
    ({"start_url": "https://x", "account_id": "111111111111", "role_name": "R"}, "needs sso_region"),
    ({"session": "w", "sso_region": "eu-west-1", "account_id": "111111111111", "role_name": "R"}, "goes in the"),
    ({"session": "w", "account_id": "1111", "role_name": "R"}, "12 digits"),
    ({"start_url": "http://x", "sso_region": "eu-west-1", "account_id": "111111111111", "role_name": "R"}, "https"),
])
def test_step_checks(options, message):
    with pytest.raises(ValueError, match=message):
        check_step(options)


@pytest.mark.parametrize("table, message", [
    ({"start_url": "https://x/start"}, "missing required option 'region'"),
    ({"start_url": "https://x/start", "region": "moon"}, "not an AWS region name"),
    ({"start_url": "http://x/start", "region": "eu-west-1"}, "https://"),
    ({"start_url": "https://x/start", "region": "eu-west-1", "scopes": "sso:account:access"}, "array of strings"),
])
def test_session_table_checks(table, message):
    from gw.plugin import ConfigError

    with pytest.raises(ConfigError, match=message):
        session_table({"w": table}, "w")


@pytest.mark.parametrize("expiration", [10**20, 0, True, 1.5e12, None])
def test_role_credentials_gw_cannot_use_are_one_line(home, ctx, ca, expiration):
    from gw_emulators.httpserver import EmulatorServer, json_response
    from gw_plugins.sso.flow import role_credentials

    portal = EmulatorServer(ca)
    portal.name = "scripted-portal"
    portal.route("GET", r"/federation/credentials", lambda request: json_response(200, {"roleCredentials": {
        "accessKeyId": "ASIAEXAMPLE", "secretAccessKey": "s" * 40, "sessionToken": "t" * 100,
        "expiration": expiration}}))
    with portal:
        _save(3600)
        session = SsoSession(start_url=START_URL, region="us-east-1", name="work", portal_endpoint=portal.url)
        with pytest.raises(StepError, match="without complete, unexpired credentials"):
            role_credentials(ctx, session, "111111111111", "ReadOnly")


def test_endpoint_precedence_follows_botocore(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SSO", "AWS_ENDPOINT_URL_SSO_OIDC"):
        monkeypatch.delenv(name, raising=False)
    plain = SsoSession(start_url=START_URL, region="eu-west-1")
    assert (plain.oidc, plain.portal) == ("https://oidc.eu-west-1.amazonaws.com",
                                          "https://portal.sso.eu-west-1.amazonaws.com")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://all.example/")
    assert (plain.oidc, plain.portal) == ("https://all.example", "https://all.example")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSO_OIDC", "https://oidc.example")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSO", "https://portal.example")
    assert (plain.oidc, plain.portal) == ("https://oidc.example", "https://portal.example")
    own = SsoSession(start_url=START_URL, region="eu-west-1", oidc_endpoint="https://o", portal_endpoint="https://p")
    assert (own.oidc, own.portal) == ("https://o", "https://p")
