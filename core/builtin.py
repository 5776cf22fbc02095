"""The built-in ``core`` plugin: the core's secret schemes (:mod:`gw.builtin_schemes`) and its
commands (:mod:`gw.commands`), registered by :mod:`gw.loading` before any installed plugin and
offered through the same hooks (datasette registers its defaults the same way:
simonw/datasette ``datasette/plugins.py``, ``DEFAULT_PLUGINS``)."""

from __future__ import annotations

from .builtin_schemes import gw_secret_schemes, hookimpl
from .commands.registration import core_commands
from .steps import Command

__all__ = ["gw_commands", "gw_secret_schemes"]


@hookimpl
def gw_commands() -> list[Command]:
    return core_commands()
