"""The core's own subcommands. Plugins add more through the ``gw_commands`` hook."""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime

from .cli_options import freshness_options, profile_option
from .credentials import AWS
from .errors import ConfigError, GwError, UsageError
from .fastpath import CORE_WORDS

# Commands that need no plugin loaded to build their parser (``completion`` needs them all).
CORE_COMMANDS = {"credential-process", "token", "env", "exec", "profiles", "plugins", "check", "cache", "vault",
                 "init", "config"}
#: every name the core's parser takes (a plugin command of one of these names is skipped); one list with the
#: words the fast path never serves
CORE_NAMES = CORE_WORDS

#: exit statuses (also in ``gw --help`` and the README)
EXIT_CODES = (
    (0, "success"),
    (1, "a step, secret, lock or upstream failed (one line on stderr says why)"),
    (2, "usage or config error"),
    (3, "gw check found problems"),
    (70, "internal error (a bug; GW_DEBUG=1 shows the traceback)"),
    (126, "gw exec: the command cannot be run"),
    (127, "gw exec: command not found"),
    (130, "cancelled (Ctrl-C, or a prompt was dismissed)"),
)
CHECK_PROBLEMS = 3
def _parser(sub, name: str, help: str, description: str, examples: str, formatter):
    return sub.add_parser(name, help=help, description=description, epilog="examples:\n" + examples,
                          formatter_class=formatter)


