"""The console federation URL sink: ``gw login --profile P``.

Turns a profile's AWS credentials into an AWS console sign-in URL through the
federation endpoint (protocols.md section 2) and opens it in the browser, or
prints it with ``--print``. Long-term IAM user keys are first exchanged with
GetFederationToken at the login partition's STS (the endpoint refuses them).
SessionDuration is sent only for a role assumed directly with long-term IAM user
keys, or a web-identity / Cognito result; the endpoint answers 400 for anything
else (protocols.md section 2), and the console session then follows the
credentials' own lifetime.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from gw.plugin import (
    AWS,
    AwsCredentials,
    Command,
    CommandContext,
    ConfigError,
    Option,
    ProfileTable,
    StepError,
    atomic_write,
    freshness_options,
    hookimpl,
    private_dir,
    profile_option,
)


@dataclass(frozen=True)
class Partition:
    signin: str
    console: str
    sts_region: str  # where GetFederationToken goes for IAM user keys of this partition


PARTITIONS = {
    "aws": Partition("signin.aws.amazon.com", "console.aws.amazon.com", "us-east-1"),
    "aws-us-gov": Partition("signin.amazonaws-us-gov.com", "console.amazonaws-us-gov.com", "us-gov-west-1"),
    "aws-cn": Partition("signin.amazonaws.cn", "console.amazonaws.cn", "cn-north-1"),
}
# Origins whose credentials the federation endpoint takes a SessionDuration with, when made
# directly from long-term IAM user keys (assume-role) or from an OpenID token (the others).
DURATION_OK = {"assume-role": {"long-term"}, "saml": None, "web-identity": None, "cognito-identity": None}


@dataclass
class LoginPlan:
    endpoint: str
    destination: str
    issuer: str | None
    duration: int | None
    logout_first: bool


def plan_login(login: dict[str, Any], args: Any) -> LoginPlan:
    """Merge the profile's ``login`` table with the command-line options."""
    partition = PARTITIONS[login.get("partition", "aws")]
    return LoginPlan(
        endpoint=login.get("endpoint") or f"https://{partition.signin}/federation",
        destination=args.destination or login.get("destination") or f"https://{partition.console}/",
        issuer=args.issuer or login.get("issuer"),
        duration=args.duration if args.duration is not None else login.get("duration"),
        logout_first=args.logout_first or bool(login.get("logout_first")),
    )


def session_duration(credentials: AwsCredentials, requested: int | None, warn) -> int | None:
    """The SessionDuration to send, or None when it must (or need not) be left out.

    The endpoint accepts it only for AssumeRole* results made directly with long-term
    IAM user keys (AWS IAM guide, custom identity broker) and for web-identity /
    Cognito results; for anything else it answers 400.
    """
    if requested is None:
        return None
    sources = DURATION_OK.get(credentials.origin, set())
    allowed = not credentials.role_chained and credentials.origin in DURATION_OK and (
        sources is None or credentials.made_from in sources)
    if allowed:
        return requested
    made = {"federation-token": "GetFederationToken credentials",
            "session-token": "GetSessionToken credentials"}.get(credentials.origin)
    if made is None and credentials.role_chained:
        made = "role-chained credentials"
    elif made is None and credentials.origin == "assume-role":
        made = f"a role assumed with {credentials.made_from or 'unknown'} credentials, not long-term IAM user keys"
    warn(f"SessionDuration is not allowed with {made or credentials.origin + ' credentials'}; "
         "the console session follows their lifetime")
    return None


def signin_token(ctx, plan: LoginPlan, credentials: AwsCredentials, duration: int | None) -> str:
    import requests

    from gw.plugin import refuse_redirect

    session = json.dumps(
        {
            "sessionId": credentials.access_key_id,
            "sessionKey": credentials.secret_access_key,
            "sessionToken": credentials.session_token,
        }
    )
    params = {"Action": "getSigninToken", "Session": session}
    if duration is not None:
        params["SessionDuration"] = str(duration)
    try:
        with ctx.status("Asking the federation endpoint for a sign-in token ..."):
            response = requests.get(plan.endpoint, params=params, timeout=30, verify=ctx.tls_verify,
                                    allow_redirects=False)
    except requests.RequestException as exc:
        raise StepError(f"cannot reach the federation endpoint {plan.endpoint}: {type(exc).__name__}") from None
    refuse_redirect("the federation endpoint", plan.endpoint, response.status_code, response.headers.get("Location"))
    token = None
    if response.status_code == 200:
        try:
            doc = response.json()
        except ValueError:
            doc = None
        candidate = doc.get("SigninToken") if isinstance(doc, dict) else None
        # A usable token is one non-empty printable string: anything else is a refusal.
        if isinstance(candidate, str) and candidate and candidate.isprintable() and not any(c.isspace() for c in candidate):
            token = candidate
    if not token:
        raise StepError(
            f"the federation endpoint refused the session (HTTP {response.status_code}); "
            "these credentials cannot open the console"
        )
    ctx.add_secret(token)
    return token


def login_url(plan: LoginPlan, token: str) -> str:
    query = {"Action": "login", "Destination": plan.destination, "SigninToken": token}
    if plan.issuer:
        query["Issuer"] = plan.issuer
    url = f"{plan.endpoint}?{urlencode(query, quote_via=quote)}"
    if plan.logout_first:
        parts = urlsplit(plan.endpoint)
        logout = urlunsplit((parts.scheme, parts.netloc, "/oauth", "", ""))
        url = f"{logout}?{urlencode({'Action': 'logout', 'redirect_uri': url}, quote_via=quote)}"
    return url


