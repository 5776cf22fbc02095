"""Amazon Cognito machine-to-machine tokens: the ``cognito-m2m`` step type.

A user pool app client with a secret asks the pool's OAuth 2.0 token endpoint for an
access token with the client-credentials grant (docs/protocols.md §7; AWS guide
"The token issuer endpoint",
https://docs.aws.amazon.com/cognito/latest/developerguide/token-endpoint.html):
``POST <domain>/oauth2/token`` with a form body
``grant_type=client_credentials&scope=<space separated scopes>``. The app client
authenticates as ``auth_method`` says (RFC 6749 section 2.3.1):

* ``client_secret_basic`` (default): ``Authorization: Basic b64(id ":" secret)`` where id
  and secret are each ``application/x-www-form-urlencoded`` first (RFC 6749 Appendix B), so
  a secret with ``%``, ``+``, ``:`` or non-ASCII characters reaches an RFC server intact.
  For Cognito's generated ids and secrets (letters and digits) the encoding changes nothing.
* ``client_secret_post``: ``client_id`` and ``client_secret`` as form fields, for servers
  that take only that method.

The result is a :class:`gw.plugin.BearerToken`. Its expiry is the earlier of
``expires_in`` and the token's own ``exp`` claim (read with PyJWT without verifying
the signature: gw is not the token's audience, the API is; :func:`gw.plugin.unverified_jwt_claims`,
so no JWT library loads on a cache miss). 5xx, 429, timeouts and
dropped connections are retried ``retries`` times with capped, jittered exponential
backoff; every other refusal is one line saying what to check in the user pool.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from gw.plugin import BEARER_TOKEN, Option, StepError, StepType, hookimpl

if TYPE_CHECKING:
    from gw.plugin import BearerToken, Credential, HttpResponse, StepContext

DEFAULT_ENV_NAME = "GW_BEARER_TOKEN"
DEFAULT_RETRIES = 3
MAX_RETRIES = 10
DEFAULT_TIMEOUT = 30
BACKOFF_BASE = 0.25  # seconds; attempt n waits uniform(0, min(CAP, BASE * 2**n)) ("full jitter")
BACKOFF_CAP = 4.0
DISAGREEMENT = 300  # seconds between expires_in and exp worth a warning
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOMAIN_PREFIX = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d")
_SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 scope-token
_ERROR_CODE = re.compile(r"[a-z_]{1,40}")
AUTH_METHODS = ("client_secret_basic", "client_secret_post")
DEFAULT_AUTH_METHOD = "client_secret_basic"

# What each OAuth error of the token endpoint means for a client-credentials request,
# and what to check in the user pool or the app client.
ERROR_HINTS = {
    "invalid_client": "the app client was not recognised: check client_id and client_secret "
    "(the app client must have a client secret, and it must be this user pool's client)",
    "invalid_scope": "check that each scope is <resource server identifier>/<scope name> of a resource "
    "server in the user pool, and is among the app client's allowed custom scopes",
    "unauthorized_client": "the app client may not use this grant: enable the client credentials "
    "OAuth grant type on the app client (it needs a client secret)",
    "invalid_grant": "the grant was refused: check that the app client is enabled for the client "
    "credentials flow and that token_url / domain is the domain of the app client's own user pool",
    "unsupported_grant_type": "the endpoint does not take client credentials: check that token_url "
    "or domain and region name a Cognito user pool domain (.../oauth2/token)",
    "invalid_request": "the endpoint could not read the request: check token_url and the scopes",
}


# -- options ------------------------------------------------------------------------------
def token_endpoint(options: dict[str, Any]) -> str:
    """The token endpoint URL: ``token_url``, or built from ``domain`` and ``region``.

    ``domain`` is the user pool's domain prefix (``my-app`` ->
    ``https://my-app.auth.<region>.amazoncognito.com``) or a custom domain host name
    (``auth.example.com``, which needs no region).
    """
    if options.get("token_url"):
        return str(options["token_url"])
    domain = str(options["domain"])
    if "." in domain:
        return f"https://{domain}/oauth2/token"
    return f"https://{domain}.auth.{options['region']}.amazoncognito.com/oauth2/token"


def _check(options: dict[str, Any]) -> None:
    url, domain, region = options.get("token_url"), options.get("domain"), options.get("region")
    if bool(url) == bool(domain):
        raise ValueError("give either token_url or domain (with region), not both and not neither")
    if url:
        from urllib.parse import urlsplit

        if region:
            raise ValueError("region goes with domain; token_url already names the endpoint")
        try:
            parts = urlsplit(url)
        except ValueError:
            parts = None
        if parts is None or parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
            raise ValueError("token_url must be an https URL such as https://my-app.auth.us-east-1.amazoncognito.com/oauth2/token")
    else:
        domain = str(domain)
        if "." in domain:
            if not _HOSTNAME.fullmatch(domain):
                raise ValueError(f"domain {domain!r} is neither a domain prefix nor a host name")
        elif not _DOMAIN_PREFIX.fullmatch(domain):
            raise ValueError(f"domain {domain!r} is not a Cognito domain prefix (lower-case letters, digits, hyphens)")
        elif not region:
            raise ValueError("a domain prefix needs region (e.g. region = \"us-east-1\")")
        if region and not _REGION.fullmatch(region):
            raise ValueError(f"region {region!r} is not an AWS region name such as us-east-1")
    if not options.get("client_id") or not str(options["client_id"]).strip():
        raise ValueError("client_id must not be empty")
    scopes = options.get("scopes") or []
    for scope in scopes:
        if not isinstance(scope, str) or not _SCOPE.fullmatch(scope):
            raise ValueError("scopes must be a list of scope names such as \"my-api/read\" (no spaces or quotes)")
    env_name = options.get("env_name")
    if not isinstance(env_name, str) or not _ENV_NAME.fullmatch(env_name):
        raise ValueError("env_name must be an environment variable name (letters, digits, _)")
    retries = options.get("retries")
    if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= MAX_RETRIES:
        raise ValueError(f"retries must be an integer from 0 to {MAX_RETRIES}")
    timeout = options.get("timeout")
    if not isinstance(timeout, int) or isinstance(timeout, bool) or not 1 <= timeout <= 300:
        raise ValueError("timeout must be a number of seconds from 1 to 300")
    if options.get("auth_method") not in AUTH_METHODS:
        raise ValueError(f"auth_method must be {' or '.join(repr(m) for m in AUTH_METHODS)}")


# -- the token request ----------------------------------------------------------------------
class _Retryable(Exception):
    """An answer (or no answer) worth asking again: ``reason`` describes it without secrets."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).netloc.rpartition("@")[2]