def add_core_commands(sub):
    """Register the core commands; returns the command groups (``setup``, ``serve``, ``import``) plugins add to."""
    import argparse

    fmt = argparse.RawDescriptionHelpFormatter
    p = _parser(sub, "credential-process", "print AWS credentials for credential_process (JSON)",
                "Print the profile's AWS credentials as the JSON that credential_process expects (with "
                "AccountId when known). A cache hit answers without loading any plugin.",
                "  credential_process = /usr/local/bin/gw credential-process --profile admin\n"
                "  gw credential-process --profile admin --min-ttl 30m", fmt)
    profile_option(p)
    freshness_options(p)
    p.set_defaults(handler=cmd_credential_process)

    p = _parser(sub, "token", "print the profile's bearer or OpenID token (raw, header or json)",
                "Print the access token of a profile whose chain yields a bearer token (e.g. "
                "cognito-m2m) or an OpenID token. A cache hit loads no plugin.",
                '  curl -H "$(gw token --profile api --format header)" https://api.example.com/items\n'
                "  gw token --profile api --format json", fmt)
    profile_option(p)
    p.add_argument("--format", choices=("raw", "header", "json"), default="raw",
                   help="raw: the token; header: 'Authorization: Bearer ...'; json: token, type, expiry")
    freshness_options(p)
    p.set_defaults(handler=cmd_token)

    p = _parser(sub, "env", "print the profile's credentials as environment variables",
                "Print shell code that exports the profile's credentials (and unsets conflicting "
                "variables). AWS_REGION comes from --region, then the profile's region, then your "
                "environment, then the region a step used.",
                '  eval "$(gw env --profile admin)"\n  gw env --profile admin --format fish | source\n'
                "  gw env --profile admin --format json --region eu-west-1", fmt)
    profile_option(p)
    p.add_argument("--format", choices=("sh", "fish", "powershell", "json"), default="sh")
    p.add_argument("--region", help="AWS_REGION for the credentials (wins over the profile and the environment)")
    freshness_options(p)
    p.set_defaults(handler=cmd_env)

    p = _parser(sub, "exec", "run a command with the profile's credentials in its environment",
                "Run a command with the profile's credentials; without a command, your $SHELL "
                "(GW_EXEC_PROFILE names the profile inside it). With --server the command gets no keys: "
                "it reads them from a local ECS credentials endpoint (127.0.0.1, random port and token) "
                "that lives as long as the command and refreshes through gw's cache, so long jobs "
                "outlive their first credentials.",
                "  gw exec --profile admin -- aws s3 ls\n"
                "  gw exec --profile admin\n"
                "  gw exec --server --profile deploy -- terraform apply\n"
                "  gw exec --profile admin --region eu-west-1 -- aws ec2 describe-instances", fmt)
    profile_option(p)
    p.add_argument("--server", action="store_true",
                   help="serve the credentials through an ECS endpoint instead of static keys")
    p.add_argument("--region", help="AWS_REGION for the command (wins over the profile and the environment)")
    freshness_options(p)
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD ...")
    p.set_defaults(handler=cmd_exec)

    p = _parser(sub, "profiles", "list profiles: steps, output kind, cached until",
                "List the profiles in the config with their steps, what they yield, until when "
                "their cached credentials are good, and how many of their steps have a cached result "
                "(long-term keys are never cached). On a pipe: one tab-separated row per profile.", "  gw profiles\n  gw profiles --json | jq -r '.[].name'", fmt)
    p.add_argument("--json", action="store_true", help="JSON instead of a table")
    p.set_defaults(handler=cmd_profiles)
    p = _parser(sub, "plugins", "list loaded plugins and their step types",
                "List the plugins gw loaded: their step types, secret schemes and commands, and any that "
                "were skipped or disabled.", "  gw plugins\n  gw plugins --json", fmt)
    p.add_argument("--json", action="store_true", help="JSON instead of a table")
    p.set_defaults(handler=cmd_plugins)
    p = _parser(sub, "check", "validate the config and say exactly what is wrong and where",
                f"Check every profile, step option and vault reference; print one line per problem. "
                f"Exit status {CHECK_PROBLEMS} when problems are found.",
                "  gw check\n  gw check --json | jq -r '.problems[]'\n  gw check --live\n"
                "  gw check --live --profile admin", fmt)
    p.add_argument("--json", action="store_true", help="JSON result on stdout")
    p.add_argument("--live", action="store_true",
                   help="get each profile's credentials for real (cached or fetched) and show a ✓/✗ table: "
                        "where they came from, time taken, expiry, the first error")
    p.add_argument("--profile", help="with --live: only this profile")
    p.set_defaults(handler=cmd_check)

    cache = _parser(sub, "cache", "inspect or clear cached credentials",
                    "Inspect or clear gw's encrypted credential cache.",
                    "  gw cache list\n  gw cache clear --profile admin", fmt).add_subparsers(
        metavar="ACTION", dest="cache_action", required=True
    )
    p = _parser(cache, "list", "cached entries and their expiry (no key needed)",
                "List cached entries, their kind and expiry (reads only the plaintext headers).",
                "  gw cache list\n  gw cache list --json", fmt)
    p.add_argument("--json", action="store_true", help="JSON instead of a table")
    p.set_defaults(handler=cmd_cache_list)
    p = _parser(cache, "clear", "drop cached credentials (all, or one profile)",
                "Drop cached credentials (all, or one profile's); plugins may revoke them upstream first.",
                "  gw cache clear\n  gw cache clear --profile admin", fmt)
    p.add_argument("--profile")
    p.set_defaults(handler=cmd_cache_clear)

    vault = _parser(sub, "vault", "gw's local encrypted secret store",
                    "gw's local encrypted secret store; steps read it with vault:NAME references.",
                    "  gw vault set aws-secret\n  gw vault list", fmt).add_subparsers(
        metavar="ACTION", dest="vault_action", required=True
    )
    p = _parser(vault, "set", "store a secret (read from the terminal, or stdin when piped)",
                "Store a secret under NAME, asked on the terminal (or read from stdin when piped).",
                "  gw vault set aws-secret\n  pass show aws/secret | gw vault set aws-secret", fmt)
    p.add_argument("name")
    p.set_defaults(handler=cmd_vault_set)
    p = _parser(vault, "list", "names of stored secrets", "Print the names (never the values) of stored secrets.",
                "  gw vault list", fmt)
    p.set_defaults(handler=cmd_vault_list)
    p = _parser(vault, "rm", "remove a secret", "Remove the secret NAME from the vault.", "  gw vault rm old-key", fmt)
    p.add_argument("name")
    p.set_defaults(handler=cmd_vault_rm)

    _add_first_hour(sub, fmt)
    p = _parser(sub, "completion", "print a shell completion script (bash, zsh, fish)",
                "Print a static completion script for gw's commands and options; profile names are "
                "read from the config file by a small shell function (no Python per TAB).",
                "  gw completion bash > ~/.local/share/bash-completion/completions/gw\n"
                "  gw completion zsh > \"${fpath[1]}/_gw\"\n"
                "  gw completion fish > ~/.config/fish/completions/gw.fish", fmt)
    p.add_argument("shell", choices=("bash", "zsh", "fish"))
    p.set_defaults(handler=cmd_completion, wants_parser=True)

    setup = _parser(sub, "setup", "wire gw into other tools' config files",
                    "Write the lines that make other tools run gw (e.g. credential_process).",
                    "  gw setup aws --profile admin", fmt).add_subparsers(
        metavar="TARGET", dest="setup_action", required=True
    )
    imports = _parser(sub, "import", "move credentials another tool keeps in plaintext into gw",
                      "Move long-term credentials that another tool keeps in a plaintext file into gw's "
                      "encrypted vault, and write the gw profile that uses them.",
                      "  gw import aws --aws-profile work", fmt).add_subparsers(
        metavar="SOURCE", dest="import_action", required=True
    )
    serve_parser = _parser(sub, "serve", "run a local service (credentials endpoints, exchanges)",
                           "Run a local service that hands out a profile's credentials.",
                           "  gw serve ecs --profile deploy", fmt)
    serve = serve_parser.add_subparsers(metavar="SERVICE", dest="serve_action", required=True)
    p = _parser(serve, "ecs", "an ECS container-credentials endpoint for a profile",
                "Serve the profile's credentials as an ECS container-credentials endpoint until "
                "stopped (Ctrl-C). Prints AWS_CONTAINER_CREDENTIALS_FULL_URI and the authorization "
                "token (KEY=VALUE lines, usable as docker --env-file). Listens on 127.0.0.1 unless "
                "--listen says otherwise; SDKs accept plain HTTP only for loopback addresses.",
                "  gw serve ecs --profile deploy > ecs.env\n"
                "  docker run --network host --env-file ecs.env amazon/aws-cli sts get-caller-identity\n"
                "  gw serve ecs --profile deploy --listen 127.0.0.1:9911 --token-file ~/.gw-ecs-token", fmt)
    profile_option(p)
    p.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT",
                   help="address to listen on (default 127.0.0.1 and a free port)")
    p.add_argument("--token-file", metavar="PATH",
                   help="write the token to PATH (0600) and print AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE instead")
    freshness_options(p)
    p.set_defaults(handler=cmd_serve_ecs)
    return {"setup": setup, "serve": serve, "import": imports}


