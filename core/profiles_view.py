"""``gw profiles``: the rows, relative times, and a table that fits the terminal.

A step's result is cached under its chain prefix (shared by every profile starting the
same way), except the last step's, which is the profile's own entry, and long-term keys,
which are never written. So counting only the shared entries of the steps before the
last (as gw once did) found nothing for the usual two-step chains (keys -> role): the
count here takes the profile's own entry for the last step.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from typing import Any

#: ``expires``: of the profile's own cached credentials; ``cached``: how many of its steps have a cached result
COLUMNS = ["profile", "steps", "output", "expires", "cached"]


def span(seconds: float) -> str:
    """A duration as a person says it: 45 s, 56 min, 11 h 59 min, 3 d 4 h."""
    seconds = int(seconds)
    if seconds < 90:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def relative(epoch: float, now: float | None = None) -> str:
    """``in 56 min`` or ``expired 3 min ago``."""
    left = epoch - (time.time() if now is None else now)
    return f"in {span(left)}" if left > 0 else f"expired {span(-left)} ago"


def iso(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if epoch else None


def profile_rows(app) -> list[dict[str, Any]]:
    """One document per profile (what ``--json`` prints; the table shows the same)."""
    from .errors import GwError
    from .store import prefix_digests, prefix_name

    docs = []
    now = time.time()
    for profile in app.config.profiles.values():
        steps = [step.get("use", "?") for step in profile.steps]
        try:
            kind: str | None = app.output_kind(profile)
        except GwError:
            kind = None
        header = app.store.header(profile.name)
        expires = header.expires_at if header and header.digest == profile.digest else None
        shared = []
        for index, digest in enumerate(prefix_digests(profile.steps)[:-1]):
            entry = app.store.header(prefix_name(digest))
            if entry and entry.digest == digest and entry.expires_at > now:
                shared.append({"step": steps[index], "until": iso(entry.expires_at)})
        cached = len(shared) + (1 if expires and expires > now else 0)
        docs.append({"name": profile.name, "description": profile.description, "region": profile.region,
                     "steps": steps, "output": kind, "valid": kind is not None,
                     "cached_until": iso(expires) if expires and expires > now else None,
                     "expired_at": iso(expires) if expires and expires <= now else None,
                     "steps_cached": cached, "shared_steps_cached": shared, "_expires": expires})
    return docs


def show(app, docs: list[dict[str, Any]]) -> None:
    """A table sized to the terminal (names never cut); tab-separated rows on a pipe."""
    rows = []
    tty = sys.stdout.isatty()
    for doc in docs:
        expires = doc["_expires"]
        when = "-" if not expires else relative(expires) if tty else (doc["cached_until"] or "expired")
        rows.append([doc["name"], " -> ".join(doc["steps"]), doc["output"] or "invalid (run gw check)", when,
                     f"{doc['steps_cached']} of {len(doc['steps'])}"])
    if not tty:
        print("\t".join(COLUMNS))
        for row in rows:
            print("\t".join(cell.replace("\t", " ").replace("\n", " ") for cell in row))
        sys.stdout.flush()
        return
    import shutil
    import textwrap

    width = shutil.get_terminal_size().columns
    print(f"profiles in {app.config.path}")
    order = [0, 2, 3, 4]  # the steps (column 1) take what is left, or a line of their own
    widths = {i: max(len(COLUMNS[i]), *(len(row[i]) for row in rows)) for i in order}
    left = width - sum(widths.values()) - 2 * len(order)
    inline = left >= 24
    if sum(widths.values()) + 2 * len(order) > width:  # not even without the steps: one block per profile
        for row in rows:
            print(row[0])
            print(f"    {row[2]}, expires {row[3]}, {row[4]} steps cached")
            for more in textwrap.wrap(row[1], width - 4, break_on_hyphens=False):
                print("    " + more)
        return
    header = [COLUMNS[i].ljust(widths[i]) for i in order]
    if inline:
        header.insert(1, COLUMNS[1].ljust(left))
    print("\x1b[1m" + "  ".join(header).rstrip() + "\x1b[0m")
    for row in rows:
        steps = textwrap.wrap(row[1], left if inline else width - 4, break_on_hyphens=False) or [""]
        cells = [row[i].ljust(widths[i]) for i in order]
        if inline:
            cells.insert(1, steps[0].ljust(left))
            print("  ".join(cells).rstrip())
            pad = " " * (widths[0] + 2)
            for more in steps[1:]:
                print(pad + more)
        else:
            print("  ".join(cells).rstrip())
            for more in steps:
                print("    " + more)
