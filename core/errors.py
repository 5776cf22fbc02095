"""Errors that end a gw command with a clear one-line message.

Anything raised as a :class:`GwError` is printed as ``gw: <message>`` on stderr
with exit status ``exit_code``; any other exception is a bug and is reported as
such, still without a traceback unless ``GW_DEBUG=1``.
"""

from __future__ import annotations

#: exit statuses (also in ``gw --help`` and the README)
EXIT_CODES = (
    (0, "success"),
    (1, "a step, secret, lock or upstream failed (one line on stderr says why)"),
    (2, "usage or config error"),
    (3, "gw check found problems"),
    (70, "internal error (a bug; GW_DEBUG=1 shows the traceback)"),
    (126, "gw exec: the command cannot be run"),
    (127, "gw exec: command not found"),
    (130, "cancelled (Ctrl-C, or a prompt was dismissed)"),
)
#: ``gw check``'s status when it found problems
CHECK_PROBLEMS = 3


class GwError(Exception):
    """Base of all expected failures. The message must never contain a secret."""

    exit_code = 1


class ConfigError(GwError):
    """The config file or a profile in it is wrong."""

    exit_code = 2


class UsageError(GwError):
    """The command line is wrong."""

    exit_code = 2


class SecretError(GwError):
    """A secret reference could not be resolved."""


class StepError(GwError):
    """A step failed talking to its upstream. Plugins raise this with a clear message."""


class NoAnswer(StepError):
    """:func:`gw.plugin.http_request` got no answer: the connection failed or timed out. Worth
    asking again, as botocore's retry handler asks again after its connection errors
    (boto/botocore botocore/retries/standard.py, ``TransientRetryableChecker``). ``reason`` says
    which in a few words, without the host: ``connection failed`` or ``no answer within 30 s``."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class RedirectRefused(StepError):
    """An upstream answered a 3xx to a request that must not follow redirects: it carries a
    secret, or its answer decides trust. ``status`` is the answer's code, ``target`` the
    ``scheme://host:port`` its ``Location`` pointed to (None without a Location). Raised by
    :func:`gw.plugin.refuse_redirect`."""

    def __init__(self, message: str, *, status: int, target: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.target = target


class CacheError(GwError):
    """The cache or state directory cannot be used safely."""


class LockTimeout(GwError):
    """Another gw process held the profile lock for too long."""


class Aborted(GwError):
    """The user cancelled a prompt."""

    exit_code = 130
