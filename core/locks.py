"""Per-profile inter-process locks with ``fcntl.flock``.

The kernel drops a flock when its holder exits, however it dies, so a killed
gw never leaves a stale lock behind; the lock files themselves are empty and
harmless. Waiting is bounded by ``settings.lock_timeout``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator

from .errors import LockTimeout
from .paths import ensure_dir


@contextlib.contextmanager
def file_lock(
    path: str,
    timeout: float,
    what: str,
    on_wait: Callable[[], None] | None = None,
    on_unavailable: Callable[[str], None] | None = None,
    notice_after: float = 1.0,
) -> Iterator[bool]:
    """Hold an exclusive lock on ``path``; yields True, or False if locking is impossible.

    ``on_wait`` is called once, when the wait has lasted ``notice_after`` seconds (a
    short wait is not worth a line).

    A state directory that cannot hold lock files (read-only) degrades to no
    locking, reported through ``on_unavailable``, rather than failing the command.
    """
    try:
        ensure_dir(os.path.dirname(path))  # an unsafe lock directory is refused (CacheError), not skipped
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)
    except OSError as exc:
        if on_unavailable:
            on_unavailable(f"cannot create lock file {path} ({exc.strerror}); continuing without a lock")
        yield False
        return
    try:
        started = time.monotonic()
        deadline = started + timeout
        waited = False
        delay = 0.01
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited and on_wait and time.monotonic() - started >= notice_after:
                    on_wait()
                    waited = True
                if time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"gave up after {timeout:g} s waiting for another gw process busy with {what}; "
                        "try again, or raise settings.lock_timeout"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 1.5, 0.1)
        yield True
    finally:
        os.close(fd)  # releases the lock
