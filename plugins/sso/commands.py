"""``gw sso login | logout | roles`` and ``gw setup aws --sso`` (a profile per account and role)."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from gw.plugin import StepError, UsageError, append_to_config, profile_option

DESCRIPTION = ("Sign in to AWS IAM Identity Center (browser with PKCE, or --use-device-code), sign out, and list "
               "the accounts and roles you can reach. The token is kept where the AWS CLI keeps it "
               "(~/.aws/sso/cache), so `aws sso login` and gw share one sign-in.")
EPILOG = ("examples:\n  gw sso login --session work\n  gw sso login --profile work-admin --use-device-code\n"
          "  gw sso roles --session work\n  gw sso logout --session work\n  gw setup aws --sso work --dry-run")
MARKER = "written by gw setup aws --sso "


def _session_args(parser: Any) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--session", help="an [sso_sessions.NAME] table of the config")
    profile_option(group, "a gw profile with an aws-sso step", required=False)


SUBCOMMANDS = {
    "login": ("sign in now (browser, or --use-device-code)",
              "Sign in to the session's start URL and store the token in ~/.aws/sso/cache, where the AWS CLI and "
              "every SDK find it. The browser gets a PKCE sign-in with a redirect to 127.0.0.1; without a browser, "
              "or with --use-device-code, gw shows a URL and a code on the terminal.",
              "examples:\n  gw sso login --session work\n  gw sso login --profile work-admin --use-device-code"),
    "logout": ("end the portal session and remove the cached token",
               "Call the access portal's Logout with the cached token and remove the token file. Role credentials "
               "already issued stay valid until they expire, as with the AWS CLI.",
               "example:\n  gw sso logout --session work"),
    "roles": ("list the accounts and roles you can reach",
              "List every account and role the signed-in user is assigned (ListAccounts, ListAccountRoles), as a "
              "table that fits 80 columns or as JSON.",
              "examples:\n  gw sso roles --session work\n  gw sso roles --profile work-admin --json"),
}


def configure(parser: Any) -> None:
    import argparse

    sub = parser.add_subparsers(dest="sso_command", metavar="SUBCOMMAND", required=True)
    made = {}
    for name, (summary, description, epilog) in SUBCOMMANDS.items():
        made[name] = sub.add_parser(name, help=summary, description=description, epilog=epilog,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        _session_args(made[name])
    made["login"].add_argument("--use-device-code", action="store_true", help="sign in with a code, not a redirect")
    made["roles"].add_argument("--json", action="store_true", help="print JSON instead of a table")


def resolve_session(args: Any, ctx: Any) -> tuple[Any, Any]:
    """(StepContext, SsoSession) for ``--session`` or ``--profile``."""
    from .sessions import session_from_options

    if getattr(args, "profile", None):
        options = ctx.step_options(args.profile, "aws-sso")
        return ctx.step_context(args.profile, "aws-sso"), session_from_options(ctx, options, args.profile)
    if not getattr(args, "session", None):
        raise UsageError("name the SSO session: --session NAME (an [sso_sessions.NAME] table) or --profile P")
    return ctx.step_context(f"sso-session.{args.session}", "aws-sso"), \
        session_from_options(ctx, {"session": args.session})


def run(args: Any, ctx: Any) -> int:
    step_ctx, session = resolve_session(args, ctx)
    return {"login": _login, "logout": _logout, "roles": _roles}[args.sso_command](args, ctx, step_ctx, session)


def _login(args: Any, ctx: Any, step_ctx: Any, session: Any) -> int:
    from . import tokens
    from .flow import access_token

    token = access_token(step_ctx, session, login=True, use_device_code=args.use_device_code)
    until = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(token.expires_at))
    ctx.emit(f"signed in to {session.start_url}; token valid until {until} ({tokens.cache_path(session.cache_key)})")
    return 0


def _logout(args: Any, ctx: Any, step_ctx: Any, session: Any) -> int:
    from . import tokens
    from .oidc import PortalError, portal_call

    token = tokens.load(session.cache_key)
    if token is None:
        ctx.emit(f"not signed in to {session.start_url}")
        return 0
    for value in token.secrets():
        ctx.add_secret(value)
    try:
        portal_call(step_ctx, session, "POST", "/logout", token.access_token)
    except PortalError as exc:
        if exc.type != "UnauthorizedException":  # an ended session is already signed out
            ctx.warn(f"the AWS access portal refused Logout: {exc}; removing the cached token anyway")
    except StepError as exc:
        ctx.warn(f"{exc}; removing the cached token anyway")
    tokens.remove(session.cache_key)
    ctx.emit(f"signed out of {session.start_url}")
    return 0


def _roles(args: Any, ctx: Any, step_ctx: Any, session: Any) -> int:
    from .flow import access_token, list_roles

    rows = list_roles(step_ctx, session, access_token(step_ctx, session))
    if args.json:
        ctx.emit(json.dumps(rows, indent=2))
        return 0
    ctx.emit(format_table(rows))
    return 0


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(rows: list[dict[str, str]], width: int = 80) -> str:
    """ACCOUNT, NAME and ROLE columns in at most ``width`` characters per line."""
    if not rows:
        return "no accounts or roles are assigned to this user"
    name_w = max(4, min(max(len(r["accountName"]) for r in rows), 28))
    role_w = width - 12 - name_w - 4
    lines = [f"{'ACCOUNT':<12}  {'NAME':<{name_w}}  ROLE"]
    for r in sorted(rows, key=lambda r: (r["accountName"].lower(), r["accountId"], r["roleName"])):
        lines.append(f"{r['accountId']:<12}  {_cut(r['accountName'], name_w):<{name_w}}  {_cut(r['roleName'], role_w)}")
    return "\n".join(line.rstrip() for line in lines)


# -- gw setup aws --sso S --------------------------------------------------------------------
def profile_name(session: str, account_name: str, account_id: str, role: str) -> str:
    """``<session>.<account name>.<role>`` in the characters gw and AWS profile names allow."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", account_name).strip("-").lower() or account_id
    name = re.sub(r"[^A-Za-z0-9_.@-]+", "-", f"{session}.{slug}.{role}")
    return name if len(name) <= 64 else f"{name[:51]}.{account_id}"


