"""Commands: ``gw soracom`` (run soracom-cli with the cached session), ``gw soracom-profile``
(stdout of a soracom-cli ``profileCommand``), ``gw soracom-token`` and ``gw setup soracom``."""

from __future__ import annotations

import argparse
import json
import os
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gw.plugin import (
    SORACOM_CREDENTIALS,
    SORACOM_SESSION,
    Command,
    ConfigError,
    StepError,
    UsageError,
    freshness_options,
    profile_option,
)

from . import api
from .profile_command import profile_command, soracom_profile_name_problem

if TYPE_CHECKING:
    from gw.plugin import CommandContext, Credential, SoracomCredentials

CLI_ENV = "GW_SORACOM_CLI"
ADD_AUTH_STEP = 'add { use = "soracom-auth" } as its last step'
def _resolve_session(args: Any, ctx: CommandContext) -> Credential:
    """The profile's SORACOM session, honouring ``--refresh`` and ``--min-ttl``."""
    return ctx.resolve(args.profile, require=SORACOM_SESSION, refresh=bool(getattr(args, "refresh", False)),
                       min_ttl=getattr(args, "min_ttl", 0) or 0)


# -- gw soracom ---------------------------------------------------------------------------
def soracom_cli(ctx: CommandContext, profile: str) -> str:
    """soracom-cli as chosen: ``$GW_SORACOM_CLI``, else the profile's soracom-auth ``cli`` option,
    else ``settings.soracom_cli``, else ``soracom`` (a name without a slash is looked up on PATH).
    Refused when it is not found."""
    import shutil

    chosen = os.environ.get(CLI_ENV)
    origin = CLI_ENV
    if not chosen:
        chosen = ctx.step_options(profile, "soracom-auth").get("cli")
        origin = "the soracom-auth option cli"
    if not chosen:
        chosen, origin = ctx.setting("soracom_cli"), "settings.soracom_cli"
    if not chosen:
        chosen, origin = "soracom", "PATH"
    found = shutil.which(chosen) if os.sep not in chosen else (chosen if os.access(chosen, os.X_OK) else None)
    if not found:
        raise UsageError(f"soracom-cli not found: {chosen!r} (from {origin}); install it, or set {CLI_ENV}, "
                         "settings.soracom_cli or the soracom-auth option cli to its path")
    return chosen


def _needs_session(ctx: CommandContext, profile: str, command: str) -> None:
    kind = ctx.output_kind(profile)
    if kind == SORACOM_SESSION:
        return
    if kind == SORACOM_CREDENTIALS:
        raise UsageError(f"profile {profile!r} ends in soracom-credentials; {command} needs a SORACOM API "
                         f"session: {ADD_AUTH_STEP}")
    raise UsageError(f"profile {profile!r} yields {kind}; {command} needs a chain ending in soracom-auth")


RUNNER = "gw_plugins.soracom.runner:run"


def _soracom_run(args: Any, ctx: CommandContext) -> int:
    """soracom-cli behind this user's forwarder daemon (runner.py, daemon.py, forwarder.py): neither
    the key nor the token is in any argv or environment. A session the API refuses on soracom-cli's first request
    (nothing ran yet) is dropped and soracom-cli runs once more after a fresh sign-in."""
    import time

    from gw.plugin import SoracomSession

    argv = list(args.args)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    _needs_session(ctx, args.profile, "gw soracom")
    program = soracom_cli(ctx, args.profile)
    started = time.time()
    session = _resolve_session(args, ctx)
    for attempt in (1, 2):
        if not isinstance(session, SoracomSession):  # pragma: no cover - require= guarantees it
            raise StepError(f"profile {args.profile!r} did not yield a SORACOM session")
        if not api.normalise_endpoint(session.endpoint).lower().startswith("https://"):
            raise UsageError(f"profile {args.profile!r}: gw soracom forwards only to an https endpoint, "
                             f"not {api.normalise_endpoint(session.endpoint)!r}")
        status = ctx.run_with(args.profile, session, RUNNER, program, argv, depends_on=(CLI_ENV,),
                              options={"verify": ctx.tls_verify, "runtime_dir": str(ctx.state_dir / "run")})
        if status is not None:
            return status
        # Refused before soracom-cli's first request ran (the runner stopped it): run_with dropped the session.
        # Fresh: signed in during this call. Sessions are stamped to the second, so one issued in the
        # very second this call started counts as fresh too: its refusal is then reported, not retried.
        fresh = session.issued_at is not None and session.issued_at.timestamp() >= int(started)
        if attempt == 2 or fresh:
            break
        session = ctx.resolve(args.profile, require=SORACOM_SESSION, refresh=True)
    raise StepError(f"SORACOM refused a freshly signed-in session of profile {args.profile!r} (HTTP 401 / AUM0004); "
                    "soracom-cli was stopped before its request ran")