def _add_first_hour(sub, fmt) -> None:
    """``gw init`` and ``gw config example`` (gw.wizard)."""
    from .wizard import print_example

    p = _parser(sub, "init", "add a first profile by answering questions (secrets go to the vault)",
                "Ask what the credential is (AWS access keys, a SORACOM AuthKey or SAM user, a 1Password "
                "item), ask for its values on the terminal (secrets without echo), store the secrets in "
                "gw's vault, add a commented profile to the config (created 0600 when missing; an existing "
                "profile is never replaced) and run gw check.",
                "  gw init\n  gw init --profile work", fmt)
    p.add_argument("--profile", help="name of the new profile (asked when not given)")
    p.set_defaults(handler=cmd_init)
    config = _parser(sub, "config", "about the config file", "About gw's config file.",
                     "  gw config example > ~/.config/gw/config.toml", fmt).add_subparsers(
        metavar="ACTION", dest="config_action", required=True)
    p = _parser(config, "example", "print the commented example config (every step and option)",
                "Print the commented example config that ships with gw: every step type and option.",
                "  gw config example | less\n  gw config example > ~/.config/gw/config.toml", fmt)
    p.set_defaults(handler=print_example)


def cmd_init(ns, app) -> int:
    """The first-profile wizard (gw.wizard), then gw check on the config it wrote."""
    from .app import App
    from .wizard import run

    path, name = run(ns, app)
    ns.json, ns.live, ns.profile = False, False, None
    status = cmd_check(ns, App(config_path=path))
    if status == 0:
        app.emit(f"try it: gw check --live --profile {name}")
    return status


# -- credentials out ------------------------------------------------------------
def _resolve(ns, app, require: str | None = None):
    return app.resolve(ns.profile, require=require, refresh=getattr(ns, "refresh", False),
                       min_ttl=getattr(ns, "min_ttl", 0) or 0)


