"""The example third-party plugin, tested the way a plugin author tests theirs: with gw.testing.

It contributes a step type (``static-token``), a secret scheme (``rot13:``), a command
(``gw example-hello``) and an audit hook writing to ``$GW_EXAMPLE_AUDIT``. It is loaded with
``GwHome.load_plugin`` (``GW_PLUGINS``): nothing is installed into the running venv.
"""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest

from gw.testing import assert_clean_failure

PROJECT = Path(__file__).resolve().parent
TOKEN = "example-token-Zq8-secret-value"


@pytest.fixture
def plugin_home(gw_home, tmp_path):
    gw_home.load_plugin("gw_example_plugin", PROJECT)
    gw_home.env["GWT_ROT13"] = codecs.encode(TOKEN, "rot13")
    gw_home.env["GW_EXAMPLE_AUDIT"] = str(tmp_path / "audit.log")
    gw_home.env["COLUMNS"] = "200"
    gw_home.write_config('[profiles.tok]\nsteps = [{ use = "static-token", token = "rot13:GWT_ROT13", lifetime = 600 }]\n')
    return gw_home


def test_gw_plugins_lists_it(plugin_home):
    result = plugin_home.run("plugins", env={"COLUMNS": "160"})
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("gw_example_plugin	"))  # plain on a pipe
    assert "static-token (source -> bearer-token)" in row and "rot13:" in row and "gw example-hello" in row
    assert "FAILED" not in result.stdout


def test_a_profile_using_it_works_and_is_audited(plugin_home, tmp_path):
    first = plugin_home.run("env", "--profile", "tok", "--format", "json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"GW_BEARER_TOKEN": TOKEN}  # rot13 decoded
    assert plugin_home.cache_file("tok").exists()
    second = plugin_home.run("env", "--profile", "tok", "--format", "json")
    assert second.stdout == first.stdout
    audit = (tmp_path / "audit.log").read_text()
    lines = audit.splitlines()
    assert lines[0] == "tok\tbearer-token\tfrom_cache=false"
    assert lines.count("tok\tbearer-token\tfrom_cache=false") == 1  # the second call was a cache hit
    assert TOKEN not in audit and plugin_home.env["GWT_ROT13"] not in audit


def test_its_secret_scheme_and_options_are_checked_by_the_core(plugin_home):
    plugin_home.write_config('[profiles.tok]\nsteps = [{ use = "static-token", token = "rot13:GWT_ROT13", lifetime = "long" }]\n')
    assert_clean_failure(plugin_home.run("env", "--profile", "tok"), contains="lifetime must be an integer, not a string")
    plugin_home.write_config('[profiles.tok]\nsteps = [{ use = "static-token", token = "rot13:GWT_ROT13", lifetime = 5 }]\n')
    assert_clean_failure(plugin_home.run("env", "--profile", "tok"), contains="lifetime must be between 60 and 86400")
    plugin_home.write_config('[profiles.tok]\nsteps = [{ use = "static-token", token = "rot13:GWT_UNSET" }]\n')
    result = plugin_home.run("env", "--profile", "tok")
    assert_clean_failure(result, contains="environment variable GWT_UNSET is not set")
    check = plugin_home.run("check")
    assert check.returncode == 0, check.stderr  # rot13: is a known scheme to gw check


def test_its_command_runs(plugin_home):
    result = plugin_home.run("example-hello", "--name", "tester")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello, tester, from gw_example_plugin\n"
    helped = plugin_home.run("--help")
    assert "example-hello" in helped.stdout


def test_gw_token_serves_it_and_a_cache_hit_loads_no_plugin(plugin_home, tmp_path):
    raw = plugin_home.run("token", "--profile", "tok")
    assert raw.returncode == 0, raw.stderr
    assert raw.stdout == TOKEN + "\n"
    header = plugin_home.run("token", "--profile", "tok", "--format", "header", env={"PYTHONVERBOSE": "1"})
    assert header.stdout == f"Authorization: Bearer {TOKEN}\n"
    assert "gw_example_plugin" not in header.stderr and "pluggy" not in header.stderr  # served by the fast path
    doc = json.loads(plugin_home.run("token", "--profile", "tok", "--format", "json").stdout)
    assert doc["token"] == TOKEN and doc["token_type"] == "Bearer" and doc["expiration"].endswith("Z")
    audit = (tmp_path / "audit.log").read_text().splitlines()
    assert audit.count("tok\tbearer-token\tfrom_cache=false") == 1


def test_gw_token_refuses_a_profile_without_a_token(plugin_home):
    plugin_home.write_config(
        '[profiles.keys]\nsteps = [{ use = "aws-keys", access_key_id = "env:A", secret_access_key = "env:B" }]\n'
    )
    result = plugin_home.run("token", "--profile", "keys", env={"A": "AKIAEXAMPLE", "B": "secret-value-123"})
    assert_clean_failure(result, contains="not a bearer or OpenID token")


def test_its_step_runs_in_the_stub_context(step_context, monkeypatch):
    monkeypatch.syspath_prepend(str(PROJECT))
    from gw_example_plugin import run_static_token

    token = run_static_token(step_context, {"token": TOKEN, "lifetime": 600}, None)
    assert token.access_token == TOKEN
    assert (token.expiration - token.issued_at).total_seconds() == 600
