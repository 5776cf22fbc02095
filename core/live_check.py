"""``gw check --live``: resolve each profile for real and show a ✓/✗ table.

Per profile: whether the credentials came from the cache or were fetched, how long that
took, how long they are good for, and the first error. Exit status 3 when any failed.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from .errors import GwError


def check_profile(app, name: str) -> dict[str, Any]:
    """Resolve ``name`` once; what happened, as a row."""
    started = time.monotonic()
    row: dict[str, Any] = {"profile": name, "ok": False, "source": None, "seconds": None, "expires_at": None,
                           "error": None}
    try:
        profile = app.config.profile(name)
        header = app.store.header(name)
        cached = bool(header and header.digest == profile.digest and header.fresh())
        credential = app.resolve(name)
    except GwError as exc:
        row["error"] = str(exc)
    except Exception as exc:  # a plugin's bug: still one line for this profile, the others go on
        row["error"] = f"internal error: {type(exc).__name__}: {exc}"
    else:
        expiration = getattr(credential, "expiration", None)
        row.update(ok=True, source="cached" if cached else "fetched",
                   expires_at=expiration.timestamp() if expiration else None)
    row["seconds"] = round(time.monotonic() - started, 3)
    if row["error"]:
        row["error"] = app.ui.scrubber.scrub(row["error"].splitlines()[0] if row["error"] else "")
    return row


def run(ns, app) -> int:
    from .profiles_view import iso, relative

    names = [ns.profile] if ns.profile else list(app.config.profiles)
    rows = [check_profile(app, name) for name in names]
    if ns.json:
        import json

        app.emit(json.dumps([{**row, "expires_at": iso(row["expires_at"])} for row in rows], indent=2))
    else:
        table = [["", "profile", "result", "time", "expires", "error"]]
        for row in rows:
            expires = relative(row["expires_at"]) if row["expires_at"] else "never" if row["ok"] else "-"
            table.append(["✓" if row["ok"] else "✗", row["profile"], row["source"] or "failed",
                          f"{row['seconds']:.2f} s", expires, row["error"] or ""])
        widths = [max(len(r[i]) for r in table) for i in range(len(table[0]) - 1)]
        for r in table:
            app.emit("  ".join(cell.ljust(width) for cell, width in zip(r, widths, strict=False)).rstrip()
                     + ("  " + r[-1] if r[-1] else ""))
        sys.stdout.flush()
    failed = sum(not row["ok"] for row in rows)
    if failed:
        app.ui.error(f"{failed} of {len(rows)} profile(s) failed")
    return 3 if failed else 0
