"""Calling hooks: the one way, through pluggy, with each plugin's implementation guarded.

Every hook call goes through pluggy's relay: ``pm.hook.NAME(...)``, and for the one historic
hook, ``gw_add_hookspecs``, ``pm.hook.gw_add_hookspecs.call_historic(...)`` - the way pytest
calls its ``pytest_addhooks`` (pytest-dev/pytest src/_pytest/config/__init__.py, ``Config.parse``;
pluggy docs/calling.rst "Historic calls": a plugin registered later still gets the call).

What pluggy leaves to its host is done here, once. pluggy stops a hook call at the first
implementation that raises; gw must not let one plugin's bug end a command or hide the other
plugins. So each implementation is registered guarded (:meth:`Guard.register`): one that raises
is named in one warning line (``gw: warning: plugin 'x' failed in gw_... (ValueError)``) and the
call goes on with the rest. The loader, which must drop a plugin whose declarations fail, hears
each plugin's answer instead (:meth:`Guard.answers`).
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from typing import Any

PROJECT = "gw"
MARKER = f"{PROJECT}_impl"  # the attribute pluggy's HookimplMarker("gw") sets on an implementation


@dataclass
class Answer:
    """What one plugin's implementation gave for one hook call: a value, or the error it raised."""

    plugin: str
    hook: str
    value: Any = None
    error: Exception | None = None


class Guard:
    """Registers plugins with pluggy, each hook implementation wrapped so a failure stays its own."""

    def __init__(self, pm: Any) -> None:
        self.pm = pm
        self._listening: list[list[Answer]] = []

    def register(self, plugin: object, name: str | None = None) -> str | None:
        """Register ``plugin`` (a module, class or object) under ``name``; None when it is in already.

        Raises what pluggy raises for a plugin it refuses (``PluginValidationError``).
        """
        name = name or getattr(plugin, "__name__", None) or str(id(plugin))
        if any(getattr(other, "plugin", None) is plugin for other in self.pm.get_plugins()):
            return None
        return self.pm.register(GuardedPlugin(plugin, name, self), name=name)

    def answers(self, hook: str, **kwargs: Any) -> list[Answer]:
        """Call ``hook`` through pluggy and return each implementation's answer, in the order the
        plugins were registered (a historic hook with ``call_historic``)."""
        heard: list[Answer] = []
        self._listening.append(heard)
        try:
            caller = getattr(self.pm.hook, hook)
            if caller.is_historic():
                caller.call_historic(kwargs=kwargs)
            else:
                caller(**kwargs)
        finally:
            self._listening.pop()
        order = {name: index for index, (name, _) in enumerate(self.pm.list_name_plugin())}
        return sorted((a for a in heard if a.hook == hook), key=lambda a: order.get(a.plugin, len(order)))

    def _heard(self, answer: Answer) -> None:
        if self._listening:
            self._listening[-1].append(answer)
        elif answer.error is not None:
            print(f"gw: warning: plugin {answer.plugin!r} failed in {answer.hook} "
                  f"({type(answer.error).__name__})", file=sys.stderr)

    def wrap(self, plugin: str, hook: str, function: Any) -> Any:
        """``function`` guarded: what it returns or raises is heard; a raise becomes None."""

        @functools.wraps(function)  # pluggy reads the arguments through __wrapped__
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                value = function(*args, **kwargs)
            except Exception as exc:  # a plugin's bug must not end the command
                self._heard(Answer(plugin, hook, error=exc))
                return None
            self._heard(Answer(plugin, hook, value))
            return value

        return guarded


class GuardedPlugin:
    """A plugin as pluggy sees it: its hook implementations, each guarded (:meth:`Guard.wrap`).

    ``plugin`` is the plugin itself; ``unmarked`` names its ``gw_*`` functions without
    ``@hookimpl`` (pluggy would ignore them: the loader refuses the plugin instead).
    """

    def __init__(self, plugin: object, name: str, guard: Guard) -> None:
        self.plugin = plugin
        self.unmarked: list[str] = []
        for attr in dir(plugin):
            function = getattr(plugin, attr, None)
            if not callable(function) or isinstance(function, type):
                continue
            opts = getattr(function, MARKER, None)
            if not isinstance(opts, dict):
                if attr.startswith(f"{PROJECT}_"):
                    self.unmarked.append(attr)
                continue
            if opts.get("wrapper") or opts.get("hookwrapper"):  # pluggy drives a wrapper itself
                setattr(self, attr, function)
                continue
            guarded = guard.wrap(name, opts.get("specname") or attr, function)
            setattr(guarded, MARKER, opts)
            setattr(self, attr, guarded)