def cmd_credential_process(ns, app) -> int:
    credential = _resolve(ns, app, require=AWS)
    app.emit(credential.credential_process_json())
    return 0


def cmd_token(ns, app) -> int:
    import json

    from .credentials import BearerToken, OpenIdToken, to_rfc3339

    credential = _resolve(ns, app)
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


def region_values(ns, app, values: dict[str, str], environ: dict[str, str]) -> dict[str, str]:
    """``values`` with AWS_REGION / AWS_DEFAULT_REGION by precedence: ``--region``, the
    profile's ``region``, the caller's environment (left alone), the region a step used."""
    learned = values.pop("AWS_REGION", None)
    values.pop("AWS_DEFAULT_REGION", None)
    if "AWS_ACCESS_KEY_ID" not in values and "AWS_CONTAINER_CREDENTIALS_FULL_URI" not in values:
        return values  # not AWS credentials
    region = getattr(ns, "region", None) or app.config.profile(ns.profile).region
    if region is None and (environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")):
        return values
    region = region or learned
    if region:
        values["AWS_REGION"] = values["AWS_DEFAULT_REGION"] = region
    return values


def cmd_env(ns, app) -> int:
    from .envvars import render

    credential = _resolve(ns, app)
    values = credential.env()
    if not values:
        raise ConfigError(f"profile {ns.profile!r} yields {credential.KIND}, which has no environment form")
    app.emit(render(region_values(ns, app, values, dict(os.environ)), ns.format))
    return 0


def _command(ns, app) -> list[str]:
    from .exec_shell import command_or_shell

    command = ns.command[1:] if ns.command[:1] == ["--"] else ns.command
    return command_or_shell(command, ns.profile, app.ui, dict(os.environ))


def cmd_exec(ns, app) -> int:
    from .envvars import child_environment
    from .exec_shell import mark

    command = _command(ns, app)
    if ns.server:
        return exec_with_server(ns, app, command)
    credential = _resolve(ns, app)
    values = credential.env()
    if not values:
        raise ConfigError(f"profile {ns.profile!r} yields {credential.KIND}, which has no environment form")
    env = child_environment(dict(os.environ), region_values(ns, app, values, dict(os.environ)))
    mark(env, ns.profile)
    sys.stdout.flush()
    from .fastpath import restore_signals

    restore_signals()
    try:
        os.execvpe(command[0], command, env)
    except FileNotFoundError:
        app.ui.error(f"command not found: {command[0]}")
        return 127
    except PermissionError:
        app.ui.error(f"permission denied: {command[0]}")
        return 126
    return 0  # pragma: no cover - exec does not return


# -- the ECS credentials endpoint -------------------------------------------------
def _ecs_server(ns, app, host: str = "127.0.0.1", port: int = 0):
    """Check the profile once (fetching if needed) and make the endpoint serving it."""
    from .ecs_server import DEFAULT_MIN_TTL, EcsServer

    min_ttl = ns.min_ttl or DEFAULT_MIN_TTL
    credential = app.resolve(ns.profile, require=AWS, refresh=ns.refresh, min_ttl=min_ttl)
    if not credential.session_token or credential.expiration is None:
        raise ConfigError(f"profile {ns.profile!r} yields long-term keys; the ECS endpoint serves only temporary "
                          "credentials (end the chain with session-token or assume-role)")

    def provide():
        return app.resolve(ns.profile, require=AWS, min_ttl=min_ttl)

    return EcsServer(provide, host, port, scrub=app.ui.scrubber.scrub,
                     on_error=lambda message: app.ui.error(f"ECS endpoint: {message}"))


def exec_with_server(ns, app, command: list[str]) -> int:
    """``gw exec --server``: the child reads credentials from an endpoint that lives as long as it."""
    import signal
    import subprocess
    import threading

    from .envvars import child_environment
    from .exec_shell import mark

    server = _ecs_server(ns, app)
    app.ui.scrubber.add(server.token)
    values = region_values(ns, app, server.environment(), dict(os.environ))
    env = child_environment(dict(os.environ), values)
    mark(env, ns.profile)
    sys.stdout.flush()
    # Handlers go in before the child exists, so a signal can never find gw unprepared;
    # the child starts with default dispositions (exec resets caught signals).
    children: list[subprocess.Popen] = []
    pending: list[int] = []

    def forward(number: int, frame: object) -> None:
        if children:
            children[0].send_signal(number)
        else:
            pending.append(number)

    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, forward)
    # Ctrl-C reaches the child from the terminal itself; gw keeps serving until the child ends.
    signal.signal(signal.SIGINT, lambda number, frame: None)
    try:
        child = subprocess.Popen(command, env=env)
    except FileNotFoundError:
        app.ui.error(f"command not found: {command[0]}")
        return 127
    except PermissionError:
        app.ui.error(f"permission denied: {command[0]}")
        return 126
    children.append(child)
    for number in pending:
        child.send_signal(number)
    done = threading.Event()

    def watch_child() -> None:
        child.wait()
        done.set()

    threading.Thread(target=watch_child, daemon=True).start()
    server.serve_until(done)
    status = child.wait()
    return 128 - status if status < 0 else status


