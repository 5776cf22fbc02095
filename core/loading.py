"""Loading plugins, checking them, and collecting what they contribute.

Every plugin - built-in or third-party - is a module in the ``gw`` entry-point
group, registered through :class:`gw.hooks.Guard` (every hook is then called through
pluggy, one plugin's failure kept its own). Each is checked as it loads: it must import,
implement only known hooks (pluggy's ``check_pending``: a misspelled ``gw_secret_scheme``
is caught, with the nearest name), and return well-formed
declarations (lists of the right types, option defaults of the declared type,
known credential kinds). A plugin that fails any check is named in one line on
stderr, shown by ``gw plugins`` with the reason, and skipped; the rest of gw
works. Two plugins offering one step type break only the profiles that use it.

``GW_DISABLE_PLUGINS=a,b`` or ``settings.disable_plugins`` switch plugins off.
``GW_PLUGINS=module,module`` loads extra plugin modules without installing them
(like pytest's ``PYTEST_PLUGINS``): for developing and testing a plugin.

Lazy loading (docs/plugins.md "Lazy loading"): a plugin may name what it provides in the
``gw.provides`` entry-point group - ``step:NAME`` for a step type, ``scheme:PREFIX`` for a secret
scheme, ``table:NAME`` for a profile table, ``hook:NAME`` for a hook of another plugin it implements -
each pointing at the plugin's module (the value of its ``gw`` entry point). Running a
profile then loads only the plugins its steps and secret references need, plus every plugin that
names nothing there (an old-style plugin, loaded as before). Anything the partial registry cannot
answer (an unknown step type, table, setting or kind, a plugin's own hook) loads the rest first.
``gw --help``, ``gw check`` and every other command load all plugins.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from dataclasses import dataclass, field, replace
from typing import Any

from . import hookspecs
from .commands import PLUGIN_GROUPS
from .credentials import KINDS, Credential
from .hooks import Guard
from .steps import (
    Command,
    Duration,
    EnvironmentVariable,
    InvalidValue,
    Option,
    ProfileTable,
    SecretScheme,
    Setting,
    StepType,
)

ENTRY_POINT_GROUP = "gw"
PROVIDES_GROUP = "gw.provides"


class PluginProblem(Exception):
    """A plugin broke a rule of the plugin API (one line, naming what)."""


@dataclass
class Registry:
    """Everything the loaded plugins offer, by name."""

    pm: Any
    step_types: dict[str, StepType] = field(default_factory=dict)
    schemes: list[SecretScheme] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)  # not asked for in a registry loaded for one profile
    tables: dict[str, ProfileTable] = field(default_factory=dict)
    settings: dict[str, Setting] = field(default_factory=dict)
    kinds: dict[str, type[Credential]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    disabled: list[str] = field(default_factory=list)
    conflicts: dict[str, list[str]] = field(default_factory=dict)
    environment: list[EnvironmentVariable] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)  # lazy plugins not loaded (a partial registry)
    reload: Any = None  # loads the full registry, for :meth:`complete`

    @property
    def partial(self) -> bool:
        return bool(self.deferred)

    def complete(self) -> None:
        """Load the plugins a partial registry left out (nothing when it is complete)."""
        if self.deferred and self.reload is not None:
            self.__dict__.update(self.reload().__dict__)

    @property
    def hook(self) -> Any:
        """pluggy's hook relay: the one way to call a hook (each plugin guarded, see :mod:`gw.hooks`)."""
        return self.pm.hook

    def plugin_names(self) -> list[str]:
        return sorted(name for name, plugin in self.pm.list_name_plugin() if name and plugin is not None)


def disabled_plugins(setting: list[str] | None = None) -> list[str]:
    names = [n.strip() for n in os.environ.get("GW_DISABLE_PLUGINS", "").split(",") if n.strip()]
    return sorted(set(names) | set(setting or ()))


Needs = tuple[set[str], list[str]]


