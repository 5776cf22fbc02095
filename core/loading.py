"""Loading plugins, checking them, and collecting what they contribute.

Every plugin - built-in or third-party - is a module in the ``gw`` entry-point
group. Each is checked as it loads: it must import, implement only known hooks
(a misspelled ``gw_secret_scheme`` is caught), and return well-formed
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
from .credentials import KINDS, Credential
from .steps import Command, Duration, EnvironmentVariable, Option, ProfileTable, SecretScheme, Setting, StepType

ENTRY_POINT_GROUP = "gw"
PROVIDES_GROUP = "gw.provides"
COMMAND_GROUPS = (None, "setup", "serve", "import")


class PluginProblem(Exception):
    """A plugin broke a rule of the plugin API (one line, naming what)."""


@dataclass
class Registry:
    """Everything the loaded plugins offer, by name."""

    pm: Any
    step_types: dict[str, StepType] = field(default_factory=dict)
    schemes: list[SecretScheme] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
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
        """pluggy's hook relay."""
        return self.pm.hook

    def plugin_names(self) -> list[str]:
        return sorted(name for name, plugin in self.pm.list_name_plugin() if name and plugin is not None)

    def call(self, hook: str, **kwargs: Any) -> list[Any]:
        """Call ``hook`` on every plugin; a plugin raising is named in a warning, not fatal."""
        results = []
        caller = getattr(self.pm.hook, hook)
        for impl in reversed(caller.get_hookimpls()):
            try:
                value = impl.function(**{k: kwargs[k] for k in impl.argnames if k in kwargs})
            except Exception as exc:  # a plugin's bug must not end the command
                print(f"gw: warning: plugin {_name(self.pm, impl.plugin)!r} failed in {hook} "
                      f"({type(exc).__name__})", file=sys.stderr)
                continue
            if value is not None:
                results.append(value)
        return results


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


def _lazy_plugins(entry_points: Any) -> dict[str, set[str]]:
    """Plugin module -> what it provides (``step:NAME``, ``scheme:PREFIX``), from ``gw.provides``."""
    provides: dict[str, set[str]] = {}
    for ep in entry_points(PROVIDES_GROUP):
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

    from .entrypoints import entry_points as group_entry_points

    pm = pluggy.PluginManager("gw")
    pm.add_hookspecs(hookspecs)
    registry = Registry(pm=pm, disabled=disabled_plugins(disabled))
    from . import builtin_schemes

    pm.register(builtin_schemes, name="core")
    entry_points = group_entry_points(ENTRY_POINT_GROUP)
    lazy = _lazy_plugins(group_entry_points) if needs is not None else {}
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
            module = ep.load()
            pm.register(module, name=ep.name)
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
            module = importlib.import_module(module_name)
            if not pm.is_registered(module):
                pm.register(module, name=module_name)
        except Exception as exc:
            _fail(registry, module_name, f"cannot be loaded: {_describe(exc)}")
    for plugin in extra_plugins:
        try:
            pm.register(plugin)
        except Exception as exc:
            _fail(registry, getattr(plugin, "__name__", "?"), _describe(exc))
    for name, plugin in list(pm.list_name_plugin()):
        if hasattr(plugin, "gw_add_hookspecs"):
            try:
                plugin.gw_add_hookspecs(pluginmanager=pm)
            except Exception as exc:
                _drop(registry, name, plugin, f"gw_add_hookspecs failed: {_describe(exc)}")
    for name, plugin in list(pm.list_name_plugin()):
        problem = _unknown_hook(pm, plugin)
        if problem:
            _drop(registry, name, plugin, problem)
    _collect(registry)
    if registry.deferred and registry.failed:  # e.g. a kind of a plugin left out: load all, warn once
        return load_registry(extra_plugins, disabled)
    for name, reason in registry.failed.items():
        print(f"gw: warning: plugin {name!r} skipped: {reason}", file=sys.stderr)
    if registry.deferred:
        registry.reload = lambda: load_registry(extra_plugins, disabled)
    return registry