# -- gw soracom-profile -----------------------------------------------------------------------
def profile_document(cred: SoracomCredentials) -> dict[str, Any]:
    """The soracom-cli profile JSON a ``profileCommand`` prints (protocols.md section 3).

    The ``/v1/auth`` fields, except that the profile spells the SAM user name
    ``username``. No ``coverageType``: soracom-cli takes it from the profile file.
    """
    doc = api.auth_body(cred)
    if "userName" in doc:
        doc["username"] = doc.pop("userName")
    return doc


def _soracom_profile_run(args: Any, ctx: CommandContext) -> int:
    from gw.plugin import SoracomCredentials

    cred = ctx.resolve(args.profile, require=SORACOM_CREDENTIALS)
    if not isinstance(cred, SoracomCredentials):
        raise UsageError(f"profile {args.profile!r} does not produce SORACOM credentials")
    ctx.emit(json.dumps(profile_document(cred)))
    return 0


# -- gw soracom-token -------------------------------------------------------------------------
def _soracom_token_run(args: Any, ctx: CommandContext) -> int:
    import shlex

    from gw.plugin import SoracomSession, to_rfc3339

    cred = _resolve_session(args, ctx)
    if not isinstance(cred, SoracomSession):
        raise UsageError(f"profile {args.profile!r} does not produce a SORACOM session (end it with soracom-auth)")
    if args.format == "env":
        ctx.emit(
            f"export SORACOM_API_KEY={shlex.quote(cred.api_key)}\nexport SORACOM_TOKEN={shlex.quote(cred.token)}"
        )
    elif args.format == "args":
        ctx.emit(f"--api-key {shlex.quote(cred.api_key)} --api-token {shlex.quote(cred.token)}")
    else:
        doc: dict[str, Any] = {"apiKey": cred.api_key, "token": cred.token, "operatorId": cred.operator_id}
        if cred.user_name:
            doc["userName"] = cred.user_name
        doc["endpoint"] = cred.endpoint
        if cred.expiration is not None:
            doc["expiration"] = to_rfc3339(cred.expiration)
        ctx.emit(json.dumps(doc))
    return 0


# -- gw setup soracom ---------------------------------------------------------------------------
def _profile_dir() -> Path:
    env = os.environ.get("SORACOM_PROFILE_DIR")
    return Path(env) if env else Path.home() / ".soracom"


def _write_private_json(path: Path, doc: dict[str, Any]) -> None:
    from gw.plugin import atomic_write

    atomic_write(str(path), (json.dumps(doc, indent=2) + "\n").encode(), 0o600)


def _first_step_option(ctx: CommandContext, profile: str, name: str) -> Any:
    try:
        for step in ctx.profile(profile).steps:
            if isinstance(step, dict) and name in step:
                return step[name]
    except ConfigError:
        pass
    return None


def _session_profiles_for(ctx: CommandContext, profile: str) -> list[str]:
    """Profiles ending in soracom-auth whose first step is the same as ``profile``'s."""
    try:
        first = ctx.profile(profile).steps[0]
    except (ConfigError, IndexError):
        return []
    found = []
    for name in ctx.profile_names():
        try:
            if ctx.profile(name).steps[:1] == (first,) and ctx.output_kind(name) == SORACOM_SESSION:
                found.append(name)
        except (ConfigError, IndexError):
            continue
    return found


def _gw_soracom_lines(gw: str, profile: str) -> list[str]:
    alias = "sora" if profile == "default" else f"sora-{profile}"
    return [
        (
            "for instant soracom-cli calls (one sign-in per session, no one-time code per call): "
            f"{gw} soracom --profile {profile} -- subscribers list"
        ),
        f"shell alias: alias {alias}='{gw} soracom --profile {profile} --'",
        "(soracom-cli gets placeholders; gw serves the real key and token to it on 127.0.0.1, never in an argv)",
    ]


