"""This computer's clock against an upstream's (re-exported by ``gw.plugin``).

Short-lived credentials and one-time codes depend on the local clock. Every HTTP
answer carries the server's time in its ``Date`` header (RFC 9110 section 6.6.1), so a
step can say plainly when the clock is off, and by how much, instead of handing out
credentials that are already expired or sending codes the upstream must refuse.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from .errors import StepError

#: Beyond this (seconds) the clocks disagree enough to mention: one TOTP step, and far
#: more than the Date header's one-second resolution plus a slow answer.
CLOCK_TOLERANCE = 30.0


def clock_offset(date_header: Any, now: float | None = None) -> float | None:
    """Seconds this computer's clock is ahead of the server that sent ``date_header``
    (negative: behind); None without a readable ``Date``."""
    if not isinstance(date_header, str) or not date_header:
        return None  # before the import: email.utils costs ms on every miss that has no header to read
    from email.utils import parsedate_to_datetime

    try:
        server = parsedate_to_datetime(date_header)
    except (TypeError, ValueError, IndexError):
        return None
    if server.tzinfo is None:
        return None
    return (time.time() if now is None else now) - server.timestamp()


def describe_offset(offset: float) -> str:
    """``2 h 5 min ahead`` / ``40 s behind``."""
    seconds = round(abs(offset))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        amount = f"{hours} h {minutes} min"
    elif minutes:
        amount = f"{minutes} min {secs} s" if secs and minutes < 10 else f"{minutes} min"
    else:
        amount = f"{secs} s"
    return f"{amount} {'ahead' if offset > 0 else 'behind'}"


def clock_note(upstream: str, date_header: Any, now: float | None = None) -> str:
    """``"; this computer's clock is 2 h 0 min ahead of <upstream>'s (by its Date header): set it right
    (e.g. enable NTP)"`` when the clocks disagree by more than :data:`CLOCK_TOLERANCE`, else ``""``.
    For the end of an error line about a refused code or signature."""
    offset = clock_offset(date_header, now)
    if offset is None or abs(offset) <= CLOCK_TOLERANCE:
        return ""
    return (f"; this computer's clock is {describe_offset(offset)} of {upstream}'s (by its Date header): "
            "set it right (e.g. enable NTP)")


def check_expiry(expires: datetime | float, upstream: str, date_header: Any = None, *, warn: Any = None,
                 now: float | None = None, what: str = "credentials") -> None:
    """Refuse ``what`` that this computer's clock says are already expired: a :class:`StepError`
    saying so, and by how much the clock is off when ``date_header`` (the answer's ``Date``)
    tells. ``warn`` (e.g. ``ctx.warn``) gets a line when they are still valid but the clocks
    disagree by more than :data:`CLOCK_TOLERANCE`."""
    at = expires.timestamp() if isinstance(expires, datetime) else float(expires)
    current = time.time() if now is None else now
    note = clock_note(upstream, date_header, current)
    if at <= current:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
        cause = note[2:] if note else "check this computer's clock"
        raise StepError(f"{upstream} just issued {what} expiring at {stamp}, already past by this computer's "
                        f"clock; {cause}")
    if note and warn is not None:
        warn(f"{what} from {upstream}: {note[2:]}")
