"""gw.commands.completion and gw.cli_options.profile_option: every ``--profile`` of every command, the
core's and each plugin's, is built by the public ``profile_option`` and completes profile names
(in-process; the shells themselves: tests/core/test_conventions.py)."""

from __future__ import annotations

import argparse

from gw.cli_options import PROFILE_COMPLETION
from gw.commands.completion import PREAMBLES
from tests.core.commands_helpers import parse


def _profile_options(parser: argparse.ArgumentParser, path=()):
    for action in parser._actions:
        if "--profile" in action.option_strings:
            yield " ".join(path), action
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _profile_options(sub, (*path, name))


def test_each_profile_completer_is_defined_by_its_shells_preamble():
    assert set(PROFILE_COMPLETION) == set(PREAMBLES) == {"bash", "zsh", "fish"}
    for shell, function in PROFILE_COMPLETION.items():
        assert f"{function.strip('()')}()" in PREAMBLES[shell] or f"function {function.strip('()')}\n" in PREAMBLES[shell]


def test_every_profile_option_comes_from_profile_option(keys_home, monkeypatch):
    from gw.cli import build_parser

    _, app = parse(keys_home, monkeypatch, "completion", "bash")
    found = dict(_profile_options(build_parser(app, ["completion"])))
    # the core's and those of the plugins whose parsers wrote --profile by hand before
    for command in ("credential-process", "env", "exec", "serve ecs", "check", "cache clear", "init", "iot-url",
                    "krypton call", "krypton pin", "soracom", "soracom-profile", "soracom-token", "setup soracom",
                    "sso login", "sso roles", "import aws", "setup aws", "rotate"):
        assert command in found, command
    assert [name for name, action in found.items() if getattr(action, "complete", None) != PROFILE_COMPLETION] == []


def test_gw_profile_is_the_default_of_a_required_profile_only(keys_home, monkeypatch):
    monkeypatch.setenv("GW_PROFILE", "keys")
    from gw.cli_options import profile_option

    parser = argparse.ArgumentParser()
    profile_option(parser)
    assert parser.parse_args([]).profile == "keys"
    optional = argparse.ArgumentParser()
    profile_option(optional, "a profile", required=False)
    assert optional.parse_args([]).profile is None
    monkeypatch.delenv("GW_PROFILE")
    required = argparse.ArgumentParser()
    profile_option(required)
    assert required._option_string_actions["--profile"].required


def test_plugin_commands_take_gw_profile(keys_home):
    """What cli.py's patch of argparse's private actions did, profile_option now does."""
    without = keys_home.run_in_process("soracom-token")
    assert without.returncode == 2
    assert "the following arguments are required: --profile (or set GW_PROFILE)" in without.stderr
    named = keys_home.run_in_process("soracom-token", env={"GW_PROFILE": "keys"})
    assert named.returncode != 0 and "required: --profile" not in named.stderr  # parsed; the profile is wrong


def test_the_script_completes_profile_names_for_core_and_plugin_commands(keys_home):
    script = keys_home.run_in_process("completion", "bash").stdout
    assert "_gw_compgen_profiles() {" in script
    assert script.count("_gw_compgen_profiles") > 10
