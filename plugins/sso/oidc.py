"""The SSO OIDC and portal calls, and where they go (docs/protocols.md §11).

Shapes from botocore's models (boto/botocore ``botocore/data/sso-oidc/2019-06-10/service-2.json``
and ``botocore/data/sso/2019-06-10/service-2.json``): rest-json, unsigned; the portal takes
the access token in ``x-amz-sso_bearer_token``. Endpoints follow botocore's conventions:
an explicit option, then ``AWS_ENDPOINT_URL_SSO_OIDC`` / ``AWS_ENDPOINT_URL_SSO``, then
``AWS_ENDPOINT_URL``, then the regional AWS endpoint. No call follows a redirect.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from gw.plugin import StepError, http_request

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_SCOPES = ("sso:account:access",)
RETRIES = 3
MAX_LIFETIME = 366 * 86400  # seconds: longer answers (tokens, role credentials) are refused as nonsense
RETRYABLE = frozenset({429, 500, 502, 503, 504})
BACKOFF_BASE, BACKOFF_CAP = 0.5, 4.0  # seconds


@dataclass(frozen=True)
class SsoSession:
    """Where and how to sign in: one ``[sso_sessions.NAME]`` table, or a legacy start URL."""

    start_url: str
    region: str
    name: str | None = None  # None for the legacy form: the token is keyed by the start URL
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    oidc_endpoint: str | None = None
    portal_endpoint: str | None = None
    profile: str | None = None  # the gw profile, for the sign-in hint of the legacy form


    @property
    def cache_key(self) -> str:
        return self.name or self.start_url

    @property
    def login_hint(self) -> str:
        if self.name:
            return f"gw sso login --session {self.name}"
        return f"gw sso login --profile {self.profile}" if self.profile else "gw sso login --profile PROFILE"

    @property
    def oidc(self) -> str:
        return _endpoint(self.oidc_endpoint, "AWS_ENDPOINT_URL_SSO_OIDC", f"https://oidc.{self.region}.amazonaws.com")

    @property
    def portal(self) -> str:
        return _endpoint(self.portal_endpoint, "AWS_ENDPOINT_URL_SSO",
                         f"https://portal.sso.{self.region}.amazonaws.com")


def _endpoint(option: str | None, variable: str, default: str) -> str:
    url = option or os.environ.get(variable) or os.environ.get("AWS_ENDPOINT_URL") or default
    return url.rstrip("/")


def tls_verify(ctx: Any) -> bool | str:
    """``settings.ca_bundle``, else ``AWS_CA_BUNDLE`` (as botocore reads it), else the system's."""
    verify = ctx.tls_verify
    if verify is True and os.environ.get("AWS_CA_BUNDLE"):
        return os.environ["AWS_CA_BUNDLE"]
    return verify


@dataclass
class OidcError(Exception):
    """A refusal from the OIDC service: the exception name and the OAuth ``error`` code."""

    status: int
    type: str
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.type} ({self.error or self.status})"


def _error_type(response: Any, body: Any) -> str:
    raw = response.headers.get("x-amzn-ErrorType") or (body.get("__type") if isinstance(body, dict) else None) or ""
    return str(raw).split(":", 1)[0].rsplit("#", 1)[-1] or f"HTTP {response.status_code}"


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def oidc_call(ctx: Any, session: SsoSession, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST one OIDC operation; raises :class:`OidcError` on a refusal (never with the body's secrets)."""
    response = http_request(ctx, "POST", session.oidc + path, what="the SSO OIDC service", json=body,
                            allow_redirects=False, verify=tls_verify(ctx))
    answer = _json(response)
    if response.status_code != 200:
        error = str(answer["error"]) if isinstance(answer, dict) and isinstance(answer.get("error"), str) else ""
        raise OidcError(response.status_code, _error_type(response, answer), error)
    if not isinstance(answer, dict):
        raise StepError(f"the SSO OIDC service ({session.oidc}) answered {path} with something that is not JSON")
    return answer


def register_client(ctx: Any, session: SsoSession, *, redirect_uri: str | None = None) -> dict[str, Any]:
    """RegisterClient: a public client for the device grant, or (with ``redirect_uri``) for PKCE."""
    body: dict[str, Any] = {"clientName": "gw", "clientType": "public", "scopes": list(session.scopes)}
    if redirect_uri:
        body.update(grantTypes=["authorization_code", "refresh_token"], redirectUris=[redirect_uri],
                    issuerUrl=session.start_url)
    answer = oidc_call(ctx, session, "/client/register", body)
    if not isinstance(answer.get("clientId"), str) or not isinstance(answer.get("clientSecret"), str):
        raise StepError("the SSO OIDC service answered RegisterClient without a client id and secret")
    ctx.add_secret(answer["clientSecret"])
    return answer


def create_token(ctx: Any, session: SsoSession, client: dict[str, Any], **grant: str) -> dict[str, Any]:
    """CreateToken with the client's id and secret and ``grant`` (grantType and its fields)."""
    for key in ("code", "codeVerifier", "refreshToken", "deviceCode"):
        ctx.add_secret(grant.get(key))
    answer = oidc_call(ctx, session, "/token",
                       {"clientId": client["clientId"], "clientSecret": client["clientSecret"], **grant})
    token = answer.get("accessToken")
    expires = answer.get("expiresIn")
    if not isinstance(token, str) or not token or not isinstance(expires, int) or isinstance(expires, bool) \
            or not 0 < expires <= MAX_LIFETIME:
        raise StepError("the SSO OIDC service answered CreateToken without an access token and a lifetime "
                        "gw can use")
    ctx.add_secret(token)
    ctx.add_secret(answer.get("refreshToken") if isinstance(answer.get("refreshToken"), str) else None)
    return answer


@dataclass
class PortalError(Exception):
    status: int
    type: str

    def __str__(self) -> str:
        return f"{self.type} (HTTP {self.status})"


def portal_call(ctx: Any, session: SsoSession, method: str, path: str, token: str,
                params: dict[str, str] | None = None) -> dict[str, Any]:
    """One portal operation with the access token in ``x-amz-sso_bearer_token``.

    429 (TooManyRequestsException) and 5xx are retried ``RETRIES`` times with jittered
    exponential backoff, as botocore's standard retry mode does.
    """
    import random
    import time

    for attempt in range(RETRIES + 1):
        response = http_request(ctx, method, session.portal + path, what="the AWS access portal",
                                params=params, headers={"x-amz-sso_bearer_token": token},
                                allow_redirects=False, verify=tls_verify(ctx))
        if response.status_code not in RETRYABLE or attempt == RETRIES:
            break
        time.sleep(random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)))
    answer = _json(response)
    if response.status_code != 200:
        raise PortalError(response.status_code, _error_type(response, answer))
    if method == "POST" and answer is None:
        return {}
    if not isinstance(answer, dict):
        raise StepError(f"the AWS access portal ({session.portal}) answered {path} with something that is not JSON")
    return answer


def paginate(ctx: Any, session: SsoSession, path: str, token: str, key: str,
             params: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Every item of a ListAccounts / ListAccountRoles answer, following ``nextToken``."""
    items: list[dict[str, Any]] = []
    query = dict(params or {})
    for _ in range(1000):
        page = portal_call(ctx, session, "GET", path, token, query)
        items.extend(i for i in page.get(key) or [] if isinstance(i, dict))
        next_token = page.get("nextToken")
        if not isinstance(next_token, str) or not next_token:
            return items
        query["next_token"] = next_token
    raise StepError(f"the AWS access portal kept paginating {path}; giving up after 1000 pages")
