"""Checking a profile's chain against the plugins, and running it.

A chain fits when the first step is a source (consumes nothing) and each later
step consumes the kind the previous one produces. Options are checked against
each step type's :class:`gw.steps.Option` table before anything runs; secret
options are resolved just before their step runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import secrets
from .config import PROFILE_KEYS, Profile, Settings, suggest, type_name
from .credentials import Credential
from .errors import ConfigError, GwError, SecretError, StepError
from .steps import StepType
from .ui import UI


def check_options(step: StepType, options: dict[str, Any], schemes: list) -> tuple[dict[str, Any], list[str]]:
    """Validate a step's options; returns (options with defaults, problems)."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key, value in options.items():
        if key == "use":
            continue
        spec = step.options.get(key)
        if spec is None:
            problems.append(f"unknown option {key!r}{suggest(key, step.options)}")
            continue
        if spec.secret:
            try:
                secrets.check_reference(value, schemes)
            except ValueError as exc:
                problems.append(f"{key}: {exc}")
                continue
        elif _reference_in_plain_option(spec, value, schemes):
            try:
                secrets.check_reference(value, schemes)
            except ValueError as exc:
                problems.append(f"{key}: {exc}")
                continue
        else:
            try:
                value = spec.validate(value)
            except ValueError as exc:
                problems.append(f"{key} {exc}")
                continue
        values[key] = value
    for key, spec in step.options.items():
        if key not in values and key not in options:
            if spec.required:
                problems.append(f"missing required option {key!r}")
            else:
                values[key] = spec.default
    deferred = any(_reference_in_plain_option(spec, values.get(key), schemes)
                   for key, spec in step.options.items() if not spec.secret)
    if not problems and step.check is not None and not deferred:  # with references: checked when resolved
        try:
            step.check(values)
        except ValueError as exc:
            problems.append(str(exc))
    return values, problems


def _reference_in_plain_option(spec: Any, value: Any, schemes: list) -> bool:
    """A non-secret string option given as a reference (``operator_id = "env:OP"``).

    Every string option accepts the schemes whose prefix ends in ``:`` or ``/``
    (``vault:``, ``env:``, ``op://`` ...); a bare word such as ``prompt`` stays literal.
    """
    allowed = spec.type if isinstance(spec.type, tuple) else (spec.type,)
    if str not in allowed or not isinstance(value, str):
        return False
    scheme = secrets.find_scheme(value, schemes)
    return scheme is not None and scheme.prefix.endswith((":", "/"))


def check_profile(profile: Profile, registry, config_path: str) -> tuple[list[tuple[StepType, dict]], list[str]]:
    """(steps with their checked options, problems as ``path: where: message`` lines)."""
    problems: list[str] = []
    planned: list[tuple[StepType, dict]] = []
    previous_kind: str | None = None
    for index, raw in enumerate(profile.steps):
        where = f"{config_path}: {profile.where(index)}"
        step = registry.step_types.get(raw["use"])
        if step is None and raw["use"] in registry.conflicts:
            problems.append(f"{where}: step type {raw['use']!r} is offered by two plugins: "
                            f"{' and '.join(registry.conflicts[raw['use']])}; disable one (GW_DISABLE_PLUGINS)")
            previous_kind = None
            continue
        if step is None:
            hint = suggest(raw["use"], registry.step_types)
            if registry.failed:
                hint += f" (plugins skipped: {', '.join(sorted(registry.failed))})"
            if registry.disabled:
                hint += f" (plugins disabled: {', '.join(registry.disabled)})"
            problems.append(f"{where}: unknown step type {raw['use']!r}{hint}")
            previous_kind = None
            continue
        values, option_problems = check_options(step, raw, registry.schemes)
        problems.extend(f"{where}: {p}" for p in option_problems)
        if index == 0 and step.consumes and not step.may_start:
            problems.append(f"{where}: needs {' or '.join(step.consumes)} from a previous step, so it cannot come first")
        elif index > 0 and not step.consumes:
            problems.append(f"{where}: starts a chain (it takes no input), so it must be the first step")
        elif index > 0 and previous_kind is not None and previous_kind not in step.consumes:
            problems.append(
                f"{where}: takes {' or '.join(step.consumes)}, but step {index - 1} yields {previous_kind}"
            )
        try:
            previous_kind = step.output_kind(values) if not option_problems else None
        except Exception:
            previous_kind = None
        planned.append((step, values))
    for name, table in profile.tables.items():
        where = f"{config_path}: {profile.where()}.{name}"
        spec = registry.tables.get(name)
        if spec is None:
            what = "profile table" if isinstance(table, dict) else "profile option"
            problems.append(f"{where}: unknown {what}{suggest(name, [*PROFILE_KEYS, *registry.tables])}")
            continue
        if not isinstance(table, dict):  # a known table given as a value: login = "x"
            problems.append(f"{where}: must be a table ([{profile.where()}.{name}] or {name} = {{ ... }}), "
                            f"not {type_name(table)}")
            continue
        _, table_problems = check_table(spec, table, registry.schemes)
        problems.extend(f"{where}: {p}" for p in table_problems)
    return planned, problems