def needs_of(steps: list[dict[str, Any]], tables: dict[str, Any] | None = None) -> Needs:
    """What decides which lazy plugins a profile needs: the names it uses (``step:TYPE`` for each
    step, ``table:NAME`` for each profile table) and every string value (for ``scheme:PREFIX``)."""
    names = {f"step:{raw.get('use')}" for raw in steps} | {f"table:{name}" for name in tables or {}}
    strings: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            strings.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)

    walk(steps)
    walk(tables or {})
    return names, strings


def _lazy_plugins(provided: list[Any]) -> dict[str, set[str]]:
    """Plugin module -> what it provides (``step:NAME``, ``scheme:PREFIX``), from ``gw.provides``."""
    provides: dict[str, set[str]] = {}
    for ep in provided:
        provides.setdefault(ep.value.strip(), set()).add(ep.name.strip())
    return provides


def _wanted(provided: set[str], needs: Needs) -> bool:
    """Whether a lazy plugin providing ``provided`` is needed (``hook:NAME`` alone: only on demand)."""
    names, strings = needs
    for item in provided:
        kind, _, name = item.partition(":")
        if item in names or (kind == "scheme" and name and any(s.startswith(name) for s in strings)):
            return True
    return False


def load_registry(extra_plugins: tuple[object, ...] = (), disabled: list[str] | None = None,
                  needs: Needs | None = None) -> Registry:
    """Load the ``gw`` entry points, check each plugin, and gather what they offer.

    With ``needs`` (see :func:`needs_of`), lazy plugins that provide none of it are left out:
    a partial registry, completed by :meth:`Registry.complete` when it cannot answer.
    """
    import pluggy

    from .entrypoints import entry_points as read_entry_points

    pm = pluggy.PluginManager("gw")
    pm.add_hookspecs(hookspecs)
    guard = Guard(pm)
    registry = Registry(pm=pm, disabled=disabled_plugins(disabled))
    from . import builtin

    guard.register(builtin, name="core")
    groups = read_entry_points(ENTRY_POINT_GROUP, PROVIDES_GROUP)  # each entry_points.txt read once
    entry_points = groups[ENTRY_POINT_GROUP]
    lazy = _lazy_plugins(groups[PROVIDES_GROUP]) if needs is not None else {}
    for ep in entry_points:
        if needs is not None and ep.value.strip() in lazy and not _wanted(lazy[ep.value.strip()], needs):
            if ep.name not in registry.disabled:
                registry.deferred.append(ep.name)
            continue
        if ep.name in registry.disabled:
            pm.set_blocked(ep.name)
            continue
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name) or ep.name in registry.failed:
            continue
        try:
            guard.register(ep.load(), name=ep.name)
        except Exception as exc:  # a broken plugin must not break gw
            _fail(registry, ep.name, f"cannot be loaded: {_describe(exc)}")
    import importlib

    modules = [n.strip() for n in os.environ.get("GW_PLUGINS", "").split(",") if n.strip()]
    known = ["core", *(ep.name for ep in entry_points), *modules]
    for name in registry.disabled:
        if name not in known:  # a typo would otherwise leave the plugin running without a word
            from .config import suggest

            print(f"gw: warning: GW_DISABLE_PLUGINS/settings.disable_plugins: no plugin named {name!r}"
                  f"{suggest(name, known)}", file=sys.stderr)
    for module_name in modules:
        if module_name in registry.disabled or pm.get_plugin(module_name) is not None:
            continue
        try:
            guard.register(importlib.import_module(module_name), name=module_name)
        except Exception as exc:
            _fail(registry, module_name, f"cannot be loaded: {_describe(exc)}")
    for plugin in extra_plugins:
        try:
            guard.register(plugin)
        except Exception as exc:
            _fail(registry, getattr(plugin, "__name__", "?"), _describe(exc))
    for name, plugin in list(pm.list_name_plugin()):
        unmarked = getattr(plugin, "unmarked", None)  # gw_* functions pluggy would skip without a word
        if unmarked:
            _drop(registry, name, f"{unmarked[0]} is not marked with @hookimpl")
    for answer in guard.answers("gw_add_hookspecs", pluginmanager=pm):
        if answer.error is not None:
            _drop(registry, answer.plugin, f"gw_add_hookspecs failed: {_describe(answer.error)}")
    _check_pending(registry)
    _collect(registry, guard, commands=needs is None)
    if registry.deferred and registry.failed:  # e.g. a kind of a plugin left out: load all, warn once
        return load_registry(extra_plugins, disabled)
    for name, reason in registry.failed.items():
        print(f"gw: warning: plugin {name!r} skipped: {reason}", file=sys.stderr)
    if registry.deferred:
        registry.reload = lambda: load_registry(extra_plugins, disabled)
    return registry


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def _fail(registry: Registry, name: str, reason: str) -> None:
    registry.failed.setdefault(name, reason)


