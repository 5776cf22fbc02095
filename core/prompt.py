"""Asking the person at the keyboard, through ``/dev/tty``.

stdout and stderr of ``credential-process`` are pipes read by the SDK, so prompts
open the controlling terminal directly. Without a terminal, the program named by
``settings.askpass`` (like ``SSH_ASKPASS``: it gets the prompt text as its
argument and prints the answer) is used; otherwise the prompt fails clearly.
"""

from __future__ import annotations

import os
import select
import subprocess

from .errors import Aborted, SecretError


def _read_tty(label: str, secret: bool, timeout: float) -> str:
    import termios

    fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    try:
        os.write(fd, label.encode())
        old = termios.tcgetattr(fd)
        if secret:
            new = termios.tcgetattr(fd)
            new[3] &= ~termios.ECHO
            termios.tcsetattr(fd, termios.TCSAFLUSH, new)
        try:
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
                termios.tcsetattr(fd, termios.TCSAFLUSH, old)
                os.write(fd, b"\n")
        return chunks.decode(errors="replace").strip()
    finally:
        os.close(fd)


def ask(label: str, *, secret: bool = True, askpass: str | None = None, timeout: float = 300.0) -> str:
    """Ask for a value; returns it stripped. Raises SecretError/Aborted on failure."""
    try:
        value = _read_tty(label, secret, timeout)
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
    if not value:
        raise Aborted(f"nothing entered for {label.strip().rstrip(':')}")
    return value