def basic_credentials(client_id: str, secret: str) -> str:
    """The ``Authorization`` value of ``client_secret_basic`` (RFC 6749 section 2.3.1).

    Id and secret are each form-urlencoded (UTF-8, space as ``+``) before being joined with
    ``:`` and base64-encoded, so a ``:`` in the id or any ``%`` / ``+`` in either survives.
    """
    import base64
    from urllib.parse import quote_plus

    joined = f"{quote_plus(client_id, safe='')}:{quote_plus(secret, safe='')}"
    return "Basic " + base64.b64encode(joined.encode("ascii")).decode("ascii")


def client_authentication(auth_method: str, client_id: str, secret: str) -> tuple[dict[str, str], dict[str, str]]:
    """(headers, form fields) that authenticate the app client with ``auth_method``."""
    if auth_method == "client_secret_post":
        return {}, {"client_id": client_id, "client_secret": secret}
    return {"Authorization": basic_credentials(client_id, secret)}, {}


def _post_once(ctx: StepContext, url: str, headers: dict[str, str], form: dict[str, str],
               timeout: float) -> HttpResponse:
    """One POST to the token endpoint (:func:`gw.plugin.http_request`: no redirect followed);
    no answer, or a transient status, raises :class:`_Retryable`."""
    from gw.plugin import NoAnswer, http_request

    try:
        response = http_request(ctx, "POST", url, what="the Cognito token endpoint", timeout=timeout, data=form,
                                headers={"Accept": "application/json", **headers})
    except NoAnswer as exc:
        raise _Retryable(exc.reason) from None
    if response.status_code in RETRYABLE_STATUSES:
        raise _Retryable(f"HTTP {response.status_code}", _retry_after(response))
    return response


def _retry_after(response: HttpResponse) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None


