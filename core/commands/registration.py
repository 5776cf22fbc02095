"""The built-in ``core`` plugin's commands, gathered from the modules :data:`gw.commands.MODULES` lists.

:mod:`gw.builtin` offers them through ``gw_commands`` like any plugin; :mod:`gw.cli` takes them
from here directly when a command needs no other plugin (``gw vault list`` loads none).
"""

from __future__ import annotations

import functools
import importlib

from ..steps import Command
from . import MODULES


@functools.cache
def _gathered() -> tuple[Command, ...]:
    found: list[Command] = []
    for name, words in MODULES.items():
        module = importlib.import_module(f"{__package__}.{name}")
        declared = list(module.COMMANDS)
        top = tuple(command.name for command in declared if command.group is None)
        if top != words:  # a bug of gw itself: the fast path would serve a word the parser does not know
            raise RuntimeError(f"gw.commands.{name} declares {top}, gw.commands.MODULES lists {words}")
        found += declared
    return tuple(found)


def core_commands() -> list[Command]:
    """Every command of the ``core`` plugin, in ``gw --help`` order (a group before its subcommands)."""
    return list(_gathered())
