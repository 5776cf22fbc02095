"""A plugin's own credential kind is cached and read back like a built-in one (no refetch)."""

from __future__ import annotations

import json
from pathlib import Path

PLUGINS = Path(__file__).resolve().parent / "good_plugins"


def test_a_plugin_kind_is_cached_and_read_back(gw_home, tmp_path):
    gw_home.load_plugin("gwtest_kind", PLUGINS)
    gw_home.env["GWTEST_COUNTER"] = str(tmp_path / "counter")
    gw_home.write_config('[profiles.t]\nsteps = [{ use = "test-ticket" }]\n')
    first = gw_home.run_in_process("env", "--profile", "t", "--format", "json")
    assert first.returncode == 0, first.stderr
    second = gw_home.run_in_process("env", "--profile", "t", "--format", "json")
    assert second.returncode == 0, second.stderr
    assert json.loads(first.stdout) == json.loads(second.stdout) == {
        "TEST_TICKET": "ticket-secret-value-42", "TEST_TICKET_SERIAL": "1"}
    assert (tmp_path / "counter").read_text() == "x"  # ran once: the second call was a cache hit
    listed = gw_home.run_in_process("cache", "list", env={"COLUMNS": "200"})
    assert "test-ticket" in listed.stdout
    assert "ticket-secret-value-42" not in listed.stdout + listed.stderr