def _drop(registry: Registry, name: str, reason: str) -> None:
    """Skip plugin ``name`` for ``reason``: it is unregistered, so no hook call reaches it again."""
    _fail(registry, name, reason)
    registry.pm.unregister(name=name)


def _check_pending(registry: Registry) -> None:
    """pluggy's ``check_pending``: a plugin implementing a hook nobody specified (a typo) is skipped,
    with the nearest hook name. Hooks marked ``optionalhook`` (another plugin's, that may be absent) pass."""
    import pluggy

    pm = registry.pm
    while True:
        try:
            pm.check_pending()
            return
        except pluggy.PluginValidationError as exc:
            name = pm.get_name(exc.plugin)
            known = [n for n, caller in vars(pm.hook).items() if not n.startswith("_") and caller.has_spec()]
            unknown = sorted(caller.name for caller in pm.get_hookcallers(exc.plugin) or () if not caller.has_spec()
                             and any(i.plugin is exc.plugin and not i.optionalhook for i in caller.get_hookimpls()))
            close = difflib.get_close_matches(unknown[0], known, n=1)
            _drop(registry, name, f"implements unknown hook {unknown[0]}" + (f" (did you mean {close[0]}?)" if close else ""))


# -- collecting and checking contributions ---------------------------------------------
def _collect(registry: Registry, guard: Guard, commands: bool = True) -> None:
    """What the plugins offer, each item checked. Without ``commands`` (a registry loaded to run
    one profile, where no command line is parsed) ``gw_commands`` is not asked: the core's own
    would import every command module before the first upstream byte."""
    pm = registry.pm
    per_plugin: dict[str, dict[str, list[Any]]] = {name: {} for name, plugin in pm.list_name_plugin() if plugin}
    collectors = {  # the hooks whose answers are declarations, each item checked as it comes
        "gw_credential_kinds": _check_kind,
        "gw_step_types": _check_step_type,
        "gw_secret_schemes": _check_scheme,
        "gw_commands": _check_command,
        "gw_profile_tables": _check_table,
        "gw_settings": _check_setting,
        "gw_environment": _check_environment,
    }
    if not commands:
        collectors.pop("gw_commands")
    for hook, check in collectors.items():
        for answer in guard.answers(hook):
            if answer.plugin not in per_plugin:
                continue
            try:
                if answer.error is not None:
                    raise PluginProblem(f"{hook} raised {_describe(answer.error)}")
                result = [] if answer.value is None else answer.value
                if not isinstance(result, (list, tuple)):
                    raise PluginProblem(f"{hook} must return a list, not {type(result).__name__}")
                per_plugin[answer.plugin][hook] = [check(item, answer.plugin) for item in result]
            except PluginProblem as exc:
                _drop(registry, answer.plugin, str(exc))
                per_plugin.pop(answer.plugin)
    # kinds first: step types are checked against them
    kinds: dict[str, type[Credential]] = dict(KINDS)
    for name, found in per_plugin.items():
        for cls in found.get("gw_credential_kinds", []):
            if cls.KIND in kinds and kinds[cls.KIND] is not cls:
                _drop(registry, name, f"credential kind {cls.KIND!r} exists already")
                break
            kinds[cls.KIND] = cls
    for name in list(per_plugin):
        if name in registry.failed:
            per_plugin.pop(name)
            continue
        try:
            for step in per_plugin[name].get("gw_step_types", []):
                for kind in (*step.consumes, *([step.produces] if isinstance(step.produces, str) else [])):
                    if kind not in kinds:
                        raise PluginProblem(f"step type {step.name!r} names unknown credential kind "
                                            f"{kind!r}{_suggest(kind, kinds)}")
        except PluginProblem as exc:
            _drop(registry, name, str(exc))
            per_plugin.pop(name)
    registry.kinds = {k: v for k, v in kinds.items() if k in KINDS or any(
        v in found.get("gw_credential_kinds", []) for found in per_plugin.values())}
    owners: dict[str, list[StepType]] = {}
    for found in per_plugin.values():
        for step in found.get("gw_step_types", []):
            owners.setdefault(step.name, []).append(step)
        registry.schemes.extend(found.get("gw_secret_schemes", []))
        for table in found.get("gw_profile_tables", []):
            registry.tables.setdefault(table.name, table)
        for setting in found.get("gw_settings", []):
            if setting.name in registry.settings:
                print(f"gw: warning: settings.{setting.name} is declared by plugins "
                      f"{registry.settings[setting.name].plugin!r} and {setting.plugin!r}; "
                      f"the first is used", file=sys.stderr)
                continue
            registry.settings[setting.name] = setting
        registry.commands.extend(found.get("gw_commands", []))
        registry.environment.extend(found.get("gw_environment", []))
    for step_name, steps in owners.items():
        if len(steps) == 1:
            registry.step_types[step_name] = steps[0]
        else:
            registry.conflicts[step_name] = sorted(s.plugin for s in steps)
    registry.schemes.sort(key=lambda s: -len(s.prefix))


