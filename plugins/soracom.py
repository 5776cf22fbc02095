"""SORACOM: long-term credentials, API sessions and soracom-cli integration.

Step types (protocols.md section 3):

* ``soracom-keys`` - SoracomCredentials from secret references: an AuthKey, a root
  email/password or a SAM user, plus an optional ``mfa_code`` (``totp:...``,
  ``op-otp://...``) and ``coverage``.
* ``soracom-auth`` - ``POST /v1/auth`` (and ``/v1/auth/switch_user``) -> SoracomSession.

Commands: ``gw soracom-profile`` (the stdout of a soracom-cli ``profileCommand``),
``gw soracom-token`` and ``gw setup soracom`` (writes ``~/.soracom/NAME.json``).
Hook: ``gw_cache_cleared`` logs a dropped SoracomSession out upstream.
"""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gw.plugin import hookimpl
from gw.plugin import SORACOM_CREDENTIALS, SORACOM_SESSION
from gw.plugin import GwError, StepError, UsageError
from gw.plugin import Command, Option, StepType

if TYPE_CHECKING:
    from gw.plugin import Credential, SoracomCredentials, SoracomSession
    from gw.plugin import StepContext

ENDPOINTS = {"jp": "https://api.soracom.io", "g": "https://g.api.soracom.io"}
TOKEN_TIMEOUT_DEFAULT = 86400
TOKEN_TIMEOUT_RANGE = (180, 172800)
SWITCH_TIMEOUT_RANGE = (180, 3600)
INVALID_CREDENTIALS = "AUM0002"
HTTP_TIMEOUT = 30

CREDENTIAL_SETS = {
    "authkey": ("auth_key_id", "auth_key"),
    "root": ("email", "password"),
    "sam": ("operator_id", "username", "password"),
}
IDENTITY_OPTIONS = ("auth_key_id", "email", "operator_id", "username")
_MFA_WORDS = re.compile(r"\b(?:mfa|otp|one[- ]time|multi[- ]factor|two[- ]factor|2fa)\b", re.I)
_REQUIRED_WORDS = re.compile(r"required|missing|must|need", re.I)


# -- soracom-keys ---------------------------------------------------------------------
def credential_kind(present: set[str]) -> str:
    """Which credential set ``present`` option names form; ValueError unless exactly one."""
    fits = [kind for kind, names in CREDENTIAL_SETS.items() if set(names) == present]
    if len(fits) != 1:
        raise ValueError(
            "give exactly one SORACOM credential kind: auth_key_id + auth_key; email + password; "
            "or operator_id + username + password"
        )
    return fits[0]


def _keys_check(options: dict[str, Any]) -> None:
    present = {n for names in CREDENTIAL_SETS.values() for n in names if options.get(n) not in (None, "")}
    credential_kind(present)


def _keys_run(ctx: StepContext, options: dict[str, Any], upstream: Credential | None) -> Credential:
    from gw.plugin import SoracomCredentials

    mfa = options.get("mfa_code")
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
def api_base(endpoint: str | None, coverage: str) -> str:
    """The API base without ``/v1``: the option if given, else the coverage default."""
    base = (endpoint or ENDPOINTS.get(coverage, ENDPOINTS["jp"])).rstrip("/")
    if base.endswith("/v1"):
        base = base[: -len("/v1")]
    return base


def _auth_check(options: dict[str, Any]) -> None:
    timeout = options.get("token_timeout")
    switch = options.get("switch_to")
    if switch is not None:
        if not isinstance(switch, dict) or set(switch) != {"operator_id", "username"} or not all(
            isinstance(v, str) and v for v in switch.values()
        ):
            raise ValueError("switch_to must be { operator_id = \"OP...\", username = \"...\" }")
    low, high = SWITCH_TIMEOUT_RANGE if switch else TOKEN_TIMEOUT_RANGE
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int) or not low <= timeout <= high):
        extra = " with switch_to" if switch else ""
        raise ValueError(f"token_timeout must be between {low} and {high} seconds{extra}")
    endpoint = options.get("endpoint")
    if endpoint is not None and not re.match(r"^https?://[^\s/]+", str(endpoint)):
        raise ValueError("endpoint must be an http(s) URL such as https://api.soracom.io")