def cmd_serve_ecs(ns, app) -> int:
    import signal

    from .ecs_server import exposure_warning, parse_listen
    from .paths import atomic_write

    host, port = parse_listen(ns.listen)
    server = _ecs_server(ns, app, host, port)
    app.ui.scrubber.add(server.token)
    if warning := exposure_warning(ns.profile, host, server.port):
        app.ui.warn(warning)
    lines = [f"AWS_CONTAINER_CREDENTIALS_FULL_URI={server.url}"]
    if ns.token_file:
        path = os.path.abspath(os.path.expanduser(ns.token_file))
        atomic_write(path, server.token.encode(), 0o600)
        lines.append(f"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE={path}")
    else:
        lines.append(f"AWS_CONTAINER_AUTHORIZATION_TOKEN={server.token}")
    sys.stdout.write("\n".join(lines) + "\n")  # the token is this command's output, like a credential
    sys.stdout.flush()
    app.ui.info(f"serving profile {ns.profile!r} at {server.url}; Ctrl-C stops")
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda number, frame: server.stop())
    server.serve_until()
    return 0


# -- looking around ---------------------------------------------------------------
def _when(epoch: float) -> str:
    left = epoch - time.time()
    stamp = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    if left <= 0:
        return f"{stamp} (expired)"
    return f"{stamp} (in {int(left // 60)} min)"


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    """A table on a terminal; plain tab-separated lines (no box drawing) on a pipe or file."""
    if not sys.stdout.isatty():
        print("\t".join(columns))
        for row in rows:
            print("\t".join(cell.replace("\n", "; ") for cell in row))
        sys.stdout.flush()
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console(highlight=False, soft_wrap=True).print(table)


def _json(app, doc) -> None:
    import json

    app.emit(json.dumps(doc, indent=2))


def _iso(epoch: float | None) -> str | None:
    from .profiles_view import iso

    return iso(epoch)


def cmd_profiles(ns, app) -> int:
    from .profiles_view import profile_rows, show

    docs = profile_rows(app)
    if ns.json:
        _json(app, [{k: v for k, v in doc.items() if not k.startswith("_")} for doc in docs])
        return 0
    show(app, docs)
    return 0


def cmd_plugins(ns, app) -> int:
    registry = app.registry
    rows, docs = [], []
    for name in registry.plugin_names():
        steps = [s for s in registry.step_types.values() if s.plugin == name]
        schemes = [s.prefix for s in registry.schemes if s.plugin == name]
        offered = [c for c in registry.commands if c.plugin == name]
        commands = [f"gw {c.full_name}" for c in offered if c.group or c.name not in CORE_NAMES]
        skipped = [f"gw {c.full_name} (SKIPPED: a core command of that name exists)" for c in offered
                   if not c.group and c.name in CORE_NAMES]
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
        _json(app, docs)
        return 0
    _table("plugins", ["plugin", "step types (consumes -> produces)", "secret schemes", "commands"], rows)
    return 0


