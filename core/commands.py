"""The core's own subcommands. Plugins add more through the ``gw_commands`` hook."""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime

from .credentials import AWS
from .errors import ConfigError, GwError, UsageError

CORE_COMMANDS = {"credential-process", "token", "env", "exec", "profiles", "plugins", "check", "cache", "vault"}


def add_core_commands(sub):
    """Register the core commands; returns the command groups (``setup``, ``serve``) plugins add to."""
    import argparse

    p = sub.add_parser("credential-process", help="print AWS credentials for credential_process (JSON)")
    p.add_argument("--profile", required=True)
    p.set_defaults(handler=cmd_credential_process)

    p = sub.add_parser(
        "token", help="print the profile's bearer or OpenID token (raw, header or json)",
        description="Print the access token of a profile whose chain yields a bearer token (e.g. "
                    "cognito-m2m) or an OpenID token. A cache hit loads no plugin.",
        epilog='examples:\n  curl -H "$(gw token --profile api --format header)" https://api.example.com/items\n'
               "  gw token --profile api --format json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--profile", required=True)
    p.add_argument("--format", choices=("raw", "header", "json"), default="raw",
                   help="raw: the token; header: 'Authorization: Bearer ...'; json: token, type, expiry")
    p.set_defaults(handler=cmd_token)

    p = sub.add_parser("env", help="print the profile's credentials as environment variables")
    p.add_argument("--profile", required=True)
    p.add_argument("--format", choices=("sh", "fish", "powershell", "json"), default="sh")
    p.set_defaults(handler=cmd_env)

    p = sub.add_parser("exec", help="run a command with the profile's credentials in its environment")
    p.add_argument("--profile", required=True)
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD ...")
    p.set_defaults(handler=cmd_exec)

    p = sub.add_parser("profiles", help="list profiles: steps, output kind, cached until")
    p.set_defaults(handler=cmd_profiles)
    p = sub.add_parser("plugins", help="list loaded plugins and their step types")
    p.set_defaults(handler=cmd_plugins)
    p = sub.add_parser("check", help="validate the config and say exactly what is wrong and where")
    p.set_defaults(handler=cmd_check)

    cache = sub.add_parser("cache", help="inspect or clear cached credentials").add_subparsers(
        metavar="ACTION", dest="cache_action", required=True
    )
    p = cache.add_parser("list", help="cached entries and their expiry (no key needed)")
    p.set_defaults(handler=cmd_cache_list)
    p = cache.add_parser("clear", help="drop cached credentials (all, or one profile)")
    p.add_argument("--profile")
    p.set_defaults(handler=cmd_cache_clear)

    vault = sub.add_parser("vault", help="gw's local encrypted secret store").add_subparsers(
        metavar="ACTION", dest="vault_action", required=True
    )
    p = vault.add_parser("set", help="store a secret (read from the terminal, or stdin when piped)")
    p.add_argument("name")
    p.set_defaults(handler=cmd_vault_set)
    p = vault.add_parser("list", help="names of stored secrets")
    p.set_defaults(handler=cmd_vault_list)
    p = vault.add_parser("rm", help="remove a secret")
    p.add_argument("name")
    p.set_defaults(handler=cmd_vault_rm)

    setup = sub.add_parser("setup", help="wire gw into other tools' config files").add_subparsers(
        metavar="TARGET", dest="setup_action", required=True
    )
    serve = sub.add_parser("serve", help="run a local service (credentials endpoints, exchanges)").add_subparsers(
        metavar="SERVICE", dest="serve_action", required=True
    )
    return {"setup": setup, "serve": serve}


# -- credentials out ------------------------------------------------------------
def cmd_credential_process(ns, app) -> int:
    credential = app.resolve(ns.profile, require=AWS)
    app.emit(credential.credential_process_json())
    return 0


def cmd_token(ns, app) -> int:
    import json

    from .credentials import BearerToken, OpenIdToken, to_rfc3339

    credential = app.resolve(ns.profile)
    if isinstance(credential, BearerToken):
        token, token_type, scope = credential.access_token, credential.token_type or "Bearer", credential.scope
    elif isinstance(credential, OpenIdToken):
        token, token_type, scope = credential.token, "Bearer", None
    else:
        raise ConfigError(f"profile {ns.profile!r} yields {credential.KIND}, not a bearer or OpenID token")
    if ns.format == "raw":
        app.emit(token)
    elif ns.format == "header":
        app.emit(f"Authorization: Bearer {token}")
    else:
        doc: dict[str, object] = {"token": token, "token_type": token_type}
        if scope:
            doc["scope"] = scope
        expiration = getattr(credential, "expiration", None)
        if expiration is not None:
            doc["expiration"] = to_rfc3339(expiration)
        app.emit(json.dumps(doc))
    return 0