def _message_of(response: Any) -> tuple[str | None, str]:
    try:
        doc = response.json()
    except ValueError:
        return None, ""
    if not isinstance(doc, dict):
        return None, ""
    code = doc.get("code")
    message = doc.get("message") or doc.get("errorMessage") or ""
    return (str(code) if code else None), str(message)[:200]


def auth_error(response: Any, *, sent_mfa: bool, mfa_required_code: str | None, what: str) -> StepError:
    """One clear line for a failed SORACOM auth call."""
    code, message = _message_of(response)
    tag = f" ({code})" if code else ""
    if response.status_code == 401:
        about_mfa = bool(_MFA_WORDS.search(message))
        if (mfa_required_code and code == mfa_required_code) or (
            about_mfa and not sent_mfa and _REQUIRED_WORDS.search(message)
        ):
            return StepError(
                f"SORACOM MFA code required{tag}: add mfa_code (e.g. totp:vault:NAME or op-otp://VAULT/ITEM) "
                "to the profile's credentials"
            )
        if about_mfa and sent_mfa:
            return StepError(f"SORACOM rejected the MFA code{tag}: wrong, expired or already used")
        if code == INVALID_CREDENTIALS:
            return StepError(f"SORACOM rejected the credentials{tag}")
        return StepError(f"SORACOM refused {what}{tag}: HTTP 401 {message}".rstrip())
    return StepError(f"SORACOM {what} failed{tag}: HTTP {response.status_code} {message}".rstrip())


def _post(ctx: Any, url: str, body: dict[str, Any] | None, headers: dict[str, str] | None, what: str) -> Any:
    import requests

    try:
        return requests.post(
            url,
            json=body,
            headers={"Accept": "application/json", **(headers or {})},
            timeout=HTTP_TIMEOUT,
            verify=getattr(ctx, "tls_verify", True),
        )
    except requests.exceptions.SSLError:
        raise StepError(f"TLS verification failed talking to SORACOM ({what} at {url})") from None
    except requests.RequestException as exc:
        raise StepError(f"cannot reach the SORACOM API ({what} at {url}): {type(exc).__name__}") from None


def _session_from(doc: Any, base: str, issued: Any, seconds: int, what: str) -> SoracomSession:
    from gw.plugin import SoracomSession

    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), str) and doc.get(k) for k in ("apiKey", "token")):
        raise StepError(f"SORACOM {what} answered without apiKey/token")
    return SoracomSession(
        api_key=doc["apiKey"],
        token=doc["token"],
        operator_id=str(doc.get("operatorId") or ""),
        endpoint=base,
        user_name=doc.get("userName") or None,
        expiration=issued + timedelta(seconds=seconds),
        issued_at=issued,
    )


