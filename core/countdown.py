"""Waiting for a fresh one-time code, visibly.

On a terminal (stderr, or ``/dev/tty`` when stderr is captured, as the other wait notices
do) a line counts the seconds down and is erased when the wait ends. With no terminal at
all, gw says once on stderr that it is waiting and why, so a log shows the pause.
"""

from __future__ import annotations

import os
import sys
import time


def count_down(ui, seconds: float, what: str, why: str) -> None:
    """Sleep ``seconds`` while showing ``waiting N s for WHAT (WHY)``; the caller's own
    sleep afterwards covers any rest."""
    if ui.quiet or seconds <= 0:
        return
    deadline = time.monotonic() + seconds
    write = _terminal_writer(ui)
    if write is None:
        print(f"gw: waiting {seconds:.0f} s for {what} ({why})", file=sys.stderr, flush=True)
        return
    try:
        while (left := deadline - time.monotonic()) > 0:
            write(f"\rgw: waiting {left:3.0f} s for {what} ({why})\x1b[K")
            time.sleep(min(1.0, left) if left % 1 < 0.05 else left % 1)
        write("\r\x1b[K")
    except OSError:  # the terminal went away: the caller still waits
        pass


def _terminal_writer(ui):
    if ui.stderr_is_tty:
        def to_stderr(text: str) -> None:
            sys.stderr.write(ui.scrubber.scrub(text))
            sys.stderr.flush()

        return to_stderr
    try:
        fd = os.open("/dev/tty", os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:  # no controlling terminal
        return None

    def to_tty(text: str) -> None:
        os.write(fd, ui.scrubber.scrub(text).encode("utf-8", "replace"))
        if text == "\r\x1b[K":
            os.close(fd)

    return to_tty
