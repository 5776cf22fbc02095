"""Plugins are checked as they load: each broken one is named in one line and skipped; gw goes on.

Each bad plugin lives in tests/core/bad_plugins/ and is loaded with ``GW_PLUGINS`` into the real
gw. For each: ``gw --help``, ``gw plugins`` and ``gw check`` keep working, ``gw plugins`` says
what was skipped and why, and a profile served by the built-in plugins still resolves.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.core.gw_test_support import assert_clean_failure

BAD = Path(__file__).resolve().parent / "bad_plugins"
KEYS = '[profiles.keys]\nsteps = [{ use = "aws-keys", access_key_id = "env:GWT_A", secret_access_key = "env:GWT_B" }]\n'
ENV = {"GWT_A": "AKIAEXAMPLEEXAMPLE", "GWT_B": "bad-plugin-suite-secret", "COLUMNS": "250"}

CASES = {
    "gwbad_misspelled": "implements unknown hook gw_secret_scheme (did you mean gw_secret_schemes?)",
    "gwbad_not_a_list": "gw_commands must return a list, not Command",
    "gwbad_default": "option 'retries' has default 'three', not of its type int",
    "gwbad_choice": "option 'mode' has default 'fast', not one of its choices",
    "gwbad_setting": "setting 'lock_timeout' is one of gw's own settings",
    "gwbad_kind": "names unknown credential kind 'aws-credential' (did you mean 'aws-credentials'?)",
    "gwbad_import": "cannot be loaded: RuntimeError: this plugin is broken at import",
    "gwbad_call": "gw_profile_tables raised KeyError",
}


@pytest.fixture
def home(gw_home):
    gw_home.env["PYTHONPATH"] = str(BAD)
    gw_home.write_config(KEYS)
    return gw_home


@pytest.mark.parametrize("module", sorted(CASES))
def test_a_bad_plugin_is_named_skipped_and_the_rest_works(home, module):
    env = {**ENV, "GW_PLUGINS": module}
    helped = home.run_in_process("--help", env=env)
    assert helped.returncode == 0 and "credential-process" in helped.stdout, helped.stderr
    warnings = [line for line in helped.stderr.splitlines() if module in line]
    assert len(warnings) == 1 and warnings[0].startswith(f"gw: warning: plugin {module!r} skipped: "), helped.stderr
    assert CASES[module] in warnings[0]
    assert "Traceback" not in helped.stderr

    listed = home.run_in_process("plugins", "--json", env=env) if _has_json(home, env) else home.run_in_process("plugins", env=env)
    assert listed.returncode == 0, listed.stderr
    assert module in listed.stdout and "aws" in listed.stdout

    checked = home.run_in_process("check", env=env)
    assert checked.returncode == 0, checked.stderr
    served = home.run_in_process("env", "--profile", "keys", "--format", "json", env=env)
    assert served.returncode == 0, served.stderr
    assert json.loads(served.stdout)["AWS_ACCESS_KEY_ID"] == ENV["GWT_A"]


def _has_json(home, env) -> bool:
    return "--json" in home.run_in_process("plugins", "--help", env=env).stdout


def test_two_plugins_offering_one_step_type_break_only_the_profiles_using_it(home):
    env = {**ENV, "GW_PLUGINS": "gwbad_dup_a,gwbad_dup_b"}
    home.write_config(KEYS + '[profiles.dup]\nsteps = [{ use = "dup-step" }]\n'
                      '[profiles.a]\nsteps = [{ use = "only-a" }]\n')
    dup = home.run_in_process("token", "--profile", "dup", env=env)
    assert_clean_failure(dup, contains="'dup-step' is offered by two plugins: gwbad_dup_a and gwbad_dup_b")
    only_a = home.run_in_process("token", "--profile", "a", env=env)
    assert only_a.returncode == 0 and only_a.stdout == "token-from-a-1234\n", only_a.stderr
    keys = home.run_in_process("env", "--profile", "keys", "--format", "json", env=env)
    assert keys.returncode == 0, keys.stderr
    checked = home.run_in_process("check", env=env)
    assert checked.returncode != 0 and "offered by two plugins" in checked.stderr
    assert "profiles.a" not in checked.stderr and "profiles.keys" not in checked.stderr


def test_a_plugin_raising_at_call_time_is_named_and_the_credential_still_served(home):
    env = {**ENV, "GW_PLUGINS": "gwbad_audit"}
    served = home.run_in_process("env", "--profile", "keys", "--format", "json", env=env)
    assert served.returncode == 0, served.stderr
    assert "gw: warning: plugin 'gwbad_audit' failed in gw_credentials_issued (ValueError)" in served.stderr
    assert ENV["GWT_B"] not in served.stderr


def test_a_plugin_can_be_switched_off(home):
    env = {**ENV, "GW_PLUGINS": "gwbad_dup_a", "GW_DISABLE_PLUGINS": "gwbad_dup_a,onepassword"}
    listed = home.run_in_process("plugins", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "only-a" not in listed.stdout
    rows = [line for line in listed.stdout.splitlines() if "onepassword" in line or "gwbad_dup_a" in line]
    assert len(rows) == 2 and all("disabled" in row for row in rows), listed.stdout
    home.write_config('[settings]\ndisable_plugins = ["soracom"]\n\n' + KEYS + '[profiles.s]\nsteps = [{ use = "soracom-keys" }]\n',
                      settings=False)
    checked = home.run_in_process("check", env=ENV)
    assert checked.returncode != 0 and "unknown step type 'soracom-keys'" in checked.stderr
    assert "plugins disabled: soracom" in checked.stderr


def test_a_command_clashing_with_a_core_command_is_skipped_and_listed_as_skipped(home):
    env = {**ENV, "GW_PLUGINS": "gwbad_clash"}
    listed = home.run_in_process("plugins", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    (doc,) = [d for d in json.loads(listed.stdout) if d["name"] == "gwbad_clash"]
    assert doc["commands"] == [] and doc["skipped_commands"] == ["gw env (SKIPPED: a core command of that name exists)"]
    helped = home.run_in_process("--help", env=env)
    assert helped.returncode == 0 and "plugin 'gwbad_clash': command 'env' skipped" in helped.stderr
    served = home.run_in_process("env", "--profile", "keys", "--format", "json", env=env)
    assert served.returncode == 0 and json.loads(served.stdout)["AWS_ACCESS_KEY_ID"] == ENV["GWT_A"]