def _json(response: Any, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise StepError(f"SORACOM {what} answered with something that is not JSON") from None


def _auth_run(ctx: StepContext, options: dict[str, Any], upstream: Credential | None) -> Credential:
    from gw.plugin import SoracomCredentials, utcnow

    if not isinstance(upstream, SoracomCredentials):
        raise StepError("soracom-auth needs SORACOM credentials from the previous step")
    base = api_base(options.get("endpoint"), upstream.coverage)
    switch = options.get("switch_to")
    timeout = options.get("token_timeout")
    if timeout is None:
        timeout = SWITCH_TIMEOUT_RANGE[1] if switch else TOKEN_TIMEOUT_DEFAULT
    mfa_code = options.get("mfa_required_code")
    for secret in upstream.secrets():
        ctx.add_secret(secret)

    body = upstream.auth_body()
    # With switch_to the source session lives as long as the switched one: whether
    # SORACOM ties the two together is not documented, so it is not logged out either.
    body["tokenTimeoutSeconds"] = timeout
    issued = utcnow()
    with ctx.status("signing in to SORACOM"):
        response = _post(ctx, f"{base}/v1/auth", body, None, "sign-in")
    if response.status_code != 200:
        raise auth_error(response, sent_mfa=bool(upstream.mfa_code), mfa_required_code=mfa_code, what="sign-in")
    session = _session_from(_json(response, "sign-in"), base, issued, body["tokenTimeoutSeconds"], "sign-in")
    ctx.add_secret(session.api_key)
    ctx.add_secret(session.token)
    if not switch:
        return session

    issued = utcnow()
    with ctx.status(f"switching to SORACOM user {switch['username']}"):
        response = _post(
            ctx,
            f"{base}/v1/auth/switch_user",
            {"operatorId": switch["operator_id"], "userName": switch["username"], "tokenTimeoutSeconds": timeout},
            {"X-Soracom-API-Key": session.api_key, "X-Soracom-Token": session.token},
            "switch_user",
        )
    if response.status_code != 200:
        raise auth_error(response, sent_mfa=False, mfa_required_code=None, what="switch_user")
    switched = _session_from(_json(response, "switch_user"), base, issued, timeout, "switch_user")
    ctx.add_secret(switched.api_key)
    ctx.add_secret(switched.token)
    return switched


def _logout(ctx: Any, session: SoracomSession, *, quiet: bool = False) -> bool:
    """POST /v1/auth/logout; True when SORACOM confirmed. Never raises."""
    try:
        response = _post(
            ctx,
            f"{session.endpoint.rstrip('/')}/v1/auth/logout",
            None,
            {"X-Soracom-API-Key": session.api_key, "X-Soracom-Token": session.token},
            "logout",
        )
        if response.status_code in (200, 204):
            return True
        problem = f"HTTP {response.status_code}"
    except GwError as exc:
        problem = str(exc)
    except Exception as exc:  # the hook must never raise
        problem = type(exc).__name__
    if not quiet and hasattr(ctx, "warn"):
        ctx.warn(f"could not log out the SORACOM session of {session.operator_id or 'unknown operator'}: {problem}")
    return False


@hookimpl
def gw_cache_cleared(profile: str, credential: Credential, context: Any) -> None:
    from gw.plugin import SoracomSession

    if isinstance(credential, SoracomSession):
        try:
            _logout(context, credential)
        except Exception:  # pragma: no cover - _logout already swallows
            pass


@hookimpl
def gw_step_types() -> list[StepType]:
    secret = "a secret reference (vault:NAME, env:VAR, prompt, op://...)"
    return [
        StepType(
            name="soracom-keys",
            run=_keys_run,
            produces=SORACOM_CREDENTIALS,
            consumes=(),
            check=_keys_check,
            options={
                "auth_key_id": Option(str, help="AuthKey ID (keyId-...)"),
                "auth_key": Option(str, secret=True, help=secret),
                "email": Option(str, help="root user email"),
                "password": Option(str, secret=True, help=secret),
                "operator_id": Option(str, help="operator ID of a SAM user (OP...)"),
                "username": Option(str, help="SAM user name"),
                "mfa_code": Option(str, secret=True, help="one-time code: totp:vault:SEED or op-otp://VAULT/ITEM"),
                "coverage": Option(str, default="jp", choices=("jp", "g")),
            },
            help="Long-term SORACOM credentials (AuthKey, root user or SAM user), optionally with MFA",
        ),
        StepType(
            name="soracom-auth",
            run=_auth_run,
            produces=SORACOM_SESSION,
            consumes=(SORACOM_CREDENTIALS,),
            check=_auth_check,
            options={
                "endpoint": Option(str, help="API base, default https://api.soracom.io (jp) or https://g.api.soracom.io (g)"),
                "token_timeout": Option(int, help="session lifetime in seconds (180..172800, default 86400; 180..3600 with switch_to)"),
                "switch_to": Option(dict, help="{ operator_id, username } of a user to switch to"),
                "mfa_required_code": Option(str, help="error code SORACOM uses for 'MFA code required' (unconfirmed)"),
            },
            help="Sign in to the SORACOM API (POST /v1/auth) and hand out an API key and token",
        ),
    ]


# -- commands -------------------------------------------------------------------------
def profile_document(cred: SoracomCredentials, coverage: str | None = None) -> dict[str, Any]:
    """The soracom-cli profile JSON for these credentials (protocols.md section 3).

    The same fields as the ``/v1/auth`` body, except that the profile file spells
    the SAM user name ``username`` (lowercase n).
    """
    doc = cred.auth_body()
    if "userName" in doc:
        doc["username"] = doc.pop("userName")
    doc["coverageType"] = coverage or cred.coverage or "jp"
    return doc


def _soracom_profile_run(args: Any, app: Any) -> int:
    from gw.plugin import SoracomCredentials

    cred = app.resolve(args.profile, require=SORACOM_CREDENTIALS)
    if not isinstance(cred, SoracomCredentials):
        raise UsageError(f"profile {args.profile!r} does not produce SORACOM credentials")
    app.emit(json.dumps(profile_document(cred, args.coverage)))
    return 0


def _soracom_token_run(args: Any, app: Any) -> int:
    import shlex

    from gw.plugin import SoracomSession, to_rfc3339

    cred = app.resolve(args.profile, require=SORACOM_SESSION)
    if not isinstance(cred, SoracomSession):
        raise UsageError(f"profile {args.profile!r} does not produce a SORACOM session (end it with soracom-auth)")
    if args.format == "env":
        app.emit(
            f"export SORACOM_API_KEY={shlex.quote(cred.api_key)}\nexport SORACOM_TOKEN={shlex.quote(cred.token)}"
        )
    elif args.format == "args":
        app.emit(f"--api-key {shlex.quote(cred.api_key)} --api-token {shlex.quote(cred.token)}")
    else:
        doc: dict[str, Any] = {"apiKey": cred.api_key, "token": cred.token, "operatorId": cred.operator_id}
        if cred.user_name:
            doc["userName"] = cred.user_name
        doc["endpoint"] = cred.endpoint
        if cred.expiration is not None:
            doc["expiration"] = to_rfc3339(cred.expiration)
        app.emit(json.dumps(doc))
    return 0


# soracom-cli splits profileCommand like a shell without one: quotes and
# backslashes are honoured, parsing stops at the first unquoted ; & | < >.
_BARE_SAFE = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")
_UNQUOTABLE = re.compile(r"[\x00-\x1f\x7f'`$\"\\]")


def split_profile_command(command: str) -> list[str]:
    """Split like soracom-cli does: shell quoting rules, no expansion, stop at ; & | < >."""
    args: list[str] = []
    buf: list[str] = []
    have = False
    quote: str | None = None
    i = 0
    while i < len(command):
        c = command[i]
        if quote == "'":
            if c == "'":
                quote = None
            else:
                buf.append(c)
        elif quote == '"':
            if c == '"':
                quote = None
            elif c == "\\" and i + 1 < len(command) and command[i + 1] in '"\\$`':
                i += 1
                buf.append(command[i])
            else:
                buf.append(c)
        elif c == "\\" and i + 1 < len(command):
            i += 1
            buf.append(command[i])
            have = True
        elif c in "'\"":
            quote = c
            have = True
        elif c in " \t\n":
            if have or buf:
                args.append("".join(buf))
            buf, have = [], False
        elif c in ";&|<>":
            break
        else:
            buf.append(c)
        i += 1
    if quote is not None:
        raise ValueError("unterminated quote")
    if have or buf:
        args.append("".join(buf))
    return args


def _quote_word(word: str, what: str) -> str:
    if _BARE_SAFE.match(word):
        return word
    if _UNQUOTABLE.search(word):
        raise UsageError(f"the {what} {word!r} cannot be passed safely through soracom-cli's profileCommand")
    return f"'{word}'"


def profile_command(gw_path: str, profile: str, coverage: str | None = None) -> str:
    """The profileCommand line; refuses words that would not survive soracom-cli's splitting."""
    words = [gw_path, "soracom-profile", "--profile", profile]
    line = " ".join(
        [_quote_word(gw_path, "gw path"), "soracom-profile", "--profile", _quote_word(profile, "profile name")]
    )
    if coverage:
        words += ["--coverage", coverage]
        line += f" --coverage {_quote_word(coverage, 'coverage')}"
    if split_profile_command(line) != words:
        raise UsageError("the gw path or profile name cannot be passed safely through soracom-cli's profileCommand")
    return line


def _profile_dir() -> Path:
    env = os.environ.get("SORACOM_PROFILE_DIR")
    return Path(env) if env else Path.home() / ".soracom"


def _write_private_json(path: Path, doc: dict[str, Any]) -> None:
    from gw.plugin import atomic_write

    atomic_write(str(path), (json.dumps(doc, indent=2) + "\n").encode(), 0o600)


def _default_coverage(app: Any, profile: str) -> str:
    try:
        for step in app.profile(profile).steps:
            if isinstance(step, dict) and step.get("coverage") in ("jp", "g"):
                return step["coverage"]
    except Exception:
        pass
    return "jp"


def _setup_run(args: Any, app: Any) -> int:
    profile = args.profile
    kind = app.output_kind(profile)
    if kind != SORACOM_CREDENTIALS:
        raise UsageError(
            f"profile {profile!r} ends in {kind}; soracom-cli needs a profile ending in soracom-credentials"
        )
    name = args.soracom_profile or profile
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name) or ".." in name:
        raise UsageError(f"unusable SORACOM profile name {name!r} (letters, digits, . _ - only)")
    coverage = args.coverage or _default_coverage(app, profile)
    command = profile_command(str(app.gw_executable()), profile, args.coverage)

    directory = _profile_dir()
    if not directory.exists():
        directory.mkdir(mode=0o700, parents=True)
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
        doc["endpoint"] = args.endpoint.rstrip("/")
    _write_private_json(path, doc)
    app.emit(f"wrote {path}\nuse it with: soracom --profile {name} subscribers list")
    return 0


