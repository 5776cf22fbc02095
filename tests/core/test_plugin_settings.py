"""``[settings]`` keys a plugin owns (``gw_settings``): read by its steps and commands with
``ctx.setting``, checked like step options, and an unknown key is still one clear line.
And a step type's advice (``StepType.advise``): warnings of ``gw check``, not problems."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.core.gw_test_support import assert_clean_failure

GOOD = Path(__file__).resolve().parent / "good_plugins"
PROFILE = '[profiles.p]\nsteps = [{ use = "gwtest-setting-keys" }]\n'


@pytest.fixture
def home(gw_home):
    gw_home.env.update(PYTHONPATH=str(GOOD), GW_PLUGINS="gwtest_setting")
    return gw_home


def _secret(home) -> str:
    result = home.run_in_process("env", "--profile", "p", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["AWS_SECRET_ACCESS_KEY"]


def test_defaults_then_the_configured_values_reach_steps_and_commands(home):
    home.write_config(PROFILE)
    assert _secret(home) == "hello-1"
    assert home.run_in_process("gwtest-settings").stdout == "hello 1\n"
    home.write_config('[settings]\ngwtest_greeting = "bonjour"\ngwtest_level = 3\n\n' + PROFILE)
    assert _secret(home) == "bonjour-3"
    shown = home.run_in_process("gwtest-settings")
    assert shown.returncode == 0 and shown.stdout == "bonjour 3\n", shown.stderr
    assert home.run_in_process("check").returncode == 0


@pytest.mark.parametrize("settings, expected", [
    ("gwtest_level = 7", "settings.gwtest_level: must be one of 1, 2, 3, not 7"),
    ('gwtest_level = "2"', "settings.gwtest_level: must be an integer, not a string"),
    ("gwtest_greeting = true", "settings.gwtest_greeting: must be a string, not true/false"),
])
def test_a_bad_plugin_setting_is_one_clear_line(home, settings, expected):
    home.write_config(f"[settings]\n{settings}\n\n" + PROFILE, settings=False)
    failed = home.run_in_process("env", "--profile", "p", "--format", "json")
    line = assert_clean_failure(failed, contains=expected)
    assert str(home.config_path) in line and failed.returncode == 2
    checked = home.run_in_process("check")
    assert checked.returncode == 3 and expected in checked.stdout + checked.stderr


def test_the_setting_of_a_disabled_plugin_is_unknown_and_says_so(home):
    home.write_config('[settings]\ngwtest_greeting = "hi"\n\n[profiles.k]\n'
                      'steps = [{ use = "aws-keys", access_key_id = "env:GWT_A", secret_access_key = "env:GWT_B" }]\n',
                      settings=False)
    home.env.update(GW_DISABLE_PLUGINS="gwtest_setting", GWT_A="AKIAEXAMPLEEXAMPLE", GWT_B="settings-test-secret")
    served = home.run_in_process("env", "--profile", "k", "--format", "json")  # no command reads it: a warning, not a failure
    assert served.returncode == 0, served.stderr
    assert "gw: warning: " in served.stderr
    assert "settings.gwtest_greeting: unknown setting (plugins skipped or disabled: gwtest_setting); ignored" in served.stderr
    checked = home.run_in_process("check")
    assert checked.returncode == 3 and "settings.gwtest_greeting: unknown setting" in checked.stderr


def test_a_misspelt_plugin_setting_warns_and_gw_check_lists_it(home):
    home.write_config('[settings]\ngwtest_greting = "hi"\n\n' + PROFILE, settings=False)
    expected = "settings.gwtest_greting: unknown setting (did you mean 'gwtest_greeting'?)"
    assert _secret(home) == "hello-1"  # the default stands; the typo is said once
    served = home.run_in_process("env", "--profile", "p", "--format", "json")
    assert served.stderr.count(expected) == 1 and served.stderr.startswith("gw: warning: ")
    checked = home.run_in_process("check")
    assert checked.returncode == 3 and expected in checked.stderr


def test_advice_is_a_warning_of_gw_check_and_the_profile_still_runs(gw_home):
    gw_home.env.update(PYTHONPATH=str(GOOD), GW_PLUGINS="gwtest_advice")
    gw_home.write_config('[profiles.a]\nsteps = [{ use = "gwtest-advised", verbose = true }]\n'
                         '[profiles.b]\nsteps = [{ use = "gwtest-advised" }]\n')
    checked = gw_home.run_in_process("check")
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr.splitlines() == [
        f"gw: warning: {gw_home.config_path}: profiles.a.steps[0] (gwtest-advised): verbose is ignored by this step; drop it"]
    as_json = json.loads(gw_home.run_in_process("check", "--json").stdout)
    assert as_json["ok"] is True and len(as_json["warnings"]) == 1
    served = gw_home.run_in_process("env", "--profile", "a", "--format", "json")
    assert served.returncode == 0 and json.loads(served.stdout)["AWS_ACCESS_KEY_ID"] == "AKIAGWTESTADVICE0000"