def cmd_check(ns, app) -> int:
    if getattr(ns, "live", False):
        from .live_check import run

        return run(ns, app)
    if getattr(ns, "profile", None):
        raise UsageError("--profile goes with --live (gw check always checks the whole config)")
    advice: list[str] = []
    try:
        problems, config = _check_problems(app, advice), app.config
    except ConfigError as exc:  # the file itself cannot be read or parsed
        problems, config = [str(exc)], None
    path = app.config_file if config is None else config.path
    if ns.json:
        _json(app, {"config": path, "ok": not problems, "problems": problems, "warnings": advice,
                    "profiles": len(config.profiles) if config else 0})
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


def _check_problems(app, advice: list[str] | None = None) -> list[str]:
    """Every problem of the config, one line each; ``advice`` gets the steps' warnings (``StepType.advise``)."""
    from .chain import check_profile, check_settings
    from .secrets import vault_names

    config = app.config
    problems: list[str] = check_settings(config.settings, app.registry, config.path)[1]
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
    if not config.profiles:
        problems.append(f"{config.path}: no profiles defined")
    return problems


# -- the cache ------------------------------------------------------------------------
def _shared_steps(app) -> dict[str, tuple[str, list[str]]]:
    """Cache entry name of every chain prefix -> (its steps, the profiles sharing it)."""
    from .store import prefix_digests, prefix_name

    shared: dict[str, tuple[str, list[str]]] = {}
    try:
        profiles = list(app.config.profiles.values())
    except GwError:
        return shared
    for profile in profiles:
        for index, digest in enumerate(prefix_digests(profile.steps)[:-1]):
            name = prefix_name(digest)
            steps = " -> ".join(step.get("use", "?") for step in profile.steps[: index + 1])
            shared.setdefault(name, (steps, []))[1].append(profile.name)
    return shared


def cmd_cache_list(ns, app) -> int:
    store = app.store
    shared = _shared_steps(app)
    rows, docs = [], []
    for name in store.names():
        kind = store.kind_of(name)
        if kind == "state":
            continue
        header = store.header(name)
        label = name
        if kind == "prefix":
            steps, users = shared.get(name, ("(no profile uses it now)", []))
            label = f"shared: {steps}" + (f" (profiles {', '.join(users)})" if users else "")
        doc: dict[str, object] = {"name": name}
        if kind == "prefix":
            doc.update(shared_steps=steps, profiles=users)
        if header is None:
            rows.append([label, "?", "-", "unreadable header"])
            docs.append({**doc, "kind": None, "expires": None, "state": "unreadable"})
            continue
        state = "fresh" if header.fresh() else "due for refresh" if header.expires_at > time.time() else "expired"
        rows.append([label, header.kind, _when(header.expires_at), state])
        docs.append({**doc, "kind": header.kind, "expires": _iso(header.expires_at), "state": state})
    if ns.json:
        _json(app, docs)
        return 0
    _table(f"cache in {store.directory}", ["profile", "kind", "expires", "state"], rows)
    return 0


def cmd_cache_clear(ns, app) -> int:
    from .store import prefix_digests, prefix_name

    store = app.store
    names = store.names("profile")
    prefixes = store.names("prefix")
    states: list[str] = []
    if ns.profile:
        names = [n for n in names if n == ns.profile]
        try:
            own = {prefix_name(d) for d in prefix_digests(app.config.profile(ns.profile).steps)}
        except GwError:
            own = set()
        prefixes = [n for n in prefixes if n in own]
        if not names and not prefixes and not store.legacy_files(ns.profile):
            app.ui.info(f"nothing cached for profile {ns.profile!r}")
    else:
        states = store.names("state")
    for name in prefixes:
        store.remove(name)
    for name in names:
        with app.profile_lock(name):  # not while a fetch or a re-stamp of this profile is writing
            _revoke_and_remove(app, name)  # before the plugin state a revocation may need
    for name in states:
        store.remove(name)
    store.remove_recipes(ns.profile)
    legacy = store.remove_legacy(ns.profile)
    extra = f" and {len(prefixes)} shared chain step(s)" if prefixes else ""
    extra += f" and {legacy} entr{'y' if legacy == 1 else 'ies'} of an older gw" if legacy else ""
    app.emit(f"cleared {len(names)} cached profile(s){extra}")
    return 0