def _configure_profile(parser: Any) -> None:
    parser.add_argument("--profile", required=True, help="gw profile whose chain ends in soracom-credentials")
    parser.add_argument("--coverage", choices=("jp", "g"), help="override coverageType")


def _configure_token(parser: Any) -> None:
    parser.add_argument("--profile", required=True, help="gw profile whose chain ends in soracom-auth")
    parser.add_argument("--format", choices=("json", "env", "args"), default="json")


def _configure_setup(parser: Any) -> None:
    parser.add_argument("--profile", required=True, help="gw profile whose chain ends in soracom-credentials")
    parser.add_argument("--soracom-profile", dest="soracom_profile", help="soracom-cli profile name (default: the gw profile)")
    parser.add_argument("--coverage", choices=("jp", "g"), help="coverageType (default: from the gw profile, else jp)")
    parser.add_argument("--endpoint", help="write an endpoint into the soracom-cli profile")
    parser.add_argument("--force", action="store_true", help="replace a profile file gw did not write")


@hookimpl
def gw_commands() -> list[Command]:
    return [
        Command(
            "soracom-profile",
            "print a soracom-cli profile (JSON) with fresh credentials, for profileCommand",
            _configure_profile,
            _soracom_profile_run,
        ),
        Command(
            "soracom-token",
            "print a SORACOM API key and token (json, env or args)",
            _configure_token,
            _soracom_token_run,
        ),
        Command(
            "soracom",
            "write a soracom-cli profile that runs gw soracom-profile",
            _configure_setup,
            _setup_run,
            group="setup",
        ),
    ]
