"""AWS IAM Identity Center (SSO): the ``aws-sso`` step type and the ``gw sso`` commands.

A source step: it signs in to the SSO start URL (browser with PKCE, or the device grant),
keeps the token where the AWS CLI and botocore keep theirs (``~/.aws/sso/cache``), and
trades it for the role credentials of one account (GetRoleCredentials). Sessions are
``[sso_sessions.NAME]`` tables (``start_url``, ``region``, ``scopes``), as the AWS CLI's
``[sso-session NAME]``. See docs/plugins/sso.md and docs/protocols.md §11.
"""

from __future__ import annotations

import re
from typing import Any

from gw.plugin import AWS, Command, Option, Setting, StepType, hookimpl

from .sessions import session_from_options, session_table  # noqa: F401 - session_table: checked by its tests here

ACCOUNT_ID = re.compile(r"\d{12}")

OPTIONS = {
    "session": Option(str, help="name of an [sso_sessions.NAME] table (start_url, region, scopes)"),
    "start_url": Option(str, help="the AWS access portal URL (instead of session; the AWS CLI's legacy form)"),
    "sso_region": Option(str, help="the region of IAM Identity Center (with start_url)"),
    "account_id": Option(str, required=True, help="the 12-digit AWS account"),
    "role_name": Option(str, required=True, help="the permission set's role name in that account"),
    "oidc_endpoint": Option(str, help="SSO OIDC endpoint override (else AWS_ENDPOINT_URL_SSO_OIDC, AWS_ENDPOINT_URL)"),
    "portal_endpoint": Option(str, help="access portal endpoint override (else AWS_ENDPOINT_URL_SSO, AWS_ENDPOINT_URL)"),
    "use_device_code": Option(bool, default=False, help="sign in with the device code instead of the browser redirect"),
}


def check_step(options: dict[str, Any]) -> None:
    if bool(options.get("session")) == bool(options.get("start_url")):
        raise ValueError("give either session (an [sso_sessions.NAME] table) or start_url with sso_region")
    if options.get("start_url") and not options.get("sso_region"):
        raise ValueError("start_url needs sso_region")
    if options.get("session") and options.get("sso_region"):
        raise ValueError("sso_region goes in the [sso_sessions] table (region), not beside session")
    if not ACCOUNT_ID.fullmatch(options["account_id"]):
        raise ValueError(f"account_id must be 12 digits, not {options['account_id']!r}")
    for key in ("start_url", "oidc_endpoint", "portal_endpoint"):
        if options.get(key) and not str(options[key]).startswith("https://"):
            raise ValueError(f"{key} must be an https:// URL")


def run_aws_sso(ctx: Any, options: dict[str, Any], upstream: Any) -> Any:
    from .flow import role_credentials

    session = session_from_options(ctx, options)
    if options.get("use_device_code"):
        from .flow import access_token

        access_token(ctx, session, use_device_code=True)
    return role_credentials(ctx, session, options["account_id"], options["role_name"])


STEP = StepType(
    name="aws-sso",
    run=run_aws_sso,
    produces=AWS,
    options=OPTIONS,
    check=check_step,
    help="AWS IAM Identity Center: role credentials of one account, signing in (browser or device code) "
         "with the token the AWS CLI shares.",
)


@hookimpl
def gw_step_types() -> list[StepType]:
    return [STEP]


@hookimpl
def gw_settings() -> list[Setting]:
    return [Setting("sso_sessions", Option(dict, default={}, help="[sso_sessions.NAME]: start_url, region, scopes"),
                    top_level=True)]


def _configure(parser: Any) -> None:
    from .commands import configure

    configure(parser)


def _run(args: Any, ctx: Any) -> int:
    from .commands import run

    return run(args, ctx)


@hookimpl
def gw_commands() -> list[Command]:
    from .commands import DESCRIPTION, EPILOG

    return [
        Command("sso", "sign in to AWS IAM Identity Center, sign out, list roles", _configure, _run,
                description=DESCRIPTION, epilog=EPILOG),
        Command("aws", "--sso: a profile for every account and role of an SSO session", _configure_setup, _run_setup,
                group="setup", extends=True,
                description="With --sso SESSION: a gw profile and an ~/.aws/config entry for every account and "
                            "role the session reaches, named SESSION.ACCOUNT-NAME.ROLE.",
                epilog="  gw setup aws --sso work --dry-run\n  gw setup aws --sso work"),
    ]


def _configure_setup(parser: Any) -> None:
    parser.add_argument("--sso", metavar="SESSION",
                        help="instead of --profile: a gw profile and an AWS profile for every account and role of "
                             "this [sso_sessions.SESSION] (never touching profiles it did not write)")
    parser.add_argument("--dry-run", action="store_true", help="with --sso: show what would change, change nothing")
    for action in parser._actions:  # --profile or --sso
        if action.dest == "profile":
            action.required = False


def _run_setup(args: Any, ctx: Any) -> int | None:
    from gw.plugin import UsageError

    if args.sso is None:
        if not getattr(args, "profile", None):
            raise UsageError("gw setup aws needs --profile P (or --sso SESSION)")
        if args.dry_run:
            raise UsageError("--dry-run goes with --sso")
        return None  # the aws plugin's gw setup aws
    if getattr(args, "profile", None):
        raise UsageError("give either --profile or --sso, not both")
    from .commands import setup_sso

    return setup_sso(args, ctx)
