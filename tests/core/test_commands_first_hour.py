"""gw.commands.first_hour: ``gw init`` and ``gw config example`` (in-process; the questions on a
terminal: tests/core/test_init_wizard.py)."""

from __future__ import annotations

from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"


def test_config_example_prints_the_shipped_example(keys_home):
    result = keys_home.run_in_process("config", "example")
    assert (result.returncode, result.stdout) == (0, EXAMPLE.read_text())


def test_init_needs_a_terminal(keys_home):
    before = keys_home.config_path.read_bytes()
    result = keys_home.run_in_process("init", "--profile", "new")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "gw: gw init asks its questions on a terminal; run it in one\n"
    assert keys_home.config_path.read_bytes() == before


def test_init_checks_the_config_it_wrote_with_an_app_of_its_own(keys_home, tmp_path):
    from gw.app import App

    app = App(config_path=str(keys_home.config_path))
    other = app.for_config(str(tmp_path / "other.toml"))
    assert isinstance(other, App) and other is not app and other.config_file == str(tmp_path / "other.toml")