def _suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_options(options: Any, what: str) -> None:
    if not isinstance(options, dict):
        raise PluginProblem(f"{what}: options must be a dict of Option")
    for key, spec in options.items():
        if not isinstance(key, str) or not isinstance(spec, Option):
            raise PluginProblem(f"{what}: option {key!r} is not an Option")
        allowed = spec.type if isinstance(spec.type, tuple) else (spec.type,)
        if not all(isinstance(t, type) for t in allowed):
            raise PluginProblem(f"{what}: option {key!r} has a type that is not a type")
        if spec.default is not None and not spec.secret:  # a secret's default is a reference (``prompt``)
            try:  # a default is a value in the form a step gets it (a Duration's: seconds)
                broken = "type" if spec.validate(spec.default) != spec.default else ""
            except InvalidValue as exc:
                broken = exc.rule
            if broken == "choices":
                raise PluginProblem(f"{what}: option {key!r} has default {spec.default!r}, not one of its choices")
            if broken and spec.type is Duration:
                raise PluginProblem(f"{what}: option {key!r} has default {spec.default!r}, not seconds (int)")
            if broken:
                raise PluginProblem(f"{what}: option {key!r} has default {spec.default!r}, "
                                    f"not of its type {'/'.join(t.__name__ for t in allowed)}")
        names = (spec.account,) if isinstance(spec.account, str) else spec.account or ()
        unknown = [name for name in names if name not in options]
        if unknown:
            raise PluginProblem(f"{what}: option {key!r} names unknown option {unknown[0]!r} as its account")
        if spec.required and spec.default is not None:
            raise PluginProblem(f"{what}: option {key!r} is required and has a default")


