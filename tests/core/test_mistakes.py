"""Mistakes explained once, each against its own profile (issue 18).

A mistake in one profile fails only that profile; a wrong setting fails only what reads
it; ``gw check`` lists every mistake; typos get the nearest name; wrong types say so.
All in-process (gw.testing's runner): nothing here crosses a process boundary.
"""

from __future__ import annotations

import json
import re

from tests.core.gw_test_support import ROLE

KEYS = '{ use = "aws-keys", access_key_id = "env:GWT_AKID", secret_access_key = "env:GWT_SECRET" }'
ENV = {"GWT_AKID": "AKIAIOSFODNN7EXAMPLE", "GWT_SECRET": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}


def _profile(name: str, extra: str = "") -> str:
    return f"[profiles.{name}]\nsteps = [{KEYS}]\n{extra}\n"


def _credential(home, name: str):
    return home.run_in_process("credential-process", "--profile", name, env=ENV)


def _one_line(result) -> str:
    assert result.returncode != 0 and "Traceback" not in result.stderr, result
    lines = [line for line in result.stderr.splitlines() if not line.startswith("gw: warning:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_profile_level_mistake_fails_only_that_profile(gw_home):
    gw_home.write_config(_profile("good") + _profile("typo", 'regoin = "eu-west-1"')
                         + '[profiles.notype]\nsteps = "aws-keys"\ndescription = 3\n')
    good = _credential(gw_home, "good")
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["AccessKeyId"] == ENV["GWT_AKID"]
    assert "profiles.typo.regoin: unknown profile option (did you mean 'region'?)" in _one_line(
        _credential(gw_home, "typo"))
    line = _one_line(_credential(gw_home, "notype"))
    assert "profiles.notype.steps: must be a non-empty array" in line and "(and 1 more: run gw check)" in line


def test_gw_check_lists_every_profile_settings_and_top_level_mistake(gw_home):
    gw_home.write_config(
        "[setings]\nlock_timeout = 3\n\n[settings]\nlock_timout = 5\nprompt_timeout = \"soon\"\n\n"
        + _profile("good") + _profile("typo", 'regoin = "eu-west-1"\nlogin = "x"')
        + '[profiles.notype]\nsteps = "aws-keys"\ndescription = 3\n',
        settings=False,
    )
    result = gw_home.run_in_process("check")
    assert result.returncode == 3 and result.stdout == ""
    lines = result.stderr.splitlines()
    path = str(gw_home.config_path)
    expected = [
        "setings: unknown top-level table (did you mean 'settings'?)",
        "settings.lock_timout: unknown setting (did you mean 'lock_timeout'?)",
        "settings.prompt_timeout: must be an integer, not a string",
        "profiles.typo.regoin: unknown profile option (did you mean 'region'?)",
        "profiles.notype.steps: must be a non-empty array",
        "profiles.notype.description: must be a string, not an integer",
    ]
    for text in expected:
        assert sum(text in line and path in line for line in lines) == 1, (text, result.stderr)
    assert lines[-1] == f"gw: 7 problem(s) in {path}"


def test_a_settings_mistake_fails_only_the_commands_that_read_it(gw_home):
    gw_home.write_config('[settings]\nlock_timout = 5\nprompt_timeout = "soon"\n\n' + _profile("good"), settings=False)
    served = _credential(gw_home, "good")  # needs neither prompt_timeout nor the misspelt key
    assert served.returncode == 0, served.stderr
    assert "settings.lock_timout: unknown setting (did you mean 'lock_timeout'?); ignored" in served.stderr
    gw_home.write_config('[settings]\nlock_timeout = "soon"\n\n' + _profile("good"), settings=False)
    assert "settings.lock_timeout: must be an integer, not a string" in _one_line(_credential(gw_home, "good"))
    listed = gw_home.run_in_process("vault", "list")  # reads no lock_timeout
    assert listed.returncode == 0, listed.stderr


def test_a_misspelt_profiles_table_says_so_beside_the_missing_profile(gw_home):
    gw_home.write_config(f"[profile.p]\nsteps = [{KEYS}]\n")
    line = _one_line(_credential(gw_home, "p"))
    assert "no profile named 'p'" in line and "profile: unknown top-level table (did you mean 'profiles'?)" in line


def test_a_known_table_of_the_wrong_type_is_not_an_unknown_option(gw_home):
    gw_home.write_config(_profile("p", 'login = "x"'))
    line = _one_line(_credential(gw_home, "p"))
    assert "profiles.p.login: must be a table" in line and "not a string" in line
    assert "unknown" not in line


def test_a_device_as_config_is_named_once(gw_home):
    line = _one_line(gw_home.run_in_process("check", env={"GW_CONFIG": "/dev/null"}))
    assert "/dev/null is a device, not a regular file" in line
    assert line.count("not a regular file") == 1


def test_a_profile_name_typo_suggests_the_nearest(gw_home):
    gw_home.write_config("".join(_profile(f"team-{n}") for n in range(12)) + _profile("admin"))
    line = _one_line(gw_home.run_in_process("env", "--profile", "admn"))
    assert "no profile named 'admn'" in line and "(did you mean 'admin'?)" in line
    assert "team-3" not in line  # not a list of every profile


def test_cache_clear_of_an_unknown_profile_fails_with_a_suggestion(gw_home):
    gw_home.write_config(_profile("admin"))
    result = gw_home.run_in_process("cache", "clear", "--profile", "admn")
    assert result.returncode == 2 and result.stdout == ""
    assert "no profile named 'admn'" in _one_line(result) and "did you mean 'admin'" in result.stderr
    ok = gw_home.run_in_process("cache", "clear", "--profile", "admin")
    assert ok.returncode == 0 and ok.stdout.startswith("cleared 0")


def test_disabling_an_unknown_plugin_warns_with_a_suggestion(gw_home):
    gw_home.write_config(_profile("p"))
    result = gw_home.run_in_process("plugins", env={"GW_DISABLE_PLUGINS": "kryptn"})
    assert result.returncode == 0
    assert "GW_DISABLE_PLUGINS/settings.disable_plugins: no plugin named 'kryptn' (did you mean 'krypton'?)" \
        in result.stderr
    quiet = gw_home.run_in_process("plugins", env={"GW_DISABLE_PLUGINS": "krypton"})
    assert "no plugin named" not in quiet.stderr


def test_global_config_flag_after_the_command(gw_home, tmp_path):
    other = tmp_path / "other.toml"
    other.write_text(_profile("elsewhere"))
    other.chmod(0o600)
    gw_home.write_config(_profile("here"))
    for args in (["profiles", "--config", str(other)], ["profiles", f"--config={other}"],
                 ["--config", str(other), "profiles"]):
        result = gw_home.run_in_process(*args)
        assert result.returncode == 0, (args, result.stderr)
        assert "elsewhere" in result.stdout and "here" not in result.stdout.replace("elsewhere", "")


def test_a_commands_own_config_option_wins(gw_home, tmp_path):
    """gw serve endorse-exchange has its own --config: gw's must not take it."""
    gw_home.write_config(_profile("here"))
    result = gw_home.run_in_process("serve", "endorse-exchange", "--config", str(tmp_path / "missing.json"))
    assert result.returncode != 0
    assert "missing.json" in result.stderr and "no config file at" not in result.stderr


def test_help_lists_environment_variables_core_and_plugins(gw_home):
    result = gw_home.run_in_process("--help")
    assert result.returncode == 0
    epilog = result.stdout.split("environment:", 1)[1]
    for name in ("GW_CONFIG", "GW_HOME", "GW_PROFILE", "GW_DEBUG", "GW_PLUGINS", "GW_DISABLE_PLUGINS", "GW_QUIET",
                 "GW_OP_PATH", "SORACOM_PROFILE_DIR"):
        assert re.search(rf"^  {name}\b", epilog, re.M), name  # one row per variable (wrapped or not)


def test_a_missing_profile_option_mentions_gw_profile(gw_home):
    gw_home.write_config(_profile("p"))
    for args in (["env"], ["soracom-token"]):
        result = gw_home.run_in_process(*args)
        assert result.returncode == 2
        assert "--profile (or set GW_PROFILE)" in result.stderr, result.stderr


def test_role_profile_still_plans(gw_home):
    """A valid chain is untouched by the per-profile checking."""
    gw_home.write_config(f"[profiles.r]\nsteps = [{KEYS}, {{ use = \"assume-role\", role_arn = \"{ROLE}\" }}]\n")
    result = gw_home.run_in_process("check")
    assert result.returncode == 0, result.stderr


def test_one_duration_syntax_for_step_options_and_login(aws_home, iam_user):
    """``duration = "1h"`` and ``duration = 3600`` mean the same; moto's STS sees 3600 s either way."""
    import datetime

    aws_home.env["GWT_AKID"], aws_home.env["GWT_SECRET"] = iam_user
    source = '{ use = "aws-keys", access_key_id = "env:GWT_AKID", secret_access_key = "env:GWT_SECRET" }'
    for duration in ('"1h"', '"60m"', "3600"):
        aws_home.write_config(
            f'[profiles.r]\nsteps = [{source}, {{ use = "assume-role", role_arn = "{ROLE}", duration = {duration} }}]\n'
            '[profiles.r.login]\nduration = "1h30m"\n')
        assert aws_home.run_in_process("check").returncode == 0
        result = aws_home.run_in_process("credential-process", "--profile", "r", "--refresh")
        assert result.returncode == 0, result.stderr
        expires = datetime.datetime.fromisoformat(json.loads(result.stdout)["Expiration"])
        left = (expires - datetime.datetime.now(datetime.UTC)).total_seconds()
        assert 3500 < left <= 3600, (duration, left)
    aws_home.write_config(
        f'[profiles.r]\nsteps = [{source}, {{ use = "assume-role", role_arn = "{ROLE}", duration = "an hour" }}]\n')
    assert "duration must be a duration: seconds or a string (e.g. 900, 90s, 30m, 2h, 1h30m), not 'an hour'" \
        in _one_line(aws_home.run_in_process("credential-process", "--profile", "r"))
    bad = aws_home.run_in_process("login", "--profile", "r", "--print", "--duration", "5m")
    assert bad.returncode == 2 and "must be between 900 and 43200 seconds" in bad.stderr