def cmd_env(ns, app) -> int:
    from .envvars import render

    credential = app.resolve(ns.profile)
    values = credential.env()
    if not values:
        raise ConfigError(f"profile {ns.profile!r} yields {credential.KIND}, which has no environment form")
    app.emit(render(values, ns.format))
    return 0


def cmd_exec(ns, app) -> int:
    from .envvars import child_environment

    command = ns.command[1:] if ns.command[:1] == ["--"] else ns.command
    if not command:
        raise UsageError("gw exec needs a command after --")
    credential = app.resolve(ns.profile)
    values = credential.env()
    if not values:
        raise ConfigError(f"profile {ns.profile!r} yields {credential.KIND}, which has no environment form")
    env = child_environment(dict(os.environ), values)
    env["GW_PROFILE"] = ns.profile
    sys.stdout.flush()
    try:
        os.execvpe(command[0], command, env)
    except FileNotFoundError:
        app.ui.error(f"command not found: {command[0]}")
        return 127
    except PermissionError:
        app.ui.error(f"permission denied: {command[0]}")
        return 126
    return 0  # pragma: no cover - exec does not return


# -- looking around ---------------------------------------------------------------
def _when(epoch: float) -> str:
    left = epoch - time.time()
    stamp = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    if left <= 0:
        return f"{stamp} (expired)"
    return f"{stamp} (in {int(left // 60)} min)"


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console(highlight=False, soft_wrap=True).print(table)


def cmd_profiles(ns, app) -> int:
    rows = []
    for profile in app.config.profiles.values():
        steps = " -> ".join(step["use"] for step in profile.steps)
        try:
            kind = app.output_kind(profile)
        except GwError:
            kind = "invalid (run gw check)"
        header = app.cache.header(profile.name)
        cached = "-"
        if header and header.digest == profile.digest and header.expires_at > time.time():
            cached = _when(header.expires_at)
        rows.append([profile.name, steps, kind, cached, _cached_prefixes(app, profile)])
    _table(f"profiles in {app.config.path}", ["profile", "steps", "output", "cached until", "shared steps cached"],
           rows)
    return 0


def _cached_prefixes(app, profile) -> str:
    """The profile's chain steps whose results are cached (and shared), e.g. ``session-token until ...``."""
    from .app import prefix_digests, prefix_entry

    found = []
    for index, digest in enumerate(prefix_digests(profile.steps)[:-1]):
        header = app.cache.header(prefix_entry(digest))
        if header and header.digest == digest and header.expires_at > time.time():
            found.append(f"{profile.steps[index].get('use', '?')} until {_when(header.expires_at)}")
    return "\n".join(found) or "-"


def cmd_plugins(ns, app) -> int:
    registry = app.registry
    rows = []
    for name in registry.plugin_names():
        steps = [s for s in registry.step_types.values() if s.plugin == name]
        schemes = [s.prefix for s in registry.schemes if s.plugin == name]
        commands = [f"gw {c}" for c, owner in registry.command_owners.items() if owner == name]
        described = [f"{s.name} ({', '.join(s.consumes) or 'source'} -> "
                     f"{s.produces if isinstance(s.produces, str) else 'depends on options'})" for s in steps]
        rows.append([name, "\n".join(described) or "-", ", ".join(schemes) or "-", "\n".join(commands) or "-"])
    for name, reason in registry.failed.items():
        rows.append([name, f"SKIPPED: {reason}", "-", "-"])
    for name in registry.disabled:
        rows.append([name, "disabled (GW_DISABLE_PLUGINS or settings.disable_plugins)", "-", "-"])
    _table("plugins", ["plugin", "step types (consumes -> produces)", "secret schemes", "commands"], rows)
    return 0


def cmd_check(ns, app) -> int:
    from .chain import check_profile
    from .secrets import vault_names

    config = app.config
    problems: list[str] = []
    vault: set[str] | None = None
    for profile in config.profiles.values():
        planned, found = check_profile(profile, app.registry, config.path)
        problems += found
        for index, (step, values) in enumerate(planned):
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
    if not config.profiles:
        problems.append(f"{config.path}: no profiles defined")
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        print(f"gw: {len(problems)} problem(s) in {config.path}", file=sys.stderr)
        return 2
    app.emit(f"{config.path}: {len(config.profiles)} profile(s), all valid")
    return 0


