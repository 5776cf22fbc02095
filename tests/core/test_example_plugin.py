"""A third-party plugin (tests/example_plugin) registers through the ``gw`` entry points like built-ins.

It contributes a step type (``static-token``), a secret scheme (``rot13:``), a command
(``gw example-hello``) and an audit hook writing to ``$GW_EXAMPLE_AUDIT``.
"""

from __future__ import annotations

import codecs
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.core.gw_test_support import assert_clean_failure, cache_file

PROJECT = Path(__file__).resolve().parent.parent / "example_plugin"
TOKEN = "example-token-Zq8-secret-value"


def _installed() -> bool:
    """Installed as a distribution with its entry point (not merely importable from the tree)."""
    import importlib.metadata

    return any(ep.value == "gw_example_plugin" for ep in importlib.metadata.entry_points(group="gw"))


@pytest.fixture(scope="module", autouse=True)
def example_plugin_installed():
    """Install the example plugin into this venv if it is not there yet (the Makefile does it too)."""
    if _installed():
        return
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
    # --no-build-isolation needs the `wheel` package in the venv; a plain install builds
    # in an isolated env from the configured (local) index.
    done = subprocess.run([*pip, "--no-build-isolation", "-e", str(PROJECT)], capture_output=True, text=True)
    if done.returncode != 0:
        done = subprocess.run([*pip, "-e", str(PROJECT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    # an editable install takes effect at interpreter start-up: check in a new interpreter
    probe = subprocess.run([sys.executable, "-c", "import gw_example_plugin"], capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr


@pytest.fixture
def plugin_home(gw_home, tmp_path):
    gw_home.env["GWT_ROT13"] = codecs.encode(TOKEN, "rot13")
    gw_home.env["GW_EXAMPLE_AUDIT"] = str(tmp_path / "audit.log")
    gw_home.env["COLUMNS"] = "200"
    gw_home.write_config('[profiles.tok]\nsteps = [{ use = "static-token", token = "rot13:GWT_ROT13", lifetime = 600 }]\n')
    return gw_home


def test_gw_plugins_lists_it(plugin_home):
    result = plugin_home.run("plugins", env={"COLUMNS": "160"})
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if " example " in line)
    assert "static-token (source -> bearer-token)" in row and "rot13:" in row and "gw example-hello" in row
    assert "FAILED" not in result.stdout


def test_a_profile_using_it_works_and_is_audited(plugin_home, tmp_path):
    first = plugin_home.run("env", "--profile", "tok", "--format", "json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"GW_ACCESS_TOKEN": TOKEN}  # rot13 decoded
    assert cache_file(plugin_home, "tok").exists()
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
