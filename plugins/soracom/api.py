"""The SORACOM API calls gw makes: sign-in, switch_user and logout (protocols.md section 3).

Every call carries ``X-Soracom-Lang`` as soracom-cli's does, so error messages come
in a known language. Heavy imports (requests) happen inside the functions.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from gw.plugin import GwError, StepError

from .credential_sets import login_kind
from .forwarder import normalise_endpoint

if TYPE_CHECKING:
    from gw.plugin import SoracomCredentials, SoracomSession

# Coverage -> API base (soracom-cli appends /v1 itself); sandbox bases for sandbox = true.
ENDPOINTS = {"jp": "https://api.soracom.io", "g": "https://g.api.soracom.io"}
SANDBOX_ENDPOINTS = {"jp": "https://api-sandbox.soracom.io", "g": "https://g.api-sandbox.soracom.io"}
LANGS = ("en", "ja")
INVALID_CREDENTIALS = "AUM0002"
# The reported real answer: {"code":"AUM0063","message":"MFA OTPコードが必要です。"}
MFA_REQUIRED_CODE = "AUM0063"
HTTP_TIMEOUT = 30.0

_MFA_WORDS = re.compile(r"\b(?:mfa|otp|one[- ]time|multi[- ]factor|two[- ]factor|2fa)\b|ワンタイム|多要素|二要素|MFA|OTP",
                        re.IGNORECASE)
_REQUIRED_WORDS = re.compile(r"required|missing|must|need|必要|必須|入力してください", re.IGNORECASE)
MFA_OPTION_HINT = "add mfa_code (e.g. totp:vault:NAME or op-otp://VAULT/ITEM) to the profile's soracom-keys step"


def api_base(endpoint: str | None, coverage: str, *, sandbox: bool = False) -> str:
    """The API base: the ``endpoint`` option if given, else the coverage's (sandbox) default."""
    if endpoint:
        return normalise_endpoint(endpoint)
    table = SANDBOX_ENDPOINTS if sandbox else ENDPOINTS
    return table.get(coverage, table["jp"])


def auth_body(cred: SoracomCredentials) -> dict[str, Any]:
    """The JSON body of ``POST /v1/auth`` for these credentials.

    An AuthKey sign-in takes no MFA code: ``mfaOTPCode`` goes only with a password.
    """
    kind = login_kind(cred)
    if kind == "authkey":
        return {"authKeyId": cred.auth_key_id, "authKey": cred.auth_key}
    if kind == "root":
        body: dict[str, Any] = {"email": cred.email, "password": cred.password}
    else:
        body = {"operatorId": cred.operator_id, "userName": cred.username, "password": cred.password}
    if cred.mfa_code:
        body["mfaOTPCode"] = cred.mfa_code
    return body


def _message_of(response: Any) -> tuple[str | None, str]:
    try:
        doc = response.json()
    except ValueError:
        return None, ""
    if not isinstance(doc, dict):
        return None, ""
    code = doc.get("code")
    message = doc.get("message") or doc.get("errorMessage") or ""
    return (str(code) if code else None), " ".join(str(message).split())[:200]


def is_mfa_required(code: str | None, message: str, *, sent_mfa: bool, mfa_required_code: str | None) -> bool:
    """Whether a 401 answer means "an MFA code is needed" (by code, or by its en/ja message)."""
    if mfa_required_code and code == mfa_required_code:
        return True
    return bool(_MFA_WORDS.search(message)) and not sent_mfa and bool(_REQUIRED_WORDS.search(message))


def auth_error(response: Any, *, sent_mfa: bool, mfa_required_code: str | None, what: str) -> StepError:
    """One clear line for a failed SORACOM auth call."""
    from gw.plugin import clock_note

    code, message = _message_of(response)
    tag = f" ({code})" if code else ""
    if response.status_code == 401:
        if is_mfa_required(code, message, sent_mfa=sent_mfa, mfa_required_code=mfa_required_code):
            return StepError(f"SORACOM MFA code required{tag}: {MFA_OPTION_HINT}")
        if sent_mfa and _MFA_WORDS.search(message):
            # a TOTP code is only as right as the clock that made it: compare with the answer's Date
            note = clock_note("the SORACOM API", response.headers.get("Date"))
            return StepError(f"SORACOM rejected the MFA code{tag}: "
                             + (f"made with a wrong clock{note}" if note else "wrong, expired or already used"))
        if code == INVALID_CREDENTIALS:
            return StepError(f"SORACOM rejected the credentials{tag}")
        return StepError(f"SORACOM refused {what}{tag}: HTTP 401 {message}".rstrip())
    return StepError(f"SORACOM {what} failed{tag}: HTTP {response.status_code} {message}".rstrip())


def call(ctx: Any, method: str, url: str, *, what: str, lang: str = "en", body: dict[str, Any] | None = None,
         session: SoracomSession | None = None) -> Any:
    """One SORACOM API call with gw's TLS settings; transport failures become one StepError."""
    from gw.plugin import http_request

    headers = {"Accept": "application/json", "X-Soracom-Lang": lang}
    if session is not None:
        headers["X-Soracom-API-Key"] = session.api_key
        headers["X-Soracom-Token"] = session.token
    return http_request(ctx, method, url, what=f"the SORACOM API ({what})", timeout=HTTP_TIMEOUT,
                        json=body, headers=headers)


def json_of(response: Any, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise StepError(f"SORACOM {what} answered with something that is not JSON") from None


def session_from(doc: Any, base: str, issued: Any, seconds: int, what: str) -> SoracomSession:
    """A SoracomSession from a ``/v1/auth`` (or switch_user) answer."""
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


def logout(ctx: Any, session: SoracomSession, *, quiet: bool = False) -> bool:
    """POST /v1/auth/logout; True when SORACOM confirmed (204, or 200). Never raises."""
    try:
        response = call(ctx, "POST", f"{normalise_endpoint(session.endpoint)}/v1/auth/logout", what="logout",
                        session=session)
        if response.status_code in (200, 204):
            return True
        problem = f"HTTP {response.status_code}"
    except GwError as exc:
        problem = str(exc)
    except Exception as exc:  # noqa: BLE001 - the cache-clear hook must never raise
        problem = type(exc).__name__
    if not quiet and hasattr(ctx, "warn"):
        ctx.warn(f"could not log out the SORACOM session of {session.operator_id or 'unknown operator'}: {problem}")
    return False
