"""The aws-sso step through the real gw against the SSO emulator (docs/protocols.md §11):
sign-in, the AWS CLI's token cache, refresh, sharing, and one-line errors."""

from __future__ import annotations

import hashlib
import json
import re
import stat
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gw.testing import gw_executable
from tests.core.gw_test_support import assert_clean_failure
from tests.plugins.sso.conftest import START_URL, session_config, sso_profile

GW = gw_executable()
TOKEN_FIELDS = {"startUrl", "region", "accessToken", "expiresAt", "refreshToken", "clientId", "clientSecret",
                "registrationExpiresAt"}


def token_path(home, key: str = "work") -> Path:
    return home.home / ".aws" / "sso" / "cache" / (hashlib.sha1(key.encode()).hexdigest() + ".json")


def read_token(home, key: str = "work") -> dict:
    return json.loads(token_path(home, key).read_text())


def secrets_of(home, key: str = "work") -> list[str]:
    doc = read_token(home, key)
    return [doc["accessToken"], doc["refreshToken"], doc["clientSecret"]]


def assert_no_secret(result: subprocess.CompletedProcess, secrets: list[str], *, allow_stdout: bool = False) -> None:
    for value in secrets:
        for fragment in (value, value[-12:], value[4:16]):
            assert fragment not in result.stderr
            if not allow_stdout:
                assert fragment not in result.stdout


def test_cold_call_signs_in_once_writes_the_aws_cli_token_file_and_the_role_works(sso_home, sso, moto):
    result = sso_home.run_in_process("credential-process", "--profile", "dev")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["Version"] == 1 and out["AccountId"] == "111111111111"
    identity = moto.client("sts", out["AccessKeyId"], out["SecretAccessKey"], out["SessionToken"]).get_caller_identity()
    assert identity["Arn"].startswith("arn:aws:sts::111111111111:assumed-role/ReadOnly/")
    assert (sso.calls["RegisterClient"], sso.calls["authorize"], sso.calls["CreateToken"],
            sso.calls["GetRoleCredentials"]) == (1, 1, 1, 1)
    # the file botocore and the AWS CLI read: sha1 of the session name, exactly their fields and time format
    path = token_path(sso_home)
    doc = read_token(sso_home)
    assert set(doc) == TOKEN_FIELDS and doc["startUrl"] == START_URL and doc["region"] == "us-east-1"
    for key in ("expiresAt", "registrationExpiresAt"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc[key])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert sso.valid_token(doc["accessToken"])
    assert_no_secret(result, secrets_of(sso_home))
    assert "authorize?" in result.stderr  # the URL is shown (here on stderr: the test has no /dev/tty)
    # a second call is a cache hit; another role of the session signs in no more
    again = sso_home.run_in_process("credential-process", "--profile", "dev")
    prod = sso_home.run_in_process("credential-process", "--profile", "prod")
    assert again.stdout == result.stdout and prod.returncode == 0, prod.stderr
    assert (sso.calls["authorize"], sso.calls["CreateToken"], sso.calls["GetRoleCredentials"]) == (1, 1, 2)


def test_parallel_cold_calls_make_one_sign_in_and_one_role_call_per_role(sso_home, sso):
    sso_home.write_config(session_config(
        sso_profile("a1"), sso_profile("a2"), sso_profile("a3"),  # one role, three profiles
        sso_profile("b1", "222222222222"), sso_profile("b2", "222222222222"),
        sso_profile("c1", "123456789012", "PowerUser")))
    names = ["a1", "a2", "a3", "b1", "b2", "c1"]
    procs = [sso_home.popen("credential-process", "--profile", n) for n in names]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outputs]
    assert sso.calls["authorize"] == 1 and sso.calls["CreateToken"] == 1 and sso.calls["RegisterClient"] == 1
    assert sso.calls["GetRoleCredentials"] == 3
    keys = {json.loads(o[0])["AccessKeyId"] for o in outputs}
    assert len(keys) == 3  # one role session per distinct role, shared by its profiles


