"""The step types ``soracom-keys`` (long-term credentials) and ``soracom-auth`` (an API session)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from gw.plugin import SORACOM_CREDENTIALS, SORACOM_SESSION, Option, StepError, StepType

from . import api
from .credential_sets import CREDENTIAL_SETS, credential_kind

if TYPE_CHECKING:
    from gw.plugin import Credential, StepContext

TOKEN_TIMEOUT_DEFAULT = 86400
TOKEN_TIMEOUT_RANGE = (180, 172800)
SWITCH_TIMEOUT_RANGE = (180, 3600)

SECRET_HELP = "a secret reference (vault:NAME, env:VAR, prompt, op://...)"


# -- soracom-keys ---------------------------------------------------------------------
def keys_check(options: dict[str, Any]) -> None:
    present = {n for names in CREDENTIAL_SETS.values() for n in names if options.get(n) not in (None, "")}
    credential_kind(present)


def _authkey_with_code(options: dict[str, Any]) -> bool:
    return bool(options.get("auth_key_id")) and options.get("mfa_code") is not None


def keys_advise(options: dict[str, Any]) -> list[str]:
    """``gw check``'s warning for an AuthKey profile that names an MFA code (it works, ignoring it)."""
    if _authkey_with_code(options):
        return ["an AuthKey sign-in takes no MFA code: mfa_code is ignored (never resolved, no one-time code "
                "spent); remove it"]
    return []


def keys_unused(options: dict[str, Any]) -> list[str]:
    """An AuthKey sign-in ignores mfa_code: gw does not resolve it (no prompt, no TOTP step burnt)."""
    return ["mfa_code"] if _authkey_with_code(options) else []


def keys_run(ctx: StepContext, options: dict[str, Any], upstream: Credential | None) -> Credential:
    from gw.plugin import SoracomCredentials

    mfa = options.get("mfa_code")
    if options.get("auth_key_id"):
        mfa = None  # an AuthKey sign-in takes no MFA code (gw check warns; never resolved: keys_unused)
    if mfa is not None:
        mfa = str(mfa).strip()
        if not mfa:
            raise StepError("the SORACOM MFA code resolved to an empty string")
        ctx.add_secret(mfa)
    for name in ("auth_key", "password"):
        ctx.add_secret(options.get(name))
    return SoracomCredentials(
        auth_key_id=options.get("auth_key_id") or None,
        auth_key=options.get("auth_key") or None,
        email=options.get("email") or None,
        password=options.get("password") or None,
        operator_id=options.get("operator_id") or None,
        username=options.get("username") or None,
        mfa_code=mfa,
        coverage=options.get("coverage") or "jp",
    )


# -- soracom-auth -------------------------------------------------------------------------
def auth_check(options: dict[str, Any]) -> None:
    timeout = options.get("token_timeout")
    switch = options.get("switch_to")
    if switch is not None and (
        not isinstance(switch, dict)
        or set(switch) != {"operator_id", "username"}
        or not all(isinstance(v, str) and v for v in switch.values())
    ):
        raise ValueError('switch_to must be { operator_id = "OP...", username = "..." }')
    low, high = SWITCH_TIMEOUT_RANGE if switch else TOKEN_TIMEOUT_RANGE
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int) or not low <= timeout <= high):
        extra = " with switch_to" if switch else ""
        raise ValueError(f"token_timeout must be between {low} and {high} seconds{extra}")
    endpoint = options.get("endpoint")
    if endpoint is not None and not re.match(r"^https?://[^\s/]+", str(endpoint)):
        raise ValueError("endpoint must be an http(s) URL such as https://api.soracom.io")
    if endpoint and options.get("sandbox"):
        raise ValueError("give endpoint or sandbox = true, not both")


