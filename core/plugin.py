"""The public API for gw plugins: the one module a plugin imports from gw.

Built-in plugins (``gw_plugins``) and third-party plugins use exactly this
module; a test fails when a module under ``plugins/`` or ``emulators/`` imports
any other ``gw.*`` module, and another when a name below is not documented in
``docs/plugins.md``.

What is here:

- ``hookimpl``: the decorator for hook implementations (the hooks are in
  ``gw.hookspecs``, documented in docs/plugins.md).
- Declarations a plugin returns: :class:`StepType`, :class:`Option`,
  :class:`SecretScheme`, :class:`Command`, :class:`ProfileTable`, :class:`Setting`, :class:`EnvironmentVariable`.
- What the core hands a plugin: :class:`StepContext` (a running step) and
  :class:`CommandContext` (a plugin command).
- Credential kinds and classes, with the time helpers they use.
- Errors: raise :class:`StepError` (or another :class:`GwError`) with one clear line.
- Helpers real plugins need: :func:`atomic_write`, :func:`private_dir`,
  :func:`named_lock`, :func:`http_request` (and :class:`HttpClient` for several
  calls on one kept-alive connection, opened ahead in a thread if need be); one-time codes through
  :meth:`StepContext.one_time_code`.
- Redirects: no request that carries a secret, or whose answer decides trust, follows
  one. :func:`http_request` never does; any other HTTP client a plugin uses turns a 3xx
  into :class:`RedirectRefused` with :func:`refuse_redirect` (botocore clients with
  :func:`refuse_aws_redirects`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pluggy

from .cli_options import freshness_options, parse_duration, profile_option
from .clock import CLOCK_TOLERANCE, check_expiry, clock_note, clock_offset
from .config_append import append_to_config
from .credentials import (
    AWS,
    BEARER_TOKEN,
    IOT_CERTIFICATE,
    OPENID_TOKEN,
    SORACOM_CREDENTIALS,
    SORACOM_SESSION,
    AwsCredentials,
    BearerToken,
    Credential,
    IotCertificate,
    OpenIdToken,
    SoracomCredentials,
    SoracomSession,
    parse_time,
    to_rfc3339,
    utcnow,
)
from .errors import ConfigError, GwError, NoAnswer, RedirectRefused, SecretError, StepError, UsageError
from .httpclient import HttpClient, HttpFailure, HttpResponse
from .paths import atomic_write
from .steps import (
    Command,
    CommandContext,
    Duration,
    EnvironmentVariable,
    Option,
    ProfileTable,
    SecretScheme,
    Setting,
    StepContext,
    StepType,
)

hookimpl = pluggy.HookimplMarker("gw")

__all__ = [
    "AWS",
    "CLOCK_TOLERANCE",
    "BEARER_TOKEN",
    "IOT_CERTIFICATE",
    "OPENID_TOKEN",
    "SORACOM_CREDENTIALS",
    "SORACOM_SESSION",
    "AwsCredentials",
    "BearerToken",
    "Command",
    "CommandContext",
    "ConfigError",
    "Credential",
    "Duration",
    "EnvironmentVariable",
    "GwError",
    "HttpClient",
    "HttpFailure",
    "HttpResponse",
    "IotCertificate",
    "NoAnswer",
    "OpenIdToken",
    "Option",
    "ProfileTable",
    "RedirectRefused",
    "Setting",
    "SecretError",
    "SecretScheme",
    "SoracomCredentials",
    "SoracomSession",
    "StepContext",
    "StepError",
    "StepType",
    "UsageError",
    "append_to_config",
    "atomic_write",
    "check_expiry",
    "clock_note",
    "clock_offset",
    "freshness_options",
    "hookimpl",
    "http_request",
    "named_lock",
    "parse_duration",
    "parse_time",
    "private_dir",
    "profile_option",
    "refuse_aws_redirects",
    "refuse_redirect",
    "to_rfc3339",
    "unverified_jwt_claims",
    "utcnow",
]


def private_dir(path: str) -> str:
    """Create ``path`` (and any missing parents) with mode 0700; return it.

    A directory that exists already must not be a symlink, nor writable by
    group or others, nor owned by someone else: gw refuses it with one line
    naming the command that fixes it.
    """
    from .paths import ensure_dir

    return ensure_dir(path)


@contextlib.contextmanager
def named_lock(state_dir: str, name: str, *, timeout: float, what: str) -> Iterator[bool]:
    """Hold the inter-process lock ``name`` under ``state_dir``, waiting at most ``timeout`` s.

    Yields True, or False when the state directory cannot hold lock files (the
    caller then runs unlocked). Raises :class:`GwError` naming ``what`` when
    another process held it for too long. The kernel drops the lock when its
    holder dies, so a killed gw never leaves a stale lock.
    """
    import os
    import re

    from .locks import file_lock

    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    with file_lock(os.path.join(state_dir, "locks", f"{safe}.lock"), timeout, what) as locked:
        yield locked


def http_request(
    ctx: StepContext | CommandContext,
    method: str,
    url: str,
    *,
    what: str,
    timeout: float = 30.0,
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
    data: Any = None,
    json: Any = None,
    verify: bool | str | None = None,
    allow_redirects: bool = False,
) -> HttpResponse:
    """One HTTP call that honours gw's TLS settings (``settings.ca_bundle``) and never
    follows a redirect.

    ``headers``, ``params`` (the query), ``data`` (a form dict, str or bytes) and ``json``
    as requests takes them; ``verify`` defaults to ``ctx.tls_verify``; ``allow_redirects``
    is accepted for requests' callers and ignored (always False). The answer is an
    :class:`HttpResponse` (``status_code``, ``headers``, ``content``, ``text``, ``json()``).
    Any failure to get an answer - refused, timed out, TLS - is raised as one
    :class:`StepError` line naming ``what`` and the reason, never the request's body or
    headers; no answer at all (refused, timed out, cut off) is the subclass
    :class:`NoAnswer`, which a plugin may retry. A 3xx answer raises :class:`RedirectRefused` naming where it pointed
    (:func:`refuse_redirect`). Other HTTP error statuses are returned, not raised: the
    plugin knows what they mean. Standard library only (:mod:`gw.httpclient`): no
    requests or urllib3 to import before the first byte goes out.
    """
    from .httpclient import HttpFailure, encode_request, with_query

    query, fields, body = encode_request(params=params, data=data, json=json, headers=headers)
    client = HttpClient(ctx.tls_verify if verify is None else verify, timeout)
    try:
        response = client.request(method, with_query(url, query), headers=fields, body=body)
    except HttpFailure as exc:
        if exc.reason == "tls":
            raise StepError(f"TLS failure talking to {what} ({_host(url)}): check the endpoint and settings.ca_bundle") from None
        if exc.reason == "timeout":
            raise NoAnswer(f"{what} ({_host(url)}) did not answer within {timeout:g} s",
                           reason=f"no answer within {timeout:g} s") from None
        if exc.reason == "connect":
            raise NoAnswer(f"cannot reach {what} ({_host(url)}): connection failed", reason="connection failed") from None
        raise NoAnswer(f"request to {what} ({_host(url)}) failed: {exc}", reason="connection failed") from None
    except ValueError as exc:
        raise StepError(f"request to {what} ({_host(url)}) failed: {exc}") from None
    finally:
        client.close()
    refuse_redirect(what, url, response.status_code, response.headers.get("Location"))
    return response


def unverified_jwt_claims(token: str) -> dict[str, Any] | None:
    """A JWT's claims read WITHOUT checking its signature (None when it is not a JWS compact
    token with JSON header and claims): only for scheduling a refresh or cross-checking an
    expiry, never for deciding trust. Standard library only (no JWT library to import)."""
    import base64
    import binascii
    import json

    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3:
        return None
    try:
        header, claims = (json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in parts[:2])
    except (binascii.Error, ValueError):
        return None
    return claims if isinstance(header, dict) and isinstance(claims, dict) else None


_REDIRECT_POLICY = "gw does not follow redirects for requests that carry secrets or decide trust"


def refuse_redirect(what: str, url: str, status: int, location: str | None) -> None:
    """Raise :class:`RedirectRefused` when ``status`` is a 3xx; do nothing otherwise.

    For any HTTP client that answered ``status`` (with header ``location``, or None) to a
    request for ``url``. The one line names ``what``, the URL asked (no query: it may
    carry secrets), the status, and the ``scheme://host:port`` the redirect pointed to,
    e.g. ``the SORACOM API (sign-in): https://api.soracom.io/v1/auth answered 307, a
    redirect to http://evil.example:80 - gw does not follow redirects ...``.
    """
    if not 300 <= status < 400:
        return
    target = _redirect_target(url, location)
    where = f"a redirect to {target}" if target else "a redirect without a Location"
    raise RedirectRefused(f"{what}: {_shown_url(url)} answered {status}, {where} - {_REDIRECT_POLICY}",
                          status=status, target=target)


def refuse_aws_redirects(client: Any) -> Any:
    """Make botocore ``client`` raise :class:`RedirectRefused` for any 3xx answer; returns it.

    botocore never follows a redirect (urllib3 with ``Retry(False)``; only S3 has its own
    region redirector), but it hands a 3xx to its response parser, whose error ("Unable to
    parse response ... invalid XML") never says redirect. The check runs on botocore's
    ``before-parse`` event, so no retry and no parse happens.
    """
    url = str(client.meta.endpoint_url)

    def check(response_dict: dict[str, Any], operation_model: Any = None, **_: Any) -> None:
        service = getattr(getattr(operation_model, "service_model", None), "service_id", "")
        what = " ".join(str(part) for part in ("AWS", service, getattr(operation_model, "name", "")) if part)
        headers = response_dict.get("headers") or {}
        refuse_redirect(what, url, int(response_dict.get("status_code") or 0), headers.get("Location"))

    client.meta.events.register("before-parse", check)
    return client


def _printable(text: str, limit: int = 120) -> str:
    """``text`` with anything but printable ASCII replaced by ``?``, cut to ``limit``."""
    clean = "".join(c if 0x21 <= ord(c) < 0x7F else "?" for c in text)
    return clean if len(clean) <= limit else clean[: limit - 3] + "..."


def _shown_url(url: str) -> str:
    """``scheme://host[:port]/path`` of ``url``: no user info, query or fragment."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "an invalid URL"
    return _printable(f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path or '/'}", 200)


def _redirect_target(url: str, location: str | None) -> str | None:
    """``scheme://host:port`` a ``Location`` points to (relative ones resolved against ``url``)."""
    from urllib.parse import urljoin, urlsplit

    if location is None or not location.strip():
        return None
    try:
        parts = urlsplit(urljoin(url, location.strip()))
        host = parts.hostname or ""
        port = parts.port or {"http": 80, "https": 443, "ws": 80, "wss": 443}.get(parts.scheme.lower())
    except ValueError:
        return "an unreadable Location"
    if ":" in host:
        host = f"[{host}]"
    return _printable(f"{parts.scheme.lower() or '?'}://{host or '?'}" + (f":{port}" if port else ""))


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).netloc.rpartition("@")[2] or url[:60]
    except ValueError:
        return "an invalid URL"