def _check_step_type(item: Any, plugin: str) -> StepType:
    if not isinstance(item, StepType):
        raise PluginProblem(f"gw_step_types returned {type(item).__name__}, not StepType")
    if not isinstance(item.name, str) or not item.name:
        raise PluginProblem("a step type has no name")
    if not callable(item.run):
        raise PluginProblem(f"step type {item.name!r}: run is not callable")
    if not (isinstance(item.produces, str) or callable(item.produces)):
        raise PluginProblem(f"step type {item.name!r}: produces must be a kind name or a function")
    if not isinstance(item.consumes, tuple) or not all(isinstance(k, str) for k in item.consumes):
        raise PluginProblem(f"step type {item.name!r}: consumes must be a tuple of kind names")
    for hook in ("check", "advise", "unused"):
        if getattr(item, hook) is not None and not callable(getattr(item, hook)):
            raise PluginProblem(f"step type {item.name!r}: {hook} is not callable")
    _check_options(item.options, f"step type {item.name!r}")
    return item if item.plugin else replace(item, plugin=plugin)


def _check_scheme(item: Any, plugin: str) -> SecretScheme:
    if not isinstance(item, SecretScheme):
        raise PluginProblem(f"gw_secret_schemes returned {type(item).__name__}, not SecretScheme")
    if not isinstance(item.prefix, str) or not item.prefix or not callable(item.resolve):
        raise PluginProblem("a secret scheme needs a prefix and a resolve function")
    return item if item.plugin else replace(item, plugin=plugin)


def _check_command(item: Any, plugin: str) -> Command:
    if not isinstance(item, Command):
        raise PluginProblem(f"gw_commands returned {type(item).__name__}, not Command")
    if not isinstance(item.name, str) or not item.name or not callable(item.run) or not callable(item.configure):
        raise PluginProblem("a command needs a name, configure and run")
    if item.group is not None and item.group not in PLUGIN_GROUPS:
        raise PluginProblem(f"command {item.name!r}: group must be one of {', '.join(PLUGIN_GROUPS)} or None")
    return item if item.plugin else replace(item, plugin=plugin)


def _check_table(item: Any, plugin: str) -> ProfileTable:
    if not isinstance(item, ProfileTable):
        raise PluginProblem(f"gw_profile_tables returned {type(item).__name__}, not ProfileTable")
    if item.name in ("steps", "description", "region"):
        raise PluginProblem(f"profile table {item.name!r} clashes with a core profile key")
    _check_options(item.options, f"profile table {item.name!r}")
    return item if item.plugin else replace(item, plugin=plugin)


def _check_environment(item: Any, plugin: str) -> EnvironmentVariable:
    if not isinstance(item, EnvironmentVariable):
        raise PluginProblem(f"gw_environment returned {type(item).__name__}, not EnvironmentVariable")
    if not isinstance(item.name, str) or not re.fullmatch(r"[A-Z][A-Z0-9_]*", item.name) or not isinstance(item.help, str):
        raise PluginProblem(f"environment variable {item.name!r}: a NAME_IN_CAPITALS and a one-line help")
    return item if item.plugin else replace(item, plugin=plugin)


def _check_setting(item: Any, plugin: str) -> Setting:
    from .config import CORE_SETTINGS

    if not isinstance(item, Setting):
        raise PluginProblem(f"gw_settings returned {type(item).__name__}, not Setting")
    if not isinstance(item.name, str) or not item.name.isidentifier():
        raise PluginProblem(f"setting {item.name!r}: the name must be a TOML bare key of letters, digits and _")
    if item.name in CORE_SETTINGS:
        raise PluginProblem(f"setting {item.name!r} is one of gw's own settings")
    if not isinstance(item.option, Option) or item.option.secret or item.option.required:
        raise PluginProblem(f"setting {item.name!r}: option must be an Option (not secret, not required)")
    if item.top_level and (item.option.type is not dict or item.name in ("settings", "profiles")):
        raise PluginProblem(f"setting {item.name!r}: a top-level table needs type dict and a name of its own")
    _check_options({item.name: item.option}, f"setting {item.name!r}")
    return item if item.plugin else replace(item, plugin=plugin)


def _check_kind(item: Any, plugin: str) -> type[Credential]:
    if not (isinstance(item, type) and issubclass(item, Credential) and item.KIND):
        raise PluginProblem("gw_credential_kinds must return Credential subclasses with a KIND")
    return item