def auth_run(ctx: StepContext, options: dict[str, Any], upstream: Credential | None) -> Credential:
    from gw.plugin import SoracomCredentials, utcnow

    if not isinstance(upstream, SoracomCredentials):
        raise StepError("soracom-auth needs SORACOM credentials from the previous step")
    endpoint = options.get("endpoint")
    if endpoint and not re.match(r"^https?://[^\s/]+", str(endpoint)):
        raise StepError("the soracom-auth endpoint must be an http(s) URL such as https://api.soracom.io")
    base = api.api_base(endpoint, upstream.coverage, sandbox=bool(options.get("sandbox")))
    lang = options.get("lang") or "en"
    switch = options.get("switch_to")
    timeout = options.get("token_timeout")
    if timeout is None:
        timeout = SWITCH_TIMEOUT_RANGE[1] if switch else TOKEN_TIMEOUT_DEFAULT
    for secret in upstream.secrets():
        ctx.add_secret(secret)

    body = api.auth_body(upstream)
    # With switch_to the source session lives as long as the switched one: whether
    # SORACOM ties the two together is not documented, so it is not logged out either.
    body["tokenTimeoutSeconds"] = timeout
    issued = utcnow()
    with ctx.status("signing in to SORACOM"):
        response = api.call(ctx, "POST", f"{base}/v1/auth", what="sign-in", lang=lang, body=body)
    if response.status_code != 200:
        raise api.auth_error(response, sent_mfa="mfaOTPCode" in body,
                             mfa_required_code=options.get("mfa_required_code"), what="sign-in")
    session = api.session_from(api.json_of(response, "sign-in"), base, issued, timeout, "sign-in")
    ctx.add_secret(session.api_key)
    ctx.add_secret(session.token)
    if not switch:
        return session

    issued = utcnow()
    with ctx.status(f"switching to SORACOM user {switch['username']}"):
        response = api.call(
            ctx, "POST", f"{base}/v1/auth/switch_user", what="switch_user", lang=lang, session=session,
            body={"operatorId": switch["operator_id"], "userName": switch["username"], "tokenTimeoutSeconds": timeout},
        )
    if response.status_code != 200:
        raise api.auth_error(response, sent_mfa=False, mfa_required_code=None, what="switch_user")
    switched = api.session_from(api.json_of(response, "switch_user"), base, issued, timeout, "switch_user")
    ctx.add_secret(switched.api_key)
    ctx.add_secret(switched.token)
    return switched


def step_types() -> list[StepType]:
    """The two SORACOM step types."""
    return [
        StepType(
            name="soracom-keys",
            run=keys_run,
            produces=SORACOM_CREDENTIALS,
            consumes=(),
            check=keys_check,
            advise=keys_advise,
            unused=keys_unused,
            options={
                "auth_key_id": Option(str, help="AuthKey ID (keyId-...)"),
                "auth_key": Option(str, secret=True, help=SECRET_HELP),
                "email": Option(str, help="root user email"),
                "password": Option(str, secret=True, help=SECRET_HELP),
                "operator_id": Option(str, help="operator ID of a SAM user (OP...)"),
                "username": Option(str, help="SAM user name"),
                # The no-reuse record is keyed on the account the code is for: a root
                # user's email, or a SAM user's operator_id/username (as the onepassword
                # step names them), whichever source the code comes from.
                "mfa_code": Option(str, secret=True, account=("email", "operator_id", "username"),
                                   help="one-time code for a root or SAM user: totp:vault:SEED or op-otp://VAULT/ITEM"),
                "coverage": Option(str, default="jp", choices=("jp", "g")),
            },
            help="Long-term SORACOM credentials (AuthKey, root user or SAM user), optionally with MFA",
        ),
        StepType(
            name="soracom-auth",
            run=auth_run,
            produces=SORACOM_SESSION,
            consumes=(SORACOM_CREDENTIALS,),
            check=auth_check,
            options={
                "endpoint": Option(str, help="API base, default https://api.soracom.io (jp) or "
                                               "https://g.api.soracom.io (g); a trailing /v1 is dropped"),
                "sandbox": Option(bool, default=False, help="use the sandbox API (api-sandbox / g.api-sandbox)"),
                "token_timeout": Option(int, help="session lifetime in seconds (180..172800, default 86400; "
                                                  "180..3600 with switch_to)"),
                "switch_to": Option(dict, help="{ operator_id, username } of a user to switch to"),
                "mfa_required_code": Option(str, default=api.MFA_REQUIRED_CODE,
                                            help="error code SORACOM uses for 'MFA code required'"),
                "lang": Option(str, default="en", choices=api.LANGS,
                               help="X-Soracom-Lang of every call (language of SORACOM's messages)"),
                "cli": Option(str, help="soracom-cli executable for gw soracom (default: $GW_SORACOM_CLI, "
                                        "else soracom on PATH)"),
            },
            help="Sign in to the SORACOM API (POST /v1/auth) and hand out an API key and token",
        ),
    ]
