"""gw.commands, gw.commands.registration, gw.builtin: the core's commands are Commands of the built-in
``core`` plugin, registered and made into parsers the way any plugin's are (in-process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gw.commands import CORE, MODULES, NEED_PLUGINS, PLUGIN_GROUPS, WORDS
from gw.commands.registration import core_commands
from gw.plugin import Command
from tests.core.test_boundaries import ROOT, _imports

GOOD_PLUGINS = Path(__file__).resolve().parent / "good_plugins"


def test_each_module_of_the_index_declares_exactly_its_words():
    commands = core_commands()
    assert commands and all(isinstance(c, Command) and c.plugin == CORE for c in commands)
    top = [c.name for c in commands if c.group is None]
    assert top == [word for words in MODULES.values() for word in words]  # gw --help order
    assert set(top) == WORDS and len(top) == len(WORDS)
    assert [c.full_name for c in commands if c.group] == ["serve ecs"]  # after its group
    assert set(PLUGIN_GROUPS) <= WORDS and NEED_PLUGINS == {*PLUGIN_GROUPS, "completion"}
    assert all(c.epilog.startswith("examples:\n  ") and c.description and c.help for c in commands)


def test_an_index_that_disagrees_with_its_module_is_refused(monkeypatch):
    from gw import commands
    from gw.commands import registration

    monkeypatch.setitem(commands.MODULES, "vault", ("vault", "secrets"))
    registration._gathered.cache_clear()
    try:
        with pytest.raises(RuntimeError, match=r"gw.commands.vault declares \('vault',\)"):
            core_commands()
    finally:
        monkeypatch.undo()
        registration._gathered.cache_clear()
    assert len(core_commands()) == len(WORDS) + 1


def test_the_core_plugin_offers_them_through_the_registry_like_any_plugin(keys_home):
    keys_home.load_plugin("gwtest_setting", GOOD_PLUGINS)
    listed = keys_home.run_in_process("plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    plugins = {doc["name"]: doc for doc in json.loads(listed.stdout)}
    assert plugins["core"]["commands"] == [f"gw {c.full_name}" for c in core_commands()]
    assert plugins["core"]["skipped_commands"] == []
    assert plugins["core"]["secret_schemes"]  # the same plugin as the built-in schemes
    assert plugins["gwtest_setting"]["commands"] == ["gw gwtest-settings"]
    assert "gw serve endorse-exchange" in plugins["endorse"]["commands"]
    table = keys_home.run_in_process("plugins").stdout.splitlines()
    core_row = next(line for line in table if line.startswith("core\t"))
    assert core_row.endswith("\tgw credential-process; gw token; gw env; gw exec; gw profiles; gw plugins; gw check; "
                             "gw cache; gw vault; gw init; gw config; gw completion; gw setup; gw import; gw serve; "
                             "gw serve ecs")


def test_core_and_plugin_commands_share_the_groups_and_the_parser(keys_home):
    keys_home.load_plugin("gwtest_setting", GOOD_PLUGINS)
    serve = keys_home.run_in_process("serve", "--help", env={"COLUMNS": "200"})
    assert serve.returncode == 0
    members = [line.split()[0] for line in serve.stdout.split("SERVICE\n")[1].split("options:")[0].splitlines()
               if line.startswith("    ") and not line.startswith("     ")]
    assert members == ["ecs", "endorse-exchange"]  # the core's member of the group, then a plugin's
    help_page = keys_home.run_in_process("--help", env={"COLUMNS": "200"}).stdout
    words = [line.split()[0] for line in help_page.split("commands:")[1].split("environment:")[0].splitlines()
             if line.startswith("    ") and not line.startswith("     ")]
    assert words[: len(WORDS)] == [c.name for c in core_commands() if c.group is None]  # the core's first
    assert "gwtest-settings" in words[len(WORDS):]
    ran = keys_home.run_in_process("gwtest-settings")
    assert (ran.returncode, ran.stdout) == (0, "hello 1\n")


def test_a_command_needing_no_plugin_is_parsed_without_loading_them(keys_home):
    keys_home.load_plugin("gwtest_setting", GOOD_PLUGINS)
    broken = {**keys_home.env, "GW_PLUGINS": keys_home.env["GW_PLUGINS"] + ",gwtest_no_such_module"}
    assert keys_home.run_in_process("vault", "list", env=broken).stderr == ""  # no plugin loaded, none failed
    assert "gwtest_no_such_module" in keys_home.run_in_process("plugins", env=broken).stderr


def test_the_command_modules_never_import_what_loads_them():
    """gw.loading registers gw.builtin, which imports the command modules by name
    (gw.commands.MODULES): none of them may lead back to gw.loading, gw.app or gw.cli."""
    offenders = []
    for path in sorted((ROOT / "core" / "commands").glob("*.py")):
        for line, module in _imports(path):
            if module in ("gw.app", "gw.loading", "gw.cli", "gw.builtin"):
                offenders.append(f"{path.name}:{line}: {module}")
    assert offenders == []


def test_nothing_reads_the_apps_private_state_from_outside():
    """``app._config_path`` and the like: only gw.app reads App's private attributes."""
    import ast

    offenders = []
    for package in ("core", "plugins", "emulators"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "core" / "app.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                    owner = node.value
                    name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else ""
                    if name in ("app", "_app", "app_"):
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert offenders == []
