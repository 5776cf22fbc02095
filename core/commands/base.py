"""Declaring a command of the built-in ``core`` plugin, and the output helpers its commands share.

A core command is an ordinary :class:`gw.plugin.Command`. Its ``run`` gets the
:class:`gw.plugin.CommandContext` every command gets; being part of gw, it reaches the App
behind it (:func:`gw.command_context.app_of`) where a plugin has only the context.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..command_context import app_of
from ..errors import UsageError
from ..steps import Command
from . import CORE

Handler = Callable[[Any, Any], int | None]  # (parsed arguments, App) -> exit status


def command(name: str, help: str, description: str, examples: str, configure: Callable[[Any], None],
            handler: Handler, *, group: str | None = None) -> Command:
    """A ``Command`` of the ``core`` plugin; ``handler(ns, app)`` runs it."""
    return Command(name=name, help=help, configure=configure, run=lambda ns, context: handler(ns, app_of(context)),
                   group=group, description=description, epilog="examples:\n" + examples, plugin=CORE)


@dataclass(frozen=True)
class Action:
    """A subcommand of a core command (``gw cache list``), parsed and run by that command."""

    name: str
    help: str
    description: str
    examples: str
    handler: Handler
    configure: Callable[[Any], None] = lambda parser: None


def subparser(sub: Any, name: str, help: str, description: str, examples: str) -> Any:
    """A subcommand's parser, formatted like every command's (examples kept as written)."""
    import argparse

    return sub.add_parser(name, help=help, description=description, epilog="examples:\n" + examples,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def with_actions(name: str, help: str, description: str, examples: str, *, metavar: str, dest: str,
                 actions: Sequence[Action]) -> Command:
    """A core command made of subcommands (``gw cache list|clear``): it runs the one named."""
    handlers = {action.name: action.handler for action in actions}

    def configure(parser: Any) -> None:
        sub = parser.add_subparsers(metavar=metavar, dest=dest, required=True)
        for action in actions:
            action.configure(subparser(sub, action.name, action.help, action.description, action.examples))

    return command(name, help, description, examples, configure,
                   lambda ns, app: handlers[getattr(ns, dest)](ns, app))


def group(name: str, help: str, description: str, examples: str, *, metavar: str, dest: str) -> Command:
    """A command other plugins add subcommands to (``Command(group=name)``): ``gw setup``, ``gw serve``."""

    def add_group(parser: Any) -> None:
        parser.add_subparsers(metavar=metavar, dest=dest, required=True)

    def run(ns: Any, app: Any) -> int:  # argparse requires a subcommand: only a guard
        raise UsageError(f"gw {name} needs a {metavar.lower()}")

    return command(name, help, description, examples, add_group, run)


def json_option(parser: Any, help: str = "JSON instead of a table") -> None:
    parser.add_argument("--json", action="store_true", help=help)


def emit_json(app: Any, doc: object) -> None:
    import json

    app.emit(json.dumps(doc, indent=2))


def table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    """A table on a terminal; plain tab-separated lines (no box drawing) on a pipe or file."""
    if not sys.stdout.isatty():
        print("\t".join(columns))
        for row in rows:
            print("\t".join(cell.replace("\n", "; ") for cell in row))
        sys.stdout.flush()
        return
    from rich.console import Console
    from rich.table import Table

    shown = Table(title=title, title_justify="left")
    for column in columns:
        shown.add_column(column)
    for row in rows:
        shown.add_row(*row)
    Console(highlight=False, soft_wrap=True).print(shown)