def console_credentials(ctx: CommandContext, profile: str, refresh: bool = False, min_ttl: int = 0) -> AwsCredentials:
    """The profile's credentials in a form the federation endpoint accepts."""
    credentials = ctx.resolve(profile, require=AWS, refresh=refresh, min_ttl=min_ttl)
    assert isinstance(credentials, AwsCredentials)
    if credentials.origin == "session-token":
        raise ConfigError(
            f"profile {profile!r} ends in GetSessionToken credentials, which cannot open the console; "
            "end the chain with assume-role instead"
        )
    if not credentials.session_token:
        login = ctx.profile(profile).tables.get("login", {})
        # IAM user keys of aws-cn / aws-us-gov only work at their own partition's STS.
        options: dict[str, Any] = {"duration": 43200,
                                   "region": PARTITIONS[login.get("partition") or "aws"].sts_region}
        if login.get("sts_endpoint"):
            options["endpoint"] = login["sts_endpoint"]
        result = ctx.step_context(profile).run_step("federation-token", options, credentials)
        assert isinstance(result, AwsCredentials)
        credentials = result
    return credentials


def run_login(args: Any, ctx: CommandContext) -> int:
    plan = plan_login(ctx.profile(args.profile).tables.get("login", {}), args)
    credentials = console_credentials(ctx, args.profile, args.refresh, args.min_ttl)
    step_ctx = ctx.step_context(args.profile)
    token = signin_token(step_ctx, plan, credentials, session_duration(credentials, plan.duration, ctx.warn))
    url = login_url(plan, token)
    if args.print:
        ctx.emit(url)
        return 0
    import webbrowser

    page = redirect_page(str(ctx.state_dir), url)
    if not webbrowser.open(f"file://{page}"):
        raise StepError("could not open a browser here; run again with --print to get the URL")
    ctx.info(f"opened the AWS console for profile {args.profile!r}")
    return 0


REDIRECT_LIFETIME = 15 * 60  # seconds: a sign-in token is good for 15 minutes


def redirect_page(state_dir: str, url: str) -> str:
    """A private (0600) HTML page that forwards the browser to ``url``; returns its path.

    The browser gets only this file's path on its command line: the sign-in token
    never appears in any process's argv (readable by other users in /proc). Pages
    older than a sign-in token's lifetime are removed on the way.
    """
    import html
    import os
    import secrets
    import time

    directory = private_dir(os.path.join(state_dir, "login"))
    for name in os.listdir(directory):
        full = os.path.join(directory, name)
        try:
            if name.endswith(".html") and time.time() - os.lstat(full).st_mtime > REDIRECT_LIFETIME:
                os.unlink(full)
        except OSError:
            pass
    path = os.path.join(directory, f"{secrets.token_hex(8)}.html")
    target = html.escape(url, quote=True)
    page = (f'<!doctype html><meta charset="utf-8"><meta name="referrer" content="no-referrer">'
            f'<meta http-equiv="refresh" content="0;url={target}"><title>AWS console</title>'
            f'<a href="{target}">Open the AWS console</a>\n')
    atomic_write(path, page.encode(), 0o600)
    return path


def _configure(parser) -> None:
    profile_option(parser)
    parser.add_argument("--print", action="store_true", help="print the sign-in URL instead of opening a browser")
    parser.add_argument("--destination", help="console URL to land on")
    parser.add_argument("--duration", type=_duration, help="console session length, 900..43200 s")
    parser.add_argument("--issuer", help="where the console's sign-out link goes")
    parser.add_argument("--logout-first", action="store_true", help="sign out of any console session first")
    freshness_options(parser)


def _duration(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a whole number of seconds") from None
    if not 900 <= value <= 43200:
        raise argparse.ArgumentTypeError("must be between 900 and 43200 seconds")
    return value


def _check_login(values: dict[str, Any]) -> None:
    duration = values.get("duration")
    if duration is not None and not 900 <= duration <= 43200:
        raise ValueError("duration must be between 900 and 43200 seconds")


@hookimpl
def gw_profile_tables() -> list[ProfileTable]:
    return [ProfileTable(
        "login",
        options={
            "destination": Option(str, help="console URL to land on"),
            "issuer": Option(str, help="where the console's sign-out link goes"),
            "endpoint": Option(str, help="the federation endpoint (default: the partition's)"),
            "partition": Option(str, default="aws", choices=tuple(PARTITIONS), help="aws, aws-us-gov or aws-cn"),
            "duration": Option(int, help="console session length, 900..43200 s"),
            "logout_first": Option(bool, default=False, help="sign out of any console session first"),
            "sts_endpoint": Option(str, help="STS endpoint for GetFederationToken with IAM user keys"),
        },
        help="how gw login opens the console for this profile",
        check=_check_login,
    )]


@hookimpl
def gw_commands() -> list[Command]:
    return [Command(
        "login", "open the AWS console with the profile's credentials", _configure, run_login,
        description="Open the AWS console through the federation endpoint with the profile's credentials.",
        epilog="examples:\n  gw login --profile console\n  gw login --profile console --print\n"
               "  gw login --profile console --duration 3600 --refresh",
    )]