def _expire_soon(home, seconds: int = 300) -> None:
    path = token_path(home)
    doc = json.loads(path.read_text())
    doc["expiresAt"] = (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
    path.write_text(json.dumps(doc))


def test_a_token_near_expiry_is_refreshed_without_a_browser(sso_home, sso, tmp_path):
    assert sso_home.run_in_process("credential-process", "--profile", "dev").returncode == 0
    old = read_token(sso_home)
    _expire_soon(sso_home)
    result = sso_home.run_in_process("credential-process", "--profile", "prod")
    assert result.returncode == 0, result.stderr
    new = read_token(sso_home)
    assert new["accessToken"] != old["accessToken"] and new["refreshToken"] != old["refreshToken"]
    assert new["clientId"] == old["clientId"]  # the registration is reused
    assert sso.calls["authorize"] == 1 and sso.calls["CreateToken"] == 2 and sso.calls["RegisterClient"] == 1
    assert (tmp_path / "browser.log").read_text().count("\n") == 1
    assert_no_secret(result, [*secrets_of(sso_home), old["refreshToken"]])


def test_a_revoked_session_says_sign_in_again_in_one_line(sso_home, sso):
    assert sso_home.run_in_process("credential-process", "--profile", "dev").returncode == 0
    sso.revoke_all()
    result = sso_home.run_in_process("credential-process", "--profile", "prod")
    line = assert_clean_failure(result, contains="sign in again: gw sso login --session work")
    assert START_URL in line
    assert sso.calls["authorize"] == 1  # no surprise browser
    assert_no_secret(result, secrets_of(sso_home))


def test_the_registration_is_reused_for_a_new_sign_in(sso_home, sso):
    assert sso_home.run_in_process("sso", "login", "--session", "work").returncode == 0
    assert sso_home.run_in_process("sso", "login", "--session", "work").returncode == 0
    assert sso.calls["authorize"] == 2 and sso.calls["RegisterClient"] == 1


def test_a_forged_state_is_refused_and_nothing_is_written(sso_home, sso):
    sso_home.env["SSO_TEST_TAMPER_STATE"] = "1"
    result = sso_home.run_in_process("credential-process", "--profile", "dev")
    assert_clean_failure(result, contains="did not carry the state gw sent (nothing was written)")
    assert not token_path(sso_home).exists()
    assert sso.calls["CreateToken"] == 0


def test_deny_in_the_browser_is_one_line(sso_home, sso):
    sso_home.env["SSO_TEST_DECISION"] = "deny"
    result = sso_home.run_in_process("sso", "login", "--session", "work")
    assert_clean_failure(result, contains=f"the browser sign-in to {START_URL} was denied")
    assert not token_path(sso_home).exists()


def _approve_when_asked(sso, decide) -> threading.Thread:
    def run() -> None:
        for _ in range(200):
            pending = [d for d in sso.devices.values() if d.state == "pending"]
            if pending:
                decide(pending[0].user_code)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_without_a_browser_the_device_code_is_used(sso_home, sso):
    sso_home.env.pop("BROWSER")
    sso_home.env.pop("DISPLAY", None)
    thread = _approve_when_asked(sso, sso.approve)
    result = sso_home.run_in_process("credential-process", "--profile", "dev")
    thread.join()
    assert result.returncode == 0, result.stderr
    assert sso.calls["StartDeviceAuthorization"] == 1 and sso.calls["authorize"] == 0
    user_code = next(iter(sso.devices.values())).user_code
    assert f"enter the code {user_code}" in result.stderr and "/device" in result.stderr
    assert set(read_token(sso_home)) == TOKEN_FIELDS
    assert_no_secret(result, secrets_of(sso_home), allow_stdout=True)


def test_use_device_code_with_a_browser_opens_the_device_page(sso_home, sso, tmp_path):
    result = sso_home.run_in_process("sso", "login", "--session", "work", "--use-device-code")
    assert result.returncode == 0, result.stderr
    assert "/device?user_code=" in (tmp_path / "browser.log").read_text()
    assert sso.calls["device-decide"] == 1 and sso.calls["authorize"] == 0


@pytest.mark.parametrize("decide, expected", [("deny", "was denied"), ("expire", "the sign-in code expired")])
def test_device_code_denied_or_expired_is_one_line(sso_home, sso, decide, expected):
    sso_home.env.pop("BROWSER")
    if decide == "expire":
        sso.device_lifetime = 2
        thread = None
    else:
        thread = _approve_when_asked(sso, sso.deny)
    result = sso_home.run_in_process("sso", "login", "--session", "work", "--use-device-code")
    if thread:
        thread.join()
    assert_clean_failure(result, contains=expected)
    assert not token_path(sso_home).exists()


def test_access_denied_names_account_and_role(sso_home, sso):
    sso.inject("GetRoleCredentials", status=403)
    result = sso_home.run_in_process("credential-process", "--profile", "dev")
    assert_clean_failure(result, contains="access denied (HTTP 403): role ReadOnly in account 111111111111")


@pytest.mark.parametrize("account, role, expected", [
    ("111111111111", "ReadOnIy", "account 111111111111 has no role 'ReadOnIy' for this SSO user (did you mean 'ReadOnly'?)"),
    ("111111111112", "ReadOnly", "account 111111111112 is not one this SSO user can reach (did you mean 111111111111 (Development)?)"),
])
def test_unknown_account_or_role_suggests_the_nearest(sso_home, sso, account, role, expected):
    sso_home.write_config(session_config(sso_profile("x", account, role)))
    result = sso_home.run_in_process("credential-process", "--profile", "x")
    assert_clean_failure(result, contains=expected)


def test_an_unreachable_start_url_is_the_usual_connection_line(sso_home):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sso_home.env["AWS_ENDPOINT_URL_SSO_OIDC"] = f"https://127.0.0.1:{port}"
    result = sso_home.run_in_process("credential-process", "--profile", "dev")
    assert_clean_failure(result, contains=f"cannot reach the SSO OIDC service (127.0.0.1:{port}): connection failed")


def test_endpoint_options_beat_the_environment(sso_home, sso):
    sso_home.env["AWS_ENDPOINT_URL_SSO_OIDC"] = "https://127.0.0.1:9"
    sso_home.env["AWS_ENDPOINT_URL_SSO"] = "https://127.0.0.1:9"
    extra = f', oidc_endpoint = "{sso.url}", portal_endpoint = "{sso.url}"'
    sso_home.write_config(session_config(
        f'\n[profiles.dev]\nsteps = [{{ use = "aws-sso", session = "work", account_id = "111111111111", '
        f'role_name = "ReadOnly"{extra} }}]\n'))
    result = sso_home.run_in_process("credential-process", "--profile", "dev")
    assert result.returncode == 0, result.stderr


def test_the_legacy_form_keys_the_token_by_start_url(sso_home, sso):
    sso_home.write_config(
        f'[profiles.legacy]\nsteps = [{{ use = "aws-sso", start_url = "{START_URL}", sso_region = "us-east-1", '
        f'account_id = "222222222222", role_name = "ReadOnly" }}]\n')
    result = sso_home.run_in_process("credential-process", "--profile", "legacy")
    assert result.returncode == 0, result.stderr
    assert token_path(sso_home, START_URL).exists() and not token_path(sso_home).exists()


def test_chained_assume_role_shares_one_sso_role_session(sso_home, sso, moto):
    role_arn = moto.create_role("sso-chained-target")
    chain = (f', {{ use = "assume-role", role_arn = "{role_arn}", duration = 900 }}')
    sso_home.write_config(session_config(sso_profile("hop1", extra=chain),
                                         sso_profile("hop2", extra=chain.replace("900", "1800"))))
    before = moto.count("AssumeRole")
    for name in ("hop1", "hop2"):
        result = sso_home.run_in_process("credential-process", "--profile", name)
        assert result.returncode == 0, result.stderr
        out = json.loads(result.stdout)
        arn = moto.client("sts", out["AccessKeyId"], out["SecretAccessKey"], out["SessionToken"]) \
            .get_caller_identity()["Arn"]
        assert ":assumed-role/sso-chained-target/" in arn
    assert sso.calls["GetRoleCredentials"] == 1
    assert moto.count("AssumeRole") - before == 3  # one by the emulator for the SSO role, one per hop


@pytest.mark.parametrize("config, expected", [
    (session_config(sso_profile("p", session="wrok")), "no [sso_sessions.wrok] table in the config (did you mean 'work'?)"),
    (session_config(sso_profile("p", "12345")), "account_id must be 12 digits"),
    (session_config(sso_profile("p")).replace('region = "us-east-1"', 'regoin = "us-east-1"'),
     "sso_sessions.work.regoin: unknown option (did you mean 'region'?)"),
])
def test_config_mistakes_are_one_line(sso_home, config, expected):
    sso_home.write_config(config)
    result = sso_home.run_in_process("credential-process", "--profile", "p")
    assert_clean_failure(result, contains=expected)


@pytest.mark.parametrize("config, expected", [
    ('[sso_session.work]\nstart_url = "https://x/start"\n' + sso_profile("p"),
     "sso_session: unknown top-level table (did you mean 'sso_sessions'?)"),
    ('[settings]\nsso_sessions = {}\n' + session_config(sso_profile("p")),
     "settings.sso_sessions: is a top-level table [sso_sessions], not a key of [settings]"),
])
def test_misplaced_session_tables_are_said_once(sso_home, config, expected):
    """Mistakes no step reads are a warning (each profile fails only for its own): said once, and
    gw check lists them."""
    sso_home.write_config(config)
    result = sso_home.run_in_process("credential-process", "--profile", "p")
    assert result.stderr.count(expected) == 1 and f"gw: warning: {sso_home.config_path}: " in result.stderr
    checked = sso_home.run_in_process("check")
    assert checked.returncode == 3 and expected in checked.stderr


def test_roles_lists_every_page_in_80_columns_and_as_json(sso_home, sso):
    sso.add_account("444444444444", "A very long account name that will not fit the table", ["Admin" * 12])
    result = sso_home.run_in_process("sso", "roles", "--session", "work")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert lines[0].split() == ["ACCOUNT", "NAME", "ROLE"] and len(lines) == 1 + 7
    assert sso.calls["ListAccounts"] == 2  # 4 accounts, pages of 2
    as_json = json.loads(sso_home.run_in_process("sso", "roles", "--session", "work", "--json").stdout)
    assert {"accountId": "222222222222", "accountName": "Production", "emailAddress": "aws+production@example.com",
            "roleName": "ReadOnly"} in as_json and len(as_json) == 7
    assert_no_secret(result, secrets_of(sso_home))


def test_logout_ends_the_portal_session_and_removes_the_token(sso_home, sso):
    assert sso_home.run_in_process("sso", "login", "--profile", "dev").returncode == 0
    token = read_token(sso_home)["accessToken"]
    result = sso_home.run_in_process("sso", "logout", "--session", "work")
    assert result.returncode == 0 and result.stdout.strip() == f"signed out of {START_URL}"
    assert sso.calls["Logout"] == 1 and not sso.valid_token(token)
    assert not token_path(sso_home).exists()
    assert sso_home.run_in_process("sso", "logout", "--session", "work").stdout.strip() == f"not signed in to {START_URL}"


def test_login_from_sso_role_credentials(sso_home, sso, federation):
    sso_home.write_config(session_config(sso_profile("dev")) +
                          f'login = {{ endpoint = "{federation.url}/federation" }}\n')
    result = sso_home.run_in_process("login", "--profile", "dev", "--print")
    assert result.returncode == 0, result.stderr
    assert "SigninToken=" in result.stdout  # the federation emulator checked them against what moto issued


def test_the_device_code_reaches_the_terminal_under_an_sdk(sso_home, sso):
    """Under the AWS CLI stderr is captured: the URL and user code go to /dev/tty (a real pty here)."""
    from tests.core.test_tty_notices import Terminal

    sso_home.env.pop("BROWSER")
    sso_home.env.pop("DISPLAY", None)
    terminal = Terminal()
    try:
        proc = terminal.popen([GW, "credential-process", "--profile", "dev"], sso_home.env)
        shown = terminal.wait_for("enter the code ")
        user_code = next(iter(sso.devices.values())).user_code
        assert f"{sso.url}/device" in shown and user_code in terminal.wait_for(user_code)
        sso.approve(user_code)
        out, err = proc.communicate(timeout=60)
    finally:
        terminal.close()
    assert proc.returncode == 0, err
    assert user_code not in err  # on the terminal, not in what the SDK captures
    assert_no_secret(subprocess.CompletedProcess([], 0, "", terminal.text), secrets_of(sso_home))


def test_sessions_without_the_plugin_are_an_unknown_table(sso_home):
    sso_home.env["GW_DISABLE_PLUGINS"] = "sso"
    sso_home.write_config(session_config('\n[profiles.p]\nsteps = [{ use = "aws-keys", access_key_id = "env:A", '
                                         'secret_access_key = "env:B" }]\n'))
    result = sso_home.run_in_process("credential-process", "--profile", "p")
    assert "gw: warning: " in result.stderr
    assert "sso_sessions: unknown top-level table (plugins skipped or disabled: sso)" in result.stderr


def test_a_role_assumed_from_sso_credentials_is_role_chaining(sso_home, sso, moto):
    """SSO role credentials are a role session: AWS allows a chained role one hour at most."""
    role_arn = moto.create_role("sso-chained-long", max_session_duration=43200)
    sso_home.write_config(session_config(sso_profile(
        "hop", extra=f', {{ use = "assume-role", role_arn = "{role_arn}", duration = 7200 }}')))
    result = sso_home.run_in_process("credential-process", "--profile", "hop")
    assert result.returncode == 0, result.stderr
    expires = datetime.fromisoformat(json.loads(result.stdout)["Expiration"].replace("Z", "+00:00"))
    assert expires - datetime.now(UTC) <= timedelta(seconds=3600)


def test_refresh_fetches_new_role_credentials(sso_home, sso):
    first = json.loads(sso_home.run_in_process("credential-process", "--profile", "dev").stdout)
    shared = [e for e in sso_home.state.rglob("_state.sso.role.*") if e.is_file()]
    assert len(shared) == 1
    shared[0].unlink()  # as if the fetch were longer ago than the sharing window
    again = sso_home.run_in_process("credential-process", "--profile", "dev", "--refresh")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["AccessKeyId"] != first["AccessKeyId"]
    assert sso.calls["GetRoleCredentials"] == 2 and sso.calls["CreateToken"] == 1


def test_throttling_by_the_portal_is_retried(sso_home, sso):
    sso.inject("GetRoleCredentials", status=429, count=2)
    result = sso_home.run_in_process("credential-process", "--profile", "dev")
    assert result.returncode == 0, result.stderr
    assert sso.calls["GetRoleCredentials"] == 3


def test_a_portal_that_keeps_failing_is_one_line(sso_home, sso):
    sso.inject("GetRoleCredentials", status=503, count=10)
    result = sso_home.run_in_process("credential-process", "--profile", "dev")
    assert_clean_failure(result, contains="GetRoleCredentials for role ReadOnly in account 111111111111 failed")
    assert sso.calls["GetRoleCredentials"] == 4


def test_aws_ca_bundle_is_trusted_without_settings_ca_bundle(sso_home, sso):
    sso_home.write_config(session_config(sso_profile("dev")), settings=False)
    result = sso_home.run_in_process("credential-process", "--profile", "dev")
    assert result.returncode == 0, result.stderr
    sso_home.env.pop("AWS_CA_BUNDLE")
    sso_home.write_config(session_config(sso_profile("prod", "222222222222")), settings=False)
    assert_clean_failure(sso_home.run_in_process("credential-process", "--profile", "prod"), contains="TLS failure")


def test_the_legacy_form_names_the_profile_to_sign_in_with(sso_home, sso):
    sso_home.write_config(
        f'[profiles.legacy]\nsteps = [{{ use = "aws-sso", start_url = "{START_URL}", sso_region = "us-east-1", '
        f'account_id = "222222222222", role_name = "ReadOnly" }}]\n')
    assert sso_home.run_in_process("sso", "login", "--profile", "legacy").returncode == 0
    sso.revoke_all()
    result = sso_home.run_in_process("credential-process", "--profile", "legacy")
    assert_clean_failure(result, contains="sign in again: gw sso login --profile legacy")
    assert sso_home.run_in_process("sso", "login", "--profile", "legacy").returncode == 0
    assert sso_home.run_in_process("credential-process", "--profile", "legacy").returncode == 0


@pytest.mark.parametrize("fault", ["garbage", "lifetime"])
def test_nonsense_from_the_oidc_service_is_one_line(sso_home, sso, fault):
    if fault == "garbage":
        sso.inject("CreateToken", garbage=True)
    else:
        sso.access_token_lifetime = 10**20
    result = sso_home.run_in_process("credential-process", "--profile", "dev")
    line = assert_clean_failure(result)
    assert "SSO OIDC service" in line and "internal error" not in line
    assert not token_path(sso_home).exists()