def _q(value: str) -> str:
    import tomli_w

    return tomli_w.dumps({"v": value})[4:].strip()


def _profile_toml(name: str, session: str, account_id: str, role: str, account_name: str) -> str:
    return "\n".join([
        f"[profiles.{_q(name)}]",
        f"description = {_q(MARKER + session + ' (' + (account_name or account_id) + ')')}",
        f"steps = [{{ use = \"aws-sso\", session = {_q(session)}, account_id = {_q(account_id)}, "
        f"role_name = {_q(role)} }}]",
    ]) + "\n"


def setup_sso(args: Any, ctx: Any) -> int:
    """A gw profile and an ~/.aws/config entry for every account and role of the session."""

    from gw_plugins.aws.awsconfig import aws_config_path, credential_process_command, set_credential_process
    from gw_plugins.aws.importer import read_section

    from .flow import access_token, list_roles

    session_name = args.sso
    step_ctx, session = resolve_session(type("A", (), {"session": session_name})(), ctx)
    rows = list_roles(step_ctx, session, access_token(step_ctx, session))
    config_path = ctx.config_path
    existing = {name: ctx.profile(name) for name in ctx.profile_names()}
    aws_path = aws_config_path()
    added: list[str] = []
    aws_pending: list[tuple[str, str]] = []
    for row in sorted(rows, key=lambda r: (r["accountName"].lower(), r["accountId"], r["roleName"])):
        name = profile_name(session_name, row["accountName"], row["accountId"], row["roleName"])
        command = credential_process_command(ctx.gw_executable(), name)
        mine = name in existing and existing[name].description.startswith(MARKER + session_name)
        if name in existing and not mine:
            ctx.warn(f"gw profile {name!r} exists and was not written by gw setup aws --sso; leaving it alone")
            continue
        section = read_section(aws_path, f"profile {name}")
        if section and section.get("credential_process") != command:
            ctx.warn(f"AWS profile {name!r} in {aws_path} was not written by gw; leaving it alone")
            continue
        verb = "would add" if args.dry_run else "added"
        ctx.emit(f"{'unchanged' if mine else verb} gw profile {name}; "
                 f"{'unchanged' if section else verb} [profile {name}] in {aws_path}")
        if args.dry_run:
            continue
        if not mine:
            added.append(_profile_toml(name, session_name, row["accountId"], row["roleName"], row["accountName"]))
        if not section:
            aws_pending.append((name, command))
    if added and not args.dry_run:
        append_to_config(config_path, "".join("\n" + block for block in added).lstrip("\n"), what="the SSO profiles")
    for name, command in aws_pending:  # after the gw profiles exist, so no AWS profile points at nothing
        set_credential_process(aws_path, name, command)
    return 0