def _name(pm: Any, plugin: object) -> str:
    return pm.get_name(plugin) or getattr(plugin, "__name__", "?")


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def _fail(registry: Registry, name: str, reason: str) -> None:
    registry.failed.setdefault(name, reason)


def _drop(registry: Registry, name: str, plugin: object, reason: str) -> None:
    _fail(registry, name, reason)
    try:
        registry.pm.unregister(plugin)
    except ValueError:
        pass


def _unknown_hook(pm: Any, plugin: object) -> str | None:
    """A problem line when ``plugin`` implements a hook nobody specified (a typo)."""
    known = [n for n in dir(pm.hook) if n.startswith("gw_") and getattr(pm.hook, n).has_spec()]
    for attr in dir(plugin):
        if not attr.startswith("gw_") or not callable(getattr(plugin, attr, None)):
            continue
        caller = getattr(pm.hook, attr, None)
        options = getattr(getattr(plugin, attr), "gw_impl", None) or {}
        if options.get("optionalhook"):  # a hook of a plugin that may be absent (or disabled)
            continue
        if caller is None or not caller.has_spec():
            close = difflib.get_close_matches(attr, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            return f"implements unknown hook {attr}{hint}"
    return None


# -- collecting and checking contributions ---------------------------------------------
def _collect(registry: Registry) -> None:
    pm = registry.pm
    per_plugin: dict[str, dict[str, list[Any]]] = {}
    collectors = {
        "gw_credential_kinds": _check_kind,
        "gw_step_types": _check_step_type,
        "gw_secret_schemes": _check_scheme,
        "gw_commands": _check_command,
        "gw_profile_tables": _check_table,
        "gw_settings": _check_setting,
        "gw_environment": _check_environment,
    }
    for name, plugin in list(pm.list_name_plugin()):
        if plugin is None:
            continue
        found: dict[str, list[Any]] = {}
        try:
            for hook, check in collectors.items():
                function = getattr(plugin, hook, None)
                if function is None:
                    continue
                try:
                    result = function()
                except Exception as exc:
                    raise PluginProblem(f"{hook} raised {_describe(exc)}") from None
                if result is None:
                    result = []
                if not isinstance(result, (list, tuple)):
                    raise PluginProblem(f"{hook} must return a list, not {type(result).__name__}")
                found[hook] = [check(item, name) for item in result]
        except PluginProblem as exc:
            _drop(registry, name, plugin, str(exc))
            continue
        per_plugin[name] = found
    # kinds first: step types are checked against them
    kinds: dict[str, type[Credential]] = dict(KINDS)
    for name, found in per_plugin.items():
        for cls in found.get("gw_credential_kinds", []):
            if cls.KIND in kinds and kinds[cls.KIND] is not cls:
                _drop(registry, name, pm.get_plugin(name), f"credential kind {cls.KIND!r} exists already")
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
            _drop(registry, name, pm.get_plugin(name), str(exc))
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
        if spec.default is not None:
            if spec.secret:  # a secret's default is a reference (``prompt``), not a value of its type
                pass
            elif spec.type is Duration:
                if isinstance(spec.default, bool) or not isinstance(spec.default, int):
                    raise PluginProblem(f"{what}: option {key!r} has default {spec.default!r}, not seconds (int)")
            elif (isinstance(spec.default, bool) and bool not in allowed) or not isinstance(spec.default, allowed):
                raise PluginProblem(f"{what}: option {key!r} has default {spec.default!r}, "
                                    f"not of its type {'/'.join(t.__name__ for t in allowed)}")
            if spec.choices is not None and spec.default not in spec.choices:
                raise PluginProblem(f"{what}: option {key!r} has default {spec.default!r}, not one of its choices")
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
    if item.group not in COMMAND_GROUPS:
        raise PluginProblem(f"command {item.name!r}: group must be one of setup, serve, import or None")
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
    from .config import SETTING_TYPES

    if not isinstance(item, Setting):
        raise PluginProblem(f"gw_settings returned {type(item).__name__}, not Setting")
    if not isinstance(item.name, str) or not item.name.isidentifier():
        raise PluginProblem(f"setting {item.name!r}: the name must be a TOML bare key of letters, digits and _")
    if item.name in SETTING_TYPES:
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
