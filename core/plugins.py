"""Loading plugins and collecting what they contribute.

Every plugin - built-in or third-party - is a module in the ``gw`` entry-point
group. A plugin that fails to import is reported on stderr and skipped, so one
broken plugin does not take gw down; its step types are then simply unknown.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from . import hookspecs
from .errors import ConfigError
from .steps import Command, SecretScheme, StepType

ENTRY_POINT_GROUP = "gw"


@dataclass
class Registry:
    """Everything the loaded plugins offer, by name."""

    pm: object
    step_types: dict[str, StepType] = field(default_factory=dict)
    schemes: list[SecretScheme] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    command_owners: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def hook(self):  # pluggy's hook relay
        return self.pm.hook  # type: ignore[attr-defined]

    def plugin_names(self) -> list[str]:
        return sorted(name for name, _ in self.pm.list_name_plugin() if name)  # type: ignore[attr-defined]


def _plugin_name(pm, plugin) -> str:
    return pm.get_name(plugin) or getattr(plugin, "__name__", "?")


def load_registry(extra_plugins: tuple[object, ...] = ()) -> Registry:
    """Load the ``gw`` entry points and gather step types, schemes and commands."""
    import importlib.metadata

    import pluggy

    pm = pluggy.PluginManager("gw")
    pm.add_hookspecs(hookspecs)
    failed: dict[str, str] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as exc:  # a broken plugin must not break gw
            failed[ep.name] = f"{type(exc).__name__}: {exc}"
            print(f"gw: warning: plugin {ep.name!r} failed to load ({failed[ep.name]})", file=sys.stderr)
    for plugin in extra_plugins:
        pm.register(plugin)
    registry = Registry(pm=pm, failed=failed)

    for impl in pm.hook.gw_step_types.get_hookimpls():
        for step in impl.function() or []:
            owner = _plugin_name(pm, impl.plugin)
            if step.name in registry.step_types:
                other = registry.step_types[step.name].plugin
                raise ConfigError(f"step type {step.name!r} is offered by two plugins: {other} and {owner}")
            registry.step_types[step.name] = _owned(step, owner)
    for impl in pm.hook.gw_secret_schemes.get_hookimpls():
        for scheme in impl.function() or []:
            registry.schemes.append(_owned(scheme, _plugin_name(pm, impl.plugin)))
    for impl in pm.hook.gw_commands.get_hookimpls():
        for command in impl.function() or []:
            registry.commands.append(command)
            name = f"setup {command.name}" if command.setup_target else command.name
            registry.command_owners[name] = _plugin_name(pm, impl.plugin)
    return registry


def _owned(item, owner: str):
    import dataclasses

    return item if item.plugin else dataclasses.replace(item, plugin=owner)