def _setup_run(args: Any, ctx: CommandContext) -> int:
    import shlex

    profile = args.profile
    kind = ctx.output_kind(profile)
    gw = shlex.quote(ctx.gw_executable())
    if kind == SORACOM_SESSION:
        # No profile file to write: soracom-cli takes this session through gw soracom.
        ctx.emit("\n".join(_gw_soracom_lines(gw, shlex.quote(profile))))
        return 0
    if kind != SORACOM_CREDENTIALS:
        raise UsageError(
            f"profile {profile!r} ends in {kind}; soracom-cli needs a profile ending in soracom-credentials "
            "(or soracom-auth, for gw soracom)"
        )
    name = args.soracom_profile or profile
    problem = soracom_profile_name_problem(
        name, origin="SORACOM profile name" if args.soracom_profile else "gw profile name (the default SORACOM profile name)"
    )
    if problem:
        raise UsageError(problem)
    coverage = args.coverage or _first_step_option(ctx, profile, "coverage") or "jp"
    if coverage not in ("jp", "g"):
        coverage = "jp"
    command = profile_command(ctx.gw_executable(), profile)

    directory = _profile_dir()
    if not directory.exists():
        from gw.plugin import private_dir

        private_dir(str(directory))  # every missing level 0700 (pathlib's parents=True would make them 0755)
    if directory.stat().st_mode & 0o077:
        directory.chmod(0o700)
    path = directory / f"{name}.json"
    if path.exists() and not args.force:
        try:
            existing = json.loads(path.read_text())
        except (OSError, ValueError):
            existing = None
        if not (isinstance(existing, dict) and "soracom-profile" in str(existing.get("profileCommand", ""))):
            raise UsageError(f"{path} exists and was not written by gw; use --force to replace it")
    doc: dict[str, Any] = {"coverageType": coverage, "profileCommand": command}
    if args.endpoint:
        doc["endpoint"] = api.normalise_endpoint(args.endpoint)
    if args.sandbox:
        doc["sandbox"] = True
        doc.setdefault("endpoint", api.SANDBOX_ENDPOINTS[coverage])
    _write_private_json(path, doc)
    lines = [f"wrote {path}", f"use it with: soracom --profile {name} subscribers list"]
    sessions = _session_profiles_for(ctx, profile)
    if sessions:
        lines += _gw_soracom_lines(gw, shlex.quote(sessions[0]))
    else:
        lines.append("with MFA every soracom-cli call signs in and takes a fresh one-time code; for instant calls "
                     "make a profile with the same credentials ending in soracom-auth and use gw soracom "
                     "(gw setup soracom --profile THAT-PROFILE shows how)")
    ctx.emit("\n".join(lines))
    return 0


# -- argument parsers --------------------------------------------------------------------------
def _configure_soracom(parser: Any) -> None:
    profile_option(parser, "gw profile whose chain ends in soracom-auth")
    freshness_options(parser)
    parser.add_argument("args", nargs=argparse.REMAINDER, metavar="-- ARGS",
                        help="soracom-cli arguments, passed through untouched")


def _configure_profile(parser: Any) -> None:
    profile_option(parser, "gw profile whose chain ends in soracom-credentials")
    # Accepted (and ignored) for profile files written by older gw versions.
    parser.add_argument("--coverage", choices=("jp", "g"), help=argparse.SUPPRESS)


def _configure_token(parser: Any) -> None:
    profile_option(parser, "gw profile whose chain ends in soracom-auth")
    parser.add_argument("--format", choices=("json", "env", "args"), default="json",
                        help="json (default); args: --api-key K --api-token T; env: for scripts calling the API")
    freshness_options(parser)