def check_settings(settings: Settings, registry: Any, config_path: str) -> tuple[dict[str, Any], list[str]]:
    """The ``[settings]`` keys plugins declared (``gw_settings``): (values with defaults, problems)."""
    from .config import CORE_SETTINGS

    values = {name: spec.option.default for name, spec in registry.settings.items()}
    problems: list[str] = []
    skipped = sorted(registry.failed) + list(registry.disabled)
    unloaded = f" (plugins skipped or disabled: {', '.join(skipped)})" if skipped else ""
    tables = [name for name, spec in registry.settings.items() if spec.top_level]
    for key, value in [*settings.plugin_values.items(), *settings.plugin_tables.items()]:
        top = key in settings.plugin_tables and settings.plugin_tables[key] is value
        where = f"{config_path}: {key}" if top else f"{config_path}: settings.{key}"
        spec = registry.settings.get(key)
        if spec is None or spec.top_level != top:
            if top:
                problems.append(f"{where}: unknown top-level table{suggest(key, ['settings', 'profiles', *tables])}"
                                + unloaded)
            elif spec is not None:
                problems.append(f"{where}: is a top-level table [{key}], not a key of [settings]")
            else:
                hint = suggest(key, [*CORE_SETTINGS, *(n for n in registry.settings if n not in tables)])
                problems.append(f"{where}: unknown setting{hint}{unloaded}")
            continue
        try:
            values[key] = spec.option.validate(value)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            values[key] = BrokenSetting(problems[-1])  # fails only what reads it (setting_value)
    return values, problems


@dataclass(frozen=True)
class BrokenSetting:
    """A declared setting whose configured value is wrong: reading it raises ``problem``."""

    problem: str


def unread_setting_problems(values: dict[str, Any], problems: list[str]) -> list[str]:
    """Those of ``check_settings``'s problems no command reads (unknown keys and tables):
    warned about when a profile runs, listed by ``gw check``, never a failure."""
    read = {v.problem for v in values.values() if isinstance(v, BrokenSetting)}
    return [p for p in problems if p not in read]


def setting_value(values: dict[str, Any], name: str) -> Any:
    """``values[name]``, or a one-line error when no loaded plugin declares ``settings.<name>``."""
    if name not in values:
        from .errors import ConfigError

        raise ConfigError(f"settings.{name} is declared by no loaded plugin (gw_settings)")
    if isinstance(values[name], BrokenSetting):
        from .errors import ConfigError

        raise ConfigError(values[name].problem)
    return values[name]


def _no_run(ctx: Any, options: dict[str, Any], upstream: Credential | None) -> Credential:
    raise AssertionError("a profile table is never run")


def check_table(spec: Any, table: dict[str, Any], schemes: list) -> tuple[dict[str, Any], list[str]]:
    """Validate a plugin-owned profile table like a step's options."""
    if not isinstance(table, dict):
        return {}, [f"must be a table, not {type_name(table)}"]
    shim = StepType(name=spec.name, run=_no_run, produces="", options=spec.options, check=spec.check)
    return check_options(shim, {k: v for k, v in table.items() if k != "use"}, schemes)


@dataclass
class ChainEnv:
    """The narrow set of core services a running chain needs (not the whole App)."""

    settings: Settings
    ui: UI
    registry: Any
    state_dir: str
    vault: Callable[[], Any]
    state: Any  # gw.app.StateStore: get/put/delete of plugin state entries
    pending_codes: list = field(default_factory=list)  # gw.totp.Reservation carried by a result to the next step
    plugin_settings: Callable[[], dict[str, Any]] = dict  # the [settings] keys plugins declared, checked