def _backoff(attempt: int, retry_after: float | None) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): full jitter, capped."""
    import random

    if retry_after is not None:
        return min(retry_after, BACKOFF_CAP)
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)))


def request_token(ctx: StepContext, url: str, client_id: str, secret: str, scopes: list[str], *,
                  retries: int, timeout: float, auth_method: str = DEFAULT_AUTH_METHOD) -> HttpResponse:
    """POST the client-credentials request, retrying transient failures at most ``retries`` times."""
    import time

    headers, credentials = client_authentication(auth_method, client_id, secret)
    form = {"grant_type": "client_credentials"}
    if scopes:
        form["scope"] = " ".join(scopes)
    form.update(credentials)
    attempts = retries + 1
    reasons: list[str] = []
    for attempt in range(1, attempts + 1):
        try:
            return _post_once(ctx, url, headers, form, timeout)
        except _Retryable as exc:
            reasons.append(exc.reason)
            if attempt == attempts:
                break
            wait = _backoff(attempt, exc.retry_after)
            ctx.info(f"Cognito token endpoint: {exc.reason}; retry {attempt} of {retries} in {wait:.1f} s")
            time.sleep(wait)
    raise StepError(_gave_up(url, reasons, retries))


def _gave_up(url: str, reasons: list[str], retries: int) -> str:
    """One line after the last attempt: how many there were and what each got."""
    from collections import Counter

    counted = Counter(reasons)
    tried = "its only attempt" if len(reasons) == 1 else f"all {len(reasons)} attempts"
    if len(counted) == 1:
        what = f"answered {reasons[0]}" if reasons[0].startswith("HTTP") else f"failed ({reasons[0]})"
        summary = f"{what} on {tried}"
    else:
        summary = f"failed {tried} ({', '.join(f'{n} x {r}' for r, n in counted.items())})"
    hint = "too many requests: wait, or ask AWS for a higher quota" if reasons[-1] == "HTTP 429" else "try again later"
    return f"the Cognito token endpoint ({_host(url)}) {summary}; {hint} (retries = {retries})"


def refusal_message(response: HttpResponse, url: str, auth_method: str = DEFAULT_AUTH_METHOD) -> str:
    """One line for a non-200 answer of the token endpoint (never echoes the body)."""
    status = response.status_code
    error = None
    try:
        document = response.json()
        if isinstance(document, dict) and isinstance(document.get("error"), str):
            error = document["error"]
    except ValueError:
        pass
    if error is not None and _ERROR_CODE.fullmatch(error):
        hint = ERROR_HINTS.get(error, "see the user pool's app client settings")
        if error == "invalid_client":
            other = AUTH_METHODS[1 - AUTH_METHODS.index(auth_method)]
            hint += f"; or the server takes only {other}: try auth_method = \"{other}\" (now {auth_method})"
        return f"Cognito refused the token request ({error}): {hint}"
    if status == 404:
        return f"{_host(url)} has no token endpoint there (HTTP 404): check token_url, or domain and region"
    return f"the Cognito token endpoint ({_host(url)}) answered HTTP {status} without an OAuth error"


# -- the answer -----------------------------------------------------------------------------
def _token_from(response: HttpResponse, url: str) -> tuple[str, int, str | None]:
    """(access_token, expires_in, token_type) from a 200 answer; one line when it is not usable."""
    try:
        document = response.json()
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise StepError(f"the Cognito token endpoint ({_host(url)}) answered 200 without a JSON object")
    token, expires_in, token_type = document.get("access_token"), document.get("expires_in"), document.get("token_type")
    if not isinstance(token, str) or not token:
        raise StepError(f"the Cognito token endpoint ({_host(url)}) answered without an access_token")
    if isinstance(expires_in, str) and expires_in.isdigit():
        expires_in = int(expires_in)
    if not isinstance(expires_in, int) or isinstance(expires_in, bool) or expires_in <= 0:
        raise StepError(f"the Cognito token endpoint ({_host(url)}) answered without a usable expires_in")
    return token, expires_in, token_type if isinstance(token_type, str) else None


def _claims(token: str) -> dict[str, Any] | None:
    """The token's claims, read WITHOUT verifying the signature (only to cross-check expiry)."""
    from gw.plugin import unverified_jwt_claims

    return unverified_jwt_claims(token)


