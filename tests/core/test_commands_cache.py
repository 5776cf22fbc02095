"""gw.commands.cache: ``gw cache list`` and ``gw cache clear`` (in-process; shared prefixes and
revocation: tests/core/test_shared_steps.py, the plugins' tests)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.core.commands_helpers import parse

GOOD_PLUGINS = Path(__file__).resolve().parent / "good_plugins"


def test_an_empty_cache(keys_home):
    listed = keys_home.run_in_process("cache", "list", "--json")
    assert (listed.returncode, json.loads(listed.stdout)) == (0, [])
    cleared = keys_home.run_in_process("cache", "clear")
    assert (cleared.returncode, cleared.stdout) == (0, "cleared 0 cached profile(s)\n")


def test_clearing_a_profile_that_does_not_exist_is_an_error_with_the_nearest_name(keys_home):
    result = keys_home.run_in_process("cache", "clear", "--profile", "kyes")
    assert (result.returncode, result.stdout) == (2, "")
    assert "kyes" in result.stderr and "did you mean 'keys'" in result.stderr
    known = keys_home.run_in_process("cache", "clear", "--profile", "keys")
    assert (known.returncode, known.stdout) == (0, "cleared 0 cached profile(s)\n")


def test_an_entry_is_listed_then_cleared(keys_home, monkeypatch, tmp_path):
    keys_home.load_plugin("gwtest_exec", GOOD_PLUGINS)
    keys_home.env["GWTEST_FETCHES"] = str(tmp_path / "fetches")
    keys_home.config_path.write_text(keys_home.config_path.read_text()
                                     + '\n[profiles.pass]\nsteps = [{ use = "test-pass", user = "alice" }]\n')
    monkeypatch.syspath_prepend(str(GOOD_PLUGINS))
    _, app = parse(keys_home, monkeypatch, "cache", "list")
    app.resolve("pass")  # fetched and cached (a temporary credential)
    monkeypatch.undo()
    [entry] = json.loads(keys_home.run_in_process("cache", "list", "--json").stdout)
    assert (entry["name"], entry["kind"], entry["state"]) == ("pass", "test-pass", "fresh")
    table = keys_home.run_in_process("cache", "list").stdout.splitlines()
    assert table[0] == "profile\tkind\texpires\tstate" and table[1].startswith("pass\ttest-pass\t")
    assert table[1].endswith("(in 59 min)\tfresh")
    cleared = keys_home.run_in_process("cache", "clear", "--profile", "pass")
    assert (cleared.returncode, cleared.stdout) == (0, "cleared 1 cached profile(s)\n")
    assert json.loads(keys_home.run_in_process("cache", "list", "--json").stdout) == []