# -- the cache ------------------------------------------------------------------------
def _shared_steps(app) -> dict[str, tuple[str, list[str]]]:
    """Cache entry name of every chain prefix -> (its steps, the profiles sharing it)."""
    from .app import prefix_digests, prefix_entry

    shared: dict[str, tuple[str, list[str]]] = {}
    try:
        profiles = list(app.config.profiles.values())
    except GwError:
        return shared
    for profile in profiles:
        for index, digest in enumerate(prefix_digests(profile.steps)[:-1]):
            name = prefix_entry(digest)
            steps = " -> ".join(step.get("use", "?") for step in profile.steps[: index + 1])
            shared.setdefault(name, (steps, []))[1].append(profile.name)
    return shared


def cmd_cache_list(ns, app) -> int:
    from .app import PREFIX

    shared = _shared_steps(app)
    rows = []
    for name in app.cache.names():
        if name.startswith("_state."):
            continue
        header = app.cache.header(name)
        label = name
        if name.startswith(PREFIX):
            steps, users = shared.get(name, ("(no profile uses it now)", []))
            label = f"shared: {steps}" + (f" (profiles {', '.join(users)})" if users else "")
        if header is None:
            rows.append([label, "?", "-", "unreadable header"])
            continue
        state = "fresh" if header.fresh() else "due for refresh" if header.expires_at > time.time() else "expired"
        rows.append([label, header.kind, _when(header.expires_at), state])
    _table(f"cache in {app.cache.directory}", ["profile", "kind", "expires", "state"], rows)
    return 0


def cmd_cache_clear(ns, app) -> int:
    from .app import PREFIX, prefix_digests, prefix_entry

    names = [n for n in app.cache.names() if not n.startswith(("_state.", PREFIX))]
    prefixes = [n for n in app.cache.names() if n.startswith(PREFIX)]
    if ns.profile:
        names = [n for n in names if n == ns.profile]
        try:
            own = {prefix_entry(d) for d in prefix_digests(app.config.profile(ns.profile).steps)}
        except GwError:
            own = set()
        prefixes = [n for n in prefixes if n in own]
        if not names and not prefixes:
            app.ui.info(f"nothing cached for profile {ns.profile!r}")
    else:
        names += [n for n in app.cache.names() if n.startswith("_state.")]
    for name in prefixes:
        app.cache.remove(name)
    for name in names:
        if name.startswith("_state."):
            app.cache.remove(name)
            continue
        with app.profile_lock(name):  # not while a fetch or a re-stamp of this profile is writing
            _revoke_and_remove(app, name)
    cleared = len([n for n in names if not n.startswith("_state.")])
    extra = f" and {len(prefixes)} shared chain step(s)" if prefixes else ""
    app.emit(f"cleared {cleared} cached profile(s){extra}")
    return 0


def _revoke_and_remove(app, name: str) -> None:
    """Let plugins revoke a live cached credential upstream, then drop the entry."""
    import json

    from .credentials import credential_from_dict

    header = app.cache.header(name)
    if header and header.expires_at > time.time():
        try:
            loaded = app.cache.load(name, app.key())
            doc = json.loads(loaded[1].partition(b"\n")[2]) if loaded else None
            if doc:
                credential = credential_from_dict(doc["kind"], doc["data"])
                app.registry.hook.gw_cache_cleared(profile=name, credential=credential, context=app.context(name))
        except (ValueError, KeyError, GwError) as exc:
            app.ui.warn(f"could not revoke the cached credentials of {name!r}: {exc}")
    app.cache.remove(name)


# -- the vault ---------------------------------------------------------------------------
def cmd_vault_set(ns, app) -> int:
    if sys.stdin.isatty():
        from .prompt import ask

        value = ask(f"Value for {ns.name}: ", secret=True)
    else:
        value = sys.stdin.read().rstrip("\r\n")
    if not value:
        raise UsageError("refusing to store an empty secret")
    app.vault.set(ns.name, value)
    app.emit(f"stored {ns.name}")
    return 0


def cmd_vault_list(ns, app) -> int:
    for name in app.vault.names():
        app.emit(name)
    return 0


def cmd_vault_rm(ns, app) -> int:
    if not app.vault.remove(ns.name):
        raise UsageError(f"no secret named {ns.name!r} in the vault")
    app.emit(f"removed {ns.name}")
    return 0


