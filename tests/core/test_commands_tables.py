"""gw.commands.tables: ``gw profiles``, ``gw plugins``, ``gw check`` (in-process)."""

from __future__ import annotations

import json
from pathlib import Path

from gw.errors import CHECK_PROBLEMS

BAD_PLUGINS = Path(__file__).resolve().parent / "bad_plugins"


def test_profiles_lists_each_profile(keys_home):
    docs = json.loads(keys_home.run_in_process("profiles", "--json").stdout)
    assert [doc["name"] for doc in docs] == ["keys", "other"]
    assert docs[0]["description"] == "long-term keys from the environment"
    rows = keys_home.run_in_process("profiles").stdout.splitlines()  # a pipe: tab-separated
    assert len(rows) == 3 and rows[1].startswith("keys\t")


def test_plugins_marks_a_plugin_command_named_like_a_core_one(keys_home):
    keys_home.load_plugin("gwbad_clash", BAD_PLUGINS)
    docs = {doc["name"]: doc for doc in json.loads(keys_home.run_in_process("plugins", "--json").stdout)}
    assert docs["gwbad_clash"]["skipped_commands"] == ["gw env (SKIPPED: a core command of that name exists)"]
    assert "gw env" in docs["core"]["commands"] and docs["core"]["skipped_commands"] == []


def test_check_passes_a_good_config_and_counts_problems(keys_home):
    good = keys_home.run_in_process("check")
    assert (good.returncode, good.stdout) == (0, f"{keys_home.config_path}: 2 profile(s), all valid\n")
    keys_home.config_path.write_text(keys_home.config_path.read_text() + '\n[profiles.bad]\nsteps = [{ use = "nope" }]\n')
    bad = keys_home.run_in_process("check", "--json")
    doc = json.loads(bad.stdout)
    assert bad.returncode == CHECK_PROBLEMS and doc["ok"] is False and doc["profiles"] == 3
    assert doc["problems"] == [f"{keys_home.config_path}: profiles.bad.steps[0] (nope): unknown step type 'nope'"]


def test_check_takes_a_profile_only_with_live(keys_home):
    result = keys_home.run_in_process("check", "--profile", "keys")
    assert result.returncode == 2
    assert result.stderr == "gw: --profile goes with --live (gw check always checks the whole config)\n"
    unset = keys_home.run_in_process("check", env={"GW_PROFILE": "keys"})  # an optional --profile ignores GW_PROFILE
    assert unset.returncode == 0, unset.stderr
