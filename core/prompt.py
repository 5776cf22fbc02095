"""Asking the person at the keyboard, through ``/dev/tty``.

stdout and stderr of ``credential-process`` are pipes read by the SDK, so prompts
open the controlling terminal directly. Without a terminal, the program named by
``settings.askpass`` (like ``SSH_ASKPASS``: it gets the prompt text as its
argument and prints the answer) is used; otherwise the prompt fails clearly.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
from collections.abc import Iterator

from .errors import Aborted, SecretError


class _Signalled(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _signals_raise(signums: tuple[int, ...]) -> Iterator[None]:
    """While the terminal's echo is off, turn SIGTERM/SIGHUP into an exception so that the
    ``finally`` that restores the terminal runs (the default action would end the process
    with echo still off). Outside the main thread nothing changes."""
    import signal

    def handler(signum: int, frame: object) -> None:
        raise _Signalled(signum)

    previous: dict[int, object] = {}
    try:
        for signum in signums:
            previous[signum] = signal.signal(signum, handler)
    except ValueError:  # not the main thread
        pass
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)  # type: ignore[arg-type]


def _read_tty(label: str, secret: bool, timeout: float) -> str:
    import signal
    import termios

    fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    try:
        old = termios.tcgetattr(fd)
        with _signals_raise((signal.SIGTERM, signal.SIGHUP) if secret else ()):
            try:
                if secret:  # inside the try: a signal right after this call still restores echo
                    new = termios.tcgetattr(fd)
                    new[3] &= ~termios.ECHO
                    termios.tcsetattr(fd, termios.TCSAFLUSH, new)
                # the prompt only after the flush above (as getpass does): an answer typed as soon
                # as the prompt shows is never discarded
                os.write(fd, label.encode())
                chunks = b""
                while not chunks.endswith(b"\n"):
                    ready, _, _ = select.select([fd], [], [], timeout)
                    if not ready:
                        raise Aborted(f"no answer within {timeout:g} s")
                    data = os.read(fd, 1024)
                    if not data:
                        raise Aborted("the terminal closed")
                    chunks += data
            finally:
                if secret:
                    try:
                        termios.tcsetattr(fd, termios.TCSAFLUSH, old)
                        os.write(fd, b"\n")
                    except OSError:  # the terminal hung up: nothing left to restore
                        pass
        return chunks.decode(errors="replace").strip()
    finally:
        os.close(fd)


def _stopped(signum: int) -> Aborted:
    import signal

    error = Aborted(f"stopped by {signal.Signals(signum).name} while asking for a secret")
    error.exit_code = 128 + signum
    return error


def ask(label: str, *, secret: bool = True, askpass: str | None = None, timeout: float = 300.0,
        empty_ok: bool = False) -> str:
    """Ask for a value; returns it stripped. Raises SecretError/Aborted on failure (and on an
    empty answer, unless ``empty_ok``: a question with a default)."""
    try:
        value = _read_tty(label, secret, timeout)
    except _Signalled as exc:
        raise _stopped(exc.signum) from None
    except OSError:
        if not askpass:
            raise SecretError(
                f"cannot ask for {label.strip().rstrip(':')}: no terminal (set settings.askpass, "
                "or use a vault:/env:/totp: reference)"
            ) from None
        try:
            done = subprocess.run(
                [askpass, label], stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SecretError(f"settings.askpass program failed: {type(exc).__name__}") from None
        if done.returncode != 0:
            raise Aborted(f"the askpass program cancelled (exit {done.returncode})") from None
        value = done.stdout.decode(errors="replace").strip()
    except KeyboardInterrupt:
        raise Aborted("cancelled") from None
    if not value and not empty_ok:
        raise Aborted(f"nothing entered for {label.strip().rstrip(':')}")
    return value
