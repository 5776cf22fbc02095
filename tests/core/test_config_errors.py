"""Config mistakes: each is one clear line saying what is wrong and where; never a traceback."""

from __future__ import annotations

import time

import pytest

from tests.core.gw_test_support import GW, ROLE, assert_clean_failure

USER = '{ use = "aws-keys", access_key_id = "env:GWT_AKID", secret_access_key = "env:GWT_SECRET" }'
ASSUME = f'{{ use = "assume-role", role_arn = "{ROLE}" }}'


def _steps(*steps: str) -> str:
    return "[profiles.p]\nsteps = [\n" + "".join(f"  {s},\n" for s in steps) + "]\n"


# name -> (config text, text the error line must contain)
CASES = {
    "unknown-top-level-key": (
        "[profile.p]\nsteps = []\n", "profile: unknown top-level table (did you mean 'profiles'?)"),
    "unknown-setting": (
        "[settings]\nlock_timout = 5\n" + _steps(USER), "settings.lock_timout: unknown setting (did you mean 'lock_timeout'?)"),
    "unknown-profile-option": (
        _steps(USER) + 'regoin = "eu-west-1"\n', "profiles.p.regoin: unknown profile option (did you mean 'region'?)"),
    "unknown-step-option": (
        _steps(USER, f'{{ use = "assume-role", role_ar = "{ROLE}" }}'),
        "profiles.p.steps[1] (assume-role): unknown option 'role_ar' (did you mean 'role_arn'?)"),
    "wrong-type-step-option": (
        _steps(USER, f'{{ use = "assume-role", role_arn = "{ROLE}", duration = "3600" }}'),
        "profiles.p.steps[1] (assume-role): duration must be an integer, not a string"),
    "wrong-type-setting": (
        '[settings]\nlock_timeout = "soon"\n' + _steps(USER), "settings.lock_timeout: must be an integer, not a string"),
    "wrong-type-steps": (
        '[profiles.p]\nsteps = "aws-keys"\n', "profiles.p.steps: must be a non-empty array"),
    "wrong-type-login": (
        _steps(USER) + "login = { duration = \"long\" }\n", "profiles.p.login: duration must be an integer"),
    "unknown-step-type": (
        _steps(USER, f'{{ use = "asume-role", role_arn = "{ROLE}" }}'),
        "unknown step type 'asume-role' (did you mean 'assume-role'?)"),
    "assume-role-first": (
        _steps(ASSUME), "profiles.p.steps[0] (assume-role): needs aws-credentials from a previous step, so it cannot come first"),
    "aws-keys-second": (
        _steps(USER, USER), "profiles.p.steps[1] (aws-keys): starts a chain (it takes no input), so it must be the first step"),
    "kinds-do-not-fit": (
        _steps(USER, f'{{ use = "web-identity", role_arn = "{ROLE}" }}'),
        "profiles.p.steps[1] (web-identity): takes openid-token, but step 0 yields aws-credentials"),
    "secret-as-plain-string": (
        _steps('{ use = "aws-keys", access_key_id = "env:GWT_AKID", secret_access_key = "wJalrXUtnFEMI" }'),
        "profiles.p.steps[0] (aws-keys): secret_access_key: not a secret reference"),
    "bad-toml": ("[profiles.p\nsteps = []\n", "not valid TOML"),
    "bad-profile-name": ('[profiles."-x"]\nsteps = [' + USER + "]\n", "profiles.-x: profile names use letters"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_config_error_is_one_clear_line(gw_home, case):
    text, expected = CASES[case]
    gw_home.write_config(text, settings=False)
    result = gw_home.run_in_process("credential-process", "--profile", "p")
    line = assert_clean_failure(result, contains=expected)
    assert result.returncode == 2
    if case not in ("bad-toml",):
        assert str(gw_home.config_path) in line  # says which file


def test_gw_check_lists_every_problem_one_per_line(gw_home):
    gw_home.write_config(
        _steps(ASSUME)
        + "\n[profiles.q]\nsteps = [\n  " + USER + ",\n  " + f'{{ use = "assume-role", role_ar = "{ROLE}" }}' + ",\n]\n",
        settings=False,
    )
    result = gw_home.run_in_process("check")
    assert result.returncode == 3 and result.stdout == "" and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[-1] == f"gw: 3 problem(s) in {gw_home.config_path}"
    assert any("profiles.p.steps[0] (assume-role): needs aws-credentials" in line for line in lines)
    assert any("profiles.q.steps[1] (assume-role): unknown option 'role_ar'" in line for line in lines)
    assert any("profiles.q.steps[1] (assume-role): missing required option 'role_arn'" in line for line in lines)
    assert len(lines) == 4


def test_gw_check_reports_a_missing_vault_secret(gw_home):
    gw_home.vault_set("akid", "AKIAEXAMPLEEXAMPLE00")
    gw_home.write_config(_steps('{ use = "aws-keys", access_key_id = "vault:akid", secret_access_key = "vault:nope" }'))
    result = gw_home.run_in_process("check")
    assert result.returncode == 3 and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 2, result.stderr
    assert "profiles.p.steps[0] (aws-keys): secret_access_key: no secret 'nope' in the vault" in lines[0]
    assert "gw vault set nope" in lines[0]
    gw_home.vault_set("nope", "s3cr3t-value")
    ok = gw_home.run_in_process("check")
    assert ok.returncode == 0 and ok.stdout.strip().endswith("1 profile(s), all valid")


def test_missing_config_file(gw_home):
    result = gw_home.run_in_process("credential-process", "--profile", "p")
    line = assert_clean_failure(result, contains=f"no config file at {gw_home.config_path}")
    assert result.returncode == 2 and "GW_CONFIG" in line


def test_unknown_profile_name(gw_home):
    gw_home.write_config(_steps(USER))
    result = gw_home.run_in_process("env", "--profile", "nope")
    assert_clean_failure(result, contains="no profile named 'nope'")
    assert "(profiles: p)" in result.stderr


def test_an_aws_profile_that_runs_gw_for_the_same_profile_is_a_cycle(aws_home):
    home = aws_home
    home.aws_config.write_text(f"[profile loop]\ncredential_process = {GW} credential-process --profile loop\n")
    home.write_config('[profiles.loop]\nsteps = [{ use = "aws-profile", profile = "loop" }]\n')
    started = time.monotonic()
    result = home.run_in_process("credential-process", "--profile", "loop", timeout=60)
    assert time.monotonic() - started < 20
    assert_clean_failure(result, contains="profile cycle")


def test_a_cycle_through_two_gw_profiles_is_caught(aws_home):
    """gw profile a reads AWS profile b, whose credential_process is gw profile b, which reads AWS profile a ..."""
    home = aws_home
    home.aws_config.write_text(
        f"[profile a]\ncredential_process = {GW} credential-process --profile a\n\n"
        f"[profile b]\ncredential_process = {GW} credential-process --profile b\n"
    )
    home.write_config(
        '[profiles.a]\nsteps = [{ use = "aws-profile", profile = "b" }]\n\n'
        '[profiles.b]\nsteps = [{ use = "aws-profile", profile = "a" }]\n'
    )
    result = home.run_in_process("credential-process", "--profile", "a", timeout=60)
    assert_clean_failure(result, contains="profile cycle")
