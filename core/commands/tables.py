"""``gw profiles``, ``gw plugins`` and ``gw check``: what the config and the plugins hold, as
tables (tab-separated on a pipe) or JSON; ``gw check --live`` is :mod:`gw.live_check`."""

from __future__ import annotations

import sys
from typing import Any

from ..cli_options import profile_option
from ..errors import CHECK_PROBLEMS, ConfigError, GwError, UsageError
from . import CORE, WORDS
from .base import command, emit_json, json_option, table


# -- gw profiles ---------------------------------------------------------------------------
def profiles(ns: Any, app: Any) -> int:
    from ..profiles_view import profile_rows, show

    docs = profile_rows(app)
    if ns.json:
        emit_json(app, [{k: v for k, v in doc.items() if not k.startswith("_")} for doc in docs])
        return 0
    show(app, docs)
    return 0


# -- gw plugins ----------------------------------------------------------------------------
def _skipped(command: Any) -> bool:
    """A plugin's top-level command named like one of the core's (the core's wins)."""
    return not command.group and command.name in WORDS and command.plugin != CORE


def plugins(ns: Any, app: Any) -> int:
    registry = app.registry
    rows, docs = [], []
    for name in registry.plugin_names():
        steps = [s for s in registry.step_types.values() if s.plugin == name]
        schemes = [s.prefix for s in registry.schemes if s.plugin == name]
        offered = [c for c in registry.commands if c.plugin == name]
        commands = [f"gw {c.full_name}" for c in offered if not _skipped(c)]
        skipped = [f"gw {c.full_name} (SKIPPED: a core command of that name exists)" for c in offered if _skipped(c)]
        described = [f"{s.name} ({'source or ' if s.may_start else ''}{', '.join(s.consumes) or 'source'} -> "
                     f"{s.produces if isinstance(s.produces, str) else 'depends on options'})" for s in steps]
        rows.append([name, "\n".join(described) or "-", ", ".join(schemes) or "-", "\n".join(commands + skipped) or "-"])
        docs.append({"name": name, "state": "loaded", "commands": commands, "skipped_commands": skipped,
                     "secret_schemes": schemes,
                     "step_types": [{"name": s.name, "consumes": list(s.consumes),
                                     "produces": s.produces if isinstance(s.produces, str) else None}
                                    for s in steps]})
    for name, reason in registry.failed.items():
        rows.append([name, f"SKIPPED: {reason}", "-", "-"])
        docs.append({"name": name, "state": "failed", "reason": reason})
    for name in registry.disabled:
        rows.append([name, "disabled (GW_DISABLE_PLUGINS or settings.disable_plugins)", "-", "-"])
        docs.append({"name": name, "state": "disabled"})
    if ns.json:
        emit_json(app, docs)
        return 0
    table("plugins", ["plugin", "step types (consumes -> produces)", "secret schemes", "commands"], rows)
    return 0


# -- gw check ------------------------------------------------------------------------------
def configure_check(parser: Any) -> None:
    json_option(parser, "JSON result on stdout")
    parser.add_argument("--live", action="store_true",
                        help="get each profile's credentials for real (cached or fetched) and show a ✓/✗ table: "
                             "where they came from, time taken, expiry, the first error")
    profile_option(parser, "with --live: only this profile", required=False)


def check(ns: Any, app: Any) -> int:
    if getattr(ns, "live", False):
        from ..live_check import run

        return run(ns, app)
    if getattr(ns, "profile", None):
        raise UsageError("--profile goes with --live (gw check always checks the whole config)")
    advice: list[str] = []
    try:
        problems, config = check_problems(app, advice), app.config
    except ConfigError as exc:  # the file itself cannot be read or parsed
        problems, config = [str(exc)], None
    path = app.config_file if config is None else config.path
    if ns.json:
        emit_json(app, {"config": path, "ok": not problems, "problems": problems, "warnings": advice,
                        "profiles": len(config.profiles) + len(config.broken) if config else 0})
        return CHECK_PROBLEMS if problems else 0
    for line in advice:
        app.ui.warn(line)
    for line in problems:
        print(line, file=sys.stderr)
    if problems and config is not None:
        print(f"gw: {len(problems)} problem(s) in {config.path}", file=sys.stderr)
    if problems:
        return CHECK_PROBLEMS
    assert config is not None
    app.emit(f"{config.path}: {len(config.profiles)} profile(s), all valid")
    return 0


