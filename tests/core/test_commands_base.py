"""gw.commands.base: a core command is a public ``Command`` whose ``run`` reaches the App behind
gw's own CommandContext (unit tests)."""

from __future__ import annotations

import argparse

import pytest

from gw.command_context import AppCommandContext, app_of
from gw.commands.base import Action, command, group, with_actions
from gw.errors import UsageError
from gw.plugin import Command


class FakeApp:
    pass


def test_a_core_command_is_a_command_of_the_core_plugin_run_with_the_app():
    seen = []
    declared = command("word", "a help line", "A description.", "  gw word", lambda parser: None,
                       lambda ns, app: seen.append((ns, app)) or 4)
    assert isinstance(declared, Command) and declared.plugin == "core" and declared.epilog == "examples:\n  gw word"
    app = FakeApp()
    assert declared.run("ns", AppCommandContext(app, "word")) == 4  # type: ignore[arg-type]
    assert seen == [("ns", app)]


def test_only_gws_own_context_leads_to_the_app():
    with pytest.raises(TypeError, match="a core command runs with gw's own CommandContext"):
        app_of(object())


def test_actions_are_subcommands_run_by_their_command():
    ran = []
    declared = with_actions("thing", "h", "D.", "  gw thing one", metavar="ACTION", dest="thing_action", actions=[
        Action("one", "first", "The first.", "  gw thing one", lambda ns, app: ran.append("one") or 0),
        Action("two", "second", "The second.", "  gw thing two", lambda ns, app: ran.append(ns.n) or 0,
               lambda parser: parser.add_argument("n")),
    ])
    parser = argparse.ArgumentParser()
    declared.configure(parser)
    for argv in (["one"], ["two", "7"]):
        assert declared.run(parser.parse_args(argv), AppCommandContext(FakeApp())) == 0  # type: ignore[arg-type]
    assert ran == ["one", "7"]
    with pytest.raises(SystemExit):
        parser.parse_args([])  # an action is required


def test_a_group_takes_members_and_runs_nothing_itself():
    declared = group("setup", "h", "D.", "  gw setup x", metavar="TARGET", dest="setup_action")
    parser = argparse.ArgumentParser()
    declared.configure(parser)
    with pytest.raises(UsageError, match="gw setup needs a target"):
        declared.run(argparse.Namespace(), AppCommandContext(FakeApp()))  # type: ignore[arg-type]