def _configure_setup(parser: Any) -> None:
    profile_option(parser, "gw profile ending in soracom-credentials (or soracom-auth: shows gw soracom)")
    parser.add_argument("--soracom-profile", dest="soracom_profile",
                        help="soracom-cli profile name: ASCII letters, digits, single hyphens (default: the gw profile)")
    parser.add_argument("--coverage", choices=("jp", "g"), help="coverageType (default: from the gw profile, else jp)")
    parser.add_argument("--endpoint", help="write an endpoint into the soracom-cli profile (a trailing /v1 is dropped)")
    parser.add_argument("--sandbox", action="store_true", help="a sandbox profile (sandbox API endpoint)")
    parser.add_argument("--force", action="store_true", help="replace a profile file gw did not write")


def commands() -> list[Command]:
    """The SORACOM commands."""
    return [
        Command(
            "soracom",
            "run soracom-cli with the profile's cached SORACOM API session",
            _configure_soracom,
            _soracom_run,
            description=textwrap.fill(
                "Run soracom-cli with the profile's cached SORACOM API session (a chain ending in "
                "soracom-auth). One sign-in (and one MFA code) per session, however many calls. The key and "
                "token never appear in an argv or environment: soracom-cli gets per-call placeholders and "
                "SORACOM_ENDPOINT pointing at a forwarder gw serves on 127.0.0.1 for your own user only, "
                "which puts the real ones in and forwards over verified TLS. A logout drops the cached "
                "session; a refused one is dropped and the call runs again once after a fresh sign-in. "
                f"soracom-cli is ${CLI_ENV}, else the soracom-auth option cli, else soracom on PATH.",
                width=88,
            ),
            epilog="examples:\n  gw soracom --profile sora -- subscribers list\n"
                   "  gw soracom --profile sora -- operator get\n"
                   "  gw soracom --profile sora --min-ttl 10m -- sims list   (sign in again if under 10 min left)\n"
                   "  alias sora='gw soracom --profile sora --'",
        ),
        Command(
            "soracom-profile",
            "print a soracom-cli profile (JSON) with fresh credentials, for profileCommand",
            _configure_profile,
            _soracom_profile_run,
            description=textwrap.fill(
                "Print the JSON soracom-cli reads from a profile's profileCommand: the long-term credentials "
                "of a chain ending in soracom-credentials (AuthKey, root or SAM user) with a fresh one-time "
                "code when the account has MFA. Nothing is cached, so every call signs soracom-cli in anew; "
                "gw soracom avoids that. gw setup soracom writes the profile file that runs it.",
                width=88,
            ),
            epilog="examples:\n  gw soracom-profile --profile sora-keys   (written by gw setup soracom)\n"
                   "  soracom --profile work subscribers list   (with profileCommand = gw soracom-profile ...)",
        ),
        Command(
            "soracom-token",
            "print a SORACOM API key and token (json, args, or env for scripts)",
            _configure_token,
            _soracom_token_run,
            description=textwrap.fill(
                "Print the API key and token of the profile's SORACOM API session (a chain ending in "
                "soracom-auth), from gw's cache while fresh. json also gives the operator, endpoint and "
                "expiry; args gives soracom-cli's --api-key/--api-token; env exports variables for scripts "
                "that call the API (soracom-cli reads none: use gw soracom for it). --refresh signs in now; "
                "--min-ttl signs in again when the cached session has less than that left.",
                width=88,
            ),
            epilog="examples:\n  gw soracom-token --profile sora\n  gw soracom-token --profile sora --format args\n"
                   "  gw soracom-token --profile sora --min-ttl 30m --format env\n"
                   "  gw soracom-token --profile sora --refresh",
        ),
        Command(
            "soracom",
            "write a soracom-cli profile that runs gw soracom-profile (and show gw soracom)",
            _configure_setup,
            _setup_run,
            group="setup",
            description=textwrap.fill(
                "For a profile ending in soracom-credentials, write ~/.soracom/NAME.json (or under "
                "$SORACOM_PROFILE_DIR; missing directories are created 0700, the file 0600) whose "
                "profileCommand runs gw soracom-profile, so soracom-cli signs in with fresh credentials. "
                "For a profile ending in soracom-auth, write nothing and show the gw soracom line and a "
                "shell alias, which sign in once per session.",
                width=88,
            ),
            epilog="examples:\n  gw setup soracom --profile sora-keys --soracom-profile work\n"
                   "  gw setup soracom --profile sora-keys --endpoint https://g.api.soracom.io --coverage g\n"
                   "  gw setup soracom --profile sora",
        ),
    ]