class ChainContext:
    """The :class:`gw.plugin.StepContext` the core hands to a running step."""

    def __init__(self, env: ChainEnv, profile: str, step_index: int = -1, step: StepType | None = None) -> None:
        self.env = env
        self.profile = profile
        self.step_index = step_index
        self.step_type = step.name if step else ""
        self.plugin = step.plugin if step else "core"
        self.state_dir = Path(env.state_dir)
        self.secret_label = "secret"
        self.code_account: str | None = None
        self.reservations: list = []  # one-time codes handed out during this step (gw.totp.Reservation)

    # -- environment --------------------------------------------------------
    @property
    def ca_bundle(self) -> str | None:
        return self.env.settings.ca_bundle

    @property
    def tls_verify(self) -> bool | str:
        return self.ca_bundle or True

    @property
    def schemes(self) -> list:
        return self.env.registry.schemes

    # -- output -----------------------------------------------------------
    def status(self, message: str) -> contextlib.AbstractContextManager[None]:
        return self.env.ui.status(message)

    def info(self, message: str) -> None:
        self.env.ui.info(message)

    def warn(self, message: str) -> None:
        self.env.ui.warn(message)

    # -- secrets ------------------------------------------------------------
    def add_secret(self, value: str | None) -> None:
        self.env.ui.scrubber.add(value)

    def resolve_secret(self, ref: Any, *, label: str = "secret") -> str:
        before = self.secret_label
        self.secret_label = label
        try:
            return secrets.resolve(ref, self, label, self.schemes)
        finally:
            self.secret_label = before

    def vault_get(self, name: str) -> str:
        return self.env.vault().get(name)

    def ask(self, label: str, secret: bool = True) -> str:
        from .prompt import ask

        settings = self.env.settings
        return ask(label, secret=secret, askpass=settings.askpass, timeout=settings.prompt_timeout)

    def one_time_code(self, account: str, produce: Callable[[float], str], *, period: int = 30,
                      label: str = "one-time code") -> str:
        from .totp import fresh_code

        def waiting(seconds: float) -> None:
            from .countdown import count_down

            count_down(self.env.ui, seconds, f"a fresh {label}", "the current one was already used")

        return fresh_code(
            self.code_account or account, produce, self.env.state_dir, period=period,
            lock_timeout=self.env.settings.lock_timeout, on_wait=waiting, reservations=self.reservations,
        )

    def lock(self, name: str, timeout: float | None = None) -> contextlib.AbstractContextManager[bool]:
        from .plugin import named_lock

        return named_lock(self.env.state_dir, f"{self.plugin}.{name}",
                          timeout=self.env.settings.lock_timeout if timeout is None else timeout,
                          what=f"{self.plugin} {name}")

    def call_hook(self, name: str, **kwargs: Any) -> list[Any]:
        if getattr(self.env.registry, "partial", False):  # a plugin's own hook: its implementers may be left out
            self.env.registry.complete()
        caller = getattr(self.env.registry.hook, name, None)  # each plugin guarded (gw.hooks)
        return [] if caller is None else caller(**kwargs)

    def setting(self, name: str) -> Any:
        return setting_value(self.env.plugin_settings(), name)

    # -- private state ------------------------------------------------------
    def state_get(self, name: str) -> dict[str, Any] | None:
        return self.env.state.get(self.plugin, name)

    def state_put(self, name: str, data: dict[str, Any], expires_at: float) -> None:
        self.env.state.put(self.plugin, name, data, expires_at)

    def state_delete(self, name: str) -> None:
        self.env.state.delete(self.plugin, name)

    # -- other steps ----------------------------------------------------------
    def find_step_type(self, name: str) -> StepType:
        return find_step_type(self.env.registry, name)

    def run_step(self, name: str, options: dict[str, Any], upstream: Credential | None) -> Credential:
        step = self.find_step_type(name)
        values, problems = check_options(step, options, self.schemes)
        if problems:
            raise ConfigError(f"{name}: {problems[0]}")
        return run_step(self.env, self.profile, self.step_index, step, values, upstream)


def find_step_type(registry: Any, name: str) -> StepType:
    if name not in registry.step_types and getattr(registry, "partial", False):
        registry.complete()  # a step that runs another (iot's bootstrap runs krypton): load the plugins left out
    try:
        return registry.step_types[name]
    except KeyError:
        if name in registry.conflicts:
            raise ConfigError(f"step type {name!r} is offered by two plugins: "
                              f"{' and '.join(registry.conflicts[name])}; disable one") from None
        raise ConfigError(f"step type {name!r} is not available (is its plugin installed?)") from None