def check_problems(app: Any, advice: list[str] | None = None) -> list[str]:
    """Every problem of the config, one line each; ``advice`` gets the steps' warnings (``StepType.advise``)."""
    from ..chain import check_profile, check_settings
    from ..secrets import vault_names

    config = app.config
    problems: list[str] = [*config.all_problems(), *check_settings(config.settings, app.registry, config.path)[1]]
    vault: set[str] | None = None
    for profile in config.profiles.values():
        planned, found = check_profile(profile, app.registry, config.path)
        problems += found
        for index, (step, values) in enumerate(planned):
            if step.advise is not None and advice is not None and not found:
                try:
                    advice += [f"{config.path}: {profile.where(index)}: {line}" for line in step.advise(values)]
                except Exception as exc:  # a plugin's bug must not hide the real problems
                    advice.append(f"{config.path}: {profile.where(index)}: advice of plugin {step.plugin!r} failed "
                                  f"({type(exc).__name__})")
            for key, spec in step.options.items():
                names = vault_names(values.get(key), app.registry.schemes) if spec.secret else []
                if names and vault is None:
                    try:
                        vault = set(app.vault.names())
                    except GwError as exc:
                        problems.append(f"vault: {exc}")
                        vault = set()
                for name in names:
                    if name not in vault:  # type: ignore[operator]
                        problems.append(
                            f"{config.path}: {profile.where(index)}: {key}: no secret {name!r} in the vault "
                            f"(add it with: gw vault set {name})"
                        )
                if spec.secret and vault:
                    problems += _seed_problems(app, values.get(key), vault, f"{config.path}: {profile.where(index)}: {key}")
    if not config.profiles and not config.broken:
        problems.append(f"{config.path}: no profiles defined")
    return problems


def _seed_problems(app: Any, ref: Any, vault: set[str], where: str) -> list[str]:
    """A TOTP seed in the vault that cannot make codes, named by its entry (never shown)."""
    from ..builtin_schemes import totp_refs, totp_seed_ref
    from ..totp import parse_seed

    problems = []
    for totp in totp_refs(ref):
        seed_ref = totp_seed_ref(totp)
        if isinstance(seed_ref, str) and seed_ref.startswith("vault:") and seed_ref[6:] in vault:
            try:
                parse_seed(app.vault.get(seed_ref[6:]))
            except GwError as exc:
                problems.append(f"{where}: {seed_ref}: {exc}")
    return problems


COMMANDS = [
    command("profiles", "list profiles: steps, output kind, cached until",
            "List the profiles in the config with their steps, what they yield, until when "
            "their cached credentials are good, and how many of their steps have a cached result "
            "(long-term keys are never cached). On a pipe: one tab-separated row per profile.",
            "  gw profiles\n  gw profiles --json | jq -r '.[].name'", json_option, profiles),
    command("plugins", "list loaded plugins and their step types",
            "List the plugins gw loaded: their step types, secret schemes and commands, and any that "
            "were skipped or disabled.", "  gw plugins\n  gw plugins --json", json_option, plugins),
    command("check", "validate the config and say exactly what is wrong and where",
            f"Check every profile, step option and vault reference; print one line per problem. "
            f"Exit status {CHECK_PROBLEMS} when problems are found.",
            "  gw check\n  gw check --json | jq -r '.problems[]'\n  gw check --live\n"
            "  gw check --live --profile admin", configure_check, check),
]