def _revoke_and_remove(app, name: str) -> None:
    """Let plugins revoke a live cached credential upstream, then drop the entry."""
    import json

    from .credentials import credential_from_dict

    header = app.store.header(name)
    if header and header.expires_at > time.time():
        try:
            loaded = app.store.load(name, app.key())
            doc = json.loads(loaded[1].partition(b"\n")[2]) if loaded else None
            if doc:
                credential = credential_from_dict(doc["kind"], doc["data"])
                app.registry.hook.gw_cache_cleared(profile=name, credential=credential, context=app.context(name))
        except (ValueError, KeyError, GwError) as exc:
            app.ui.warn(f"could not revoke the cached credentials of {name!r}: {exc}")
    app.store.remove(name)


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




# -- shell completion --------------------------------------------------------------------
# Profile names come from the config file through a small shell function: no Python start
# per TAB. The config is $GW_CONFIG or $XDG_CONFIG_HOME/gw/config.toml (~/.config/gw/config.toml).
_PROFILES_SH = r"""
_gw_config_file() {
  if [ -n "$GW_CONFIG" ]; then echo "$GW_CONFIG"; else echo "${XDG_CONFIG_HOME:-$HOME/.config}/gw/config.toml"; fi
}
_gw_profiles() {
  local cfg; cfg="$(_gw_config_file)"
  [ -r "$cfg" ] || return 0
  sed -n 's/^[[:space:]]*\[profiles\.\([A-Za-z0-9][A-Za-z0-9_.@-]*\)\][[:space:]]*\(#.*\)\{0,1\}$/\1/p; s/^[[:space:]]*\[profiles\."\([A-Za-z0-9][A-Za-z0-9_.@-]*\)"\][[:space:]]*\(#.*\)\{0,1\}$/\1/p' "$cfg" | sort -u
}
"""
_PROFILES_BASH = _PROFILES_SH + r"""
_gw_compgen_profiles() {
  compgen -W "$(_gw_profiles)" -- "$1"
}
"""
_PROFILES_ZSH = _PROFILES_SH + r"""
_gw_zsh_profiles() {
  local -a names; names=(${(f)"$(_gw_profiles)"}); compadd -a names
}
"""
# Fish shows a description beside each candidate: "name<TAB>the profile's description".
_PROFILES_FISH = r"""
function __gw_profiles
  set -l cfg $GW_CONFIG
  if test -z "$cfg"
    set -q XDG_CONFIG_HOME; and set cfg $XDG_CONFIG_HOME/gw/config.toml; or set cfg $HOME/.config/gw/config.toml
  end
  test -r $cfg; or return 0
  awk '
    function flush() { if (name != "") print name "\t" desc; name = ""; desc = "" }
    /^[ \t]*\[/ {
      flush(); line = $0
      if (sub(/^[ \t]*\[profiles\./, "", line) && sub(/\][ \t]*(#.*)?$/, "", line)) {
        if (line ~ /^"[A-Za-z0-9][A-Za-z0-9_.@-]*"$/) line = substr(line, 2, length(line) - 2)
        if (line ~ /^[A-Za-z0-9][A-Za-z0-9_.@-]*$/) name = line
      }
      next
    }
    name != "" && /^[ \t]*description[ \t]*=[ \t]*"/ {
      d = $0; sub(/^[^"]*"/, "", d); sub(/"[ \t]*(#.*)?$/, "", d); gsub(/\\\\"/, "\"", d); desc = d
    }
    END { flush() }
  ' $cfg | sort -u
end
"""
PROFILE_COMPLETION = {"bash": "_gw_compgen_profiles", "zsh": "_gw_zsh_profiles", "fish": "(__gw_profiles)"}
PREAMBLES = {"bash": _PROFILES_BASH, "zsh": _PROFILES_ZSH, "fish": _PROFILES_FISH}


def _mark_profile_options(parser) -> None:
    """Give every ``--profile`` option (in every subcommand) the profile-name completer."""
    import argparse

    for action in parser._actions:
        if "--profile" in action.option_strings:
            action.complete = PROFILE_COMPLETION
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _mark_profile_options(sub)


def cmd_completion(ns, app) -> int:
    """The whole command line (plugins' commands included: ``ns.parser``, set by gw.cli) as a script."""
    import shtab

    parser = ns.parser
    _mark_profile_options(parser)
    app.emit(shtab.complete(parser, shell=ns.shell, preamble=PREAMBLES[ns.shell]))
    return 0