def _settle_codes(env: ChainEnv, ctx: ChainContext, *, release: bool) -> None:
    """A step failed: release (or keep as used) every one-time code it held (see gw.totp)."""
    held = env.pending_codes + ctx.reservations
    env.pending_codes.clear()
    ctx.reservations.clear()
    if release:
        for reservation in held:
            reservation.release()


def _carry_codes(env: ChainEnv, ctx: ChainContext, result: Credential) -> None:
    """A step succeeded: codes its result still carries stay pending for the next step; the rest were used."""
    import json

    held = env.pending_codes + ctx.reservations
    ctx.reservations.clear()
    if not held:
        return
    try:
        carried = json.dumps(result.to_dict(), default=str)
    except Exception:  # noqa: BLE001 - a result that cannot be serialised carries nothing we can see
        carried = ""
    env.pending_codes[:] = [r for r in held if r.code and r.code in carried]


def _account(names: str | tuple[str, ...] | None, options: dict[str, Any]) -> str | None:
    """The account a one-time code is for: the (resolved) values of the named options, joined by ``/``."""
    if not names:
        return None
    values = [options.get(name) for name in ((names,) if isinstance(names, str) else names)]
    present = [value for value in values if isinstance(value, str) and value]
    return "/".join(present) or None


def _one_time_code(value: Any, where: str) -> str:
    """A one-time code (an option with an ``account``) as digits; anything else is refused here,
    before it is sent (a typo at a prompt, a password in ``env:``). Never shows the value."""
    code = "".join(value.split()) if isinstance(value, str) else ""
    if not (code.isascii() and code.isdigit() and 6 <= len(code) <= 10):
        raise SecretError(f"{where}: a one-time code is 6 to 10 digits, and this one is not; nothing was sent")
    return code


def run_step(
    env: ChainEnv, profile: str, index: int, step: StepType, values: dict[str, Any], upstream: Credential | None
) -> Credential:
    """Resolve a step's secret options and run it, turning surprises into clear errors."""
    ctx = ChainContext(env, profile, index, step)
    resolved = dict(values)
    referenced = False
    try:
        for key, spec in step.options.items():  # plain options given as references first ...
            if not spec.secret and _reference_in_plain_option(spec, resolved.get(key), ctx.schemes):
                scheme = secrets.find_scheme(resolved[key], ctx.schemes)
                assert scheme is not None
                ctx.secret_label = key.replace("_", " ")
                resolved[key] = scheme.resolve(ctx, resolved[key])
                referenced = True
        if referenced and step.check is not None:  # the rules a step checks, on the resolved values
            try:
                step.check(resolved)
            except ValueError as exc:
                raise ConfigError(f"profile {profile!r}, step {index} ({step.name}): {exc}") from None
        unused = set(step.unused(resolved)) if step.unused is not None else set()
        for key, spec in step.options.items():  # ... so a one-time code knows its (resolved) account
            if key in unused:
                resolved[key] = None  # the step ignores it: no prompt, no one-time code spent
            elif spec.secret and resolved.get(key) is not None:
                account = _account(spec.account, resolved)
                ctx.code_account = f"account:{account}" if account else None
                try:
                    resolved[key] = ctx.resolve_secret(resolved[key], label=key.replace("_", " "))
                finally:
                    ctx.code_account = None
                if spec.account is not None:
                    resolved[key] = _one_time_code(resolved[key], f"profile {profile!r}, step {index} ({step.name}): {key}")
    except BaseException:
        _settle_codes(env, ctx, release=True)  # the step never ran: no code was sent
        raise
    try:
        result = step.run(ctx, resolved, upstream)
    except BaseException as exc:
        # never reached its upstream: the codes it held are unused; otherwise they are spent
        from .totp import never_sent  # a failure only: a run that succeeds never needs gw.totp

        _settle_codes(env, ctx, release=never_sent(exc))
        if isinstance(exc, (GwError, KeyboardInterrupt)) or not isinstance(exc, Exception):
            raise
        raise StepError(f"profile {profile!r}, step {index} ({step.name}) failed: {type(exc).__name__}: {exc}") from exc
    expected = step.output_kind(values)
    if not isinstance(result, Credential) or result.KIND != expected:
        raise StepError(f"step type {step.name!r} (plugin {step.plugin}) returned something other than {expected}")
    for value in result.secrets():
        ctx.add_secret(value)
    _carry_codes(env, ctx, result)
    return result
