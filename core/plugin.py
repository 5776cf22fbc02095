"""The public API for gw plugins: the one module a plugin imports from gw.

Built-in plugins (``gw_plugins``) and third-party plugins use exactly this
module; a test fails when a module under ``plugins/`` or ``emulators/`` imports
any other ``gw.*`` module, and another when a name below is not documented in
``docs/plugins.md``.

What is here:

- ``hookimpl``: the decorator for hook implementations (the hooks are in
  ``gw.hookspecs``, documented in docs/plugins.md).
- Declarations a plugin returns: :class:`StepType`, :class:`Option`,
  :class:`SecretScheme`, :class:`Command`, :class:`ProfileTable`, :class:`Setting`.
- What the core hands a plugin: :class:`StepContext` (a running step) and
  :class:`CommandContext` (a plugin command).
- Credential kinds and classes, with the time helpers they use.
- Errors: raise :class:`StepError` (or another :class:`GwError`) with one clear line.
- Helpers real plugins need: :func:`atomic_write`, :func:`private_dir`,
  :func:`named_lock`, :func:`http_request`; one-time codes through
  :meth:`StepContext.one_time_code`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pluggy

from .cli_options import freshness_options, parse_duration, profile_option
from .credentials import (
    AWS,
    BEARER_TOKEN,
    ENDORSE_TOKEN,
    IOT_CERTIFICATE,
    JSON_DOCUMENT,
    OPENID_TOKEN,
    SORACOM_CREDENTIALS,
    SORACOM_SESSION,
    AwsCredentials,
    BearerToken,
    Credential,
    EndorseToken,
    IotCertificate,
    JsonDocument,
    OpenIdToken,
    SoracomCredentials,
    SoracomSession,
    parse_time,
    to_rfc3339,
    utcnow,
)
from .errors import ConfigError, GwError, SecretError, StepError, UsageError
from .paths import atomic_write
from .steps import (
    Command,
    CommandContext,
    Option,
    ProfileTable,
    SecretScheme,
    Setting,
    StepContext,
    StepType,
)

if TYPE_CHECKING:
    import requests

hookimpl = pluggy.HookimplMarker("gw")

__all__ = [
    "AWS",
    "BEARER_TOKEN",
    "ENDORSE_TOKEN",
    "IOT_CERTIFICATE",
    "JSON_DOCUMENT",
    "OPENID_TOKEN",
    "SORACOM_CREDENTIALS",
    "SORACOM_SESSION",
    "AwsCredentials",
    "BearerToken",
    "Command",
    "CommandContext",
    "ConfigError",
    "Credential",
    "EndorseToken",
    "GwError",
    "IotCertificate",
    "JsonDocument",
    "OpenIdToken",
    "Option",
    "ProfileTable",
    "Setting",
    "SecretError",
    "SecretScheme",
    "SoracomCredentials",
    "SoracomSession",
    "StepContext",
    "StepError",
    "StepType",
    "UsageError",
    "atomic_write",
    "freshness_options",
    "hookimpl",
    "http_request",
    "named_lock",
    "parse_duration",
    "parse_time",
    "private_dir",
    "profile_option",
    "to_rfc3339",
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
    **kwargs: Any,
) -> requests.Response:
    """One HTTP call that honours gw's TLS settings (``settings.ca_bundle``).

    ``kwargs`` go to :func:`requests.request` (``json``, ``data``, ``headers``,
    ``cert``, ...). Any failure to get an answer - refused, timed out, TLS - is
    raised as one :class:`StepError` line naming ``what`` and the reason, never
    the request's body or headers. HTTP error statuses are returned, not raised:
    the plugin knows what they mean.
    """
    import requests

    kwargs.setdefault("verify", ctx.tls_verify)
    try:
        return requests.request(method, url, timeout=timeout, **kwargs)
    except requests.exceptions.SSLError:
        raise StepError(f"TLS failure talking to {what} ({_host(url)}): check the endpoint and settings.ca_bundle") from None
    except requests.exceptions.Timeout:
        raise StepError(f"{what} ({_host(url)}) did not answer within {timeout:g} s") from None
    except requests.exceptions.ConnectionError:
        raise StepError(f"cannot reach {what} ({_host(url)}): connection failed") from None
    except requests.exceptions.RequestException as exc:
        raise StepError(f"request to {what} ({_host(url)}) failed: {type(exc).__name__}") from None


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).netloc.rpartition("@")[2] or url[:60]
    except ValueError:
        return "an invalid URL"