def token_expiry(ctx: StepContext, now: float, expires_in: int, claims: dict[str, Any] | None,
                 date_header: str | None = None) -> float:
    """The earlier of ``now + expires_in`` and the ``exp`` claim; warns when they disagree a lot.
    A token whose ``exp`` is already past is refused, naming the clock offset the answer's
    ``Date`` header shows (:func:`gw.plugin.check_expiry`, shared with the other steps)."""
    from gw.plugin import check_expiry

    by_answer = now + expires_in
    exp = claims.get("exp") if claims else None
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        return by_answer
    check_expiry(float(exp), "the Cognito token endpoint", date_header, now=now, what="an access token (by its exp claim)")
    if abs(exp - by_answer) > DISAGREEMENT:
        ctx.warn(f"the access token's exp claim and expires_in disagree by {abs(exp - by_answer) / 60:.0f} min; "
                 "using the earlier (check this computer's clock)")
    return min(by_answer, float(exp))


def _run(ctx: StepContext, options: dict[str, Any], upstream: Credential | None) -> BearerToken:
    import base64
    import time

    from gw.plugin import BearerToken, parse_time

    client_id = str(options["client_id"]).strip()
    secret = str(options["client_secret"])
    auth_method = options.get("auth_method") or DEFAULT_AUTH_METHOD
    if not secret:
        raise StepError("client_secret resolved to an empty string")
    ctx.add_secret(secret)
    ctx.add_secret(basic_credentials(client_id, secret).partition(" ")[2])
    ctx.add_secret(base64.b64encode(f"{client_id}:{secret}".encode()).decode())  # the unencoded recipe's form
    url = token_endpoint(options)
    scopes = list(options.get("scopes") or [])
    with ctx.status("Asking Cognito for an access token ..."):
        issued = time.time()
        response = request_token(ctx, url, client_id, secret, scopes, retries=options["retries"],
                                 timeout=options["timeout"], auth_method=auth_method)
    if response.status_code != 200:
        raise StepError(refusal_message(response, url, auth_method))
    token, expires_in, token_type = _token_from(response, url)
    ctx.add_secret(token)
    if token_type is not None and token_type.lower() != "bearer":
        raise StepError(f"the Cognito token endpoint issued a {token_type!r} token, not a bearer token")
    claims = _claims(token)
    expires_at = token_expiry(ctx, issued, expires_in, claims, response.headers.get("Date"))
    granted = claims.get("scope") if claims and isinstance(claims.get("scope"), str) else None
    return BearerToken(
        access_token=token,
        token_type="Bearer",
        scope=granted or (" ".join(scopes) or None),
        expiration=parse_time(int(expires_at)),
        issued_at=parse_time(int(issued)),
        env_name=options["env_name"],
    )


STEP = StepType(
    name="cognito-m2m",
    run=_run,
    produces=BEARER_TOKEN,
    consumes=(),
    options={
        "token_url": Option(str, help="the token endpoint, https://<domain>/oauth2/token (or domain + region)"),
        "domain": Option(str, help="user pool domain prefix (with region) or custom domain host name"),
        "region": Option(str, help="AWS region of the user pool domain prefix"),
        "client_id": Option(str, required=True, help="app client id"),
        "client_secret": Option(str, required=True, secret=True, help="app client secret (a secret reference)"),
        "auth_method": Option(str, default=DEFAULT_AUTH_METHOD,
                              help="client_secret_basic (HTTP Basic, RFC 6749 encoding) or client_secret_post (form fields)"),
        "scopes": Option(list, default=[], help="custom scopes, <resource server>/<scope> (default: all the client may have)"),
        "env_name": Option(str, default=DEFAULT_ENV_NAME, help="variable gw env / gw exec set to the token"),
        "retries": Option(int, default=DEFAULT_RETRIES, help=f"retries after 5xx, 429, timeouts (0..{MAX_RETRIES})"),
        "timeout": Option(int, default=DEFAULT_TIMEOUT, help="seconds to wait for each answer"),
    },
    help="An Amazon Cognito access token for an app client (OAuth 2.0 client credentials).",
    check=_check,
)


@hookimpl
def gw_step_types() -> list[StepType]:
    return [STEP]
