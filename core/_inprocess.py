"""Run a ``gw`` command line inside the calling process, as a test would run the executable.

``cli.main(argv)`` already returns the exit status instead of ending the process.
:func:`run_in_process` adds what a fresh process would give it: stdout and stderr
captured at the file-descriptor level (the hot path writes with ``os.write``), stdin
from the given text or ``/dev/null``, exactly the given environment, its own working
directory, umask and signal dispositions, no controlling terminal, and an import path
with ``PYTHONPATH``'s entries. Everything is put back afterwards, so one run leaks
nothing into the next. What cannot happen in a caller's process (``os._exec*``,
``os._exit``) raises :class:`InProcessExit`: such a test needs the real executable.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGPIPE, signal.SIGXFSZ)
_PROCESS_ENDERS = ("_exit", "execv", "execve", "execvp", "execvpe", "execl", "execle", "execlp", "execlpe", "fork")


class InProcessExit(BaseException):
    """gw tried to end or replace the process: this command line needs ``GwHome.run``.

    A ``BaseException``, so that no ``except Exception`` of gw's turns it into an exit status.
    """


def run_in_process(argv: list[str], env: dict[str, str], stdin: bytes | str | None = None, *,
                   cwd: str | Path | None = None, timeout: float | None = None) -> subprocess.CompletedProcess:
    """``gw ARGV`` through ``gw.cli.main`` in this process, with exactly ``env`` as its environment
    and ``stdin`` as its input (``/dev/null`` when None); the result of ``subprocess.run(text=True)``.

    Any exception but SystemExit escapes (and so fails the test): gw must turn every failure into
    an exit status. ``timeout`` (main thread only) raises ``subprocess.TimeoutExpired`` as
    ``subprocess.run`` does. ``cwd`` defaults to the caller's.
    """
    data = stdin.encode() if isinstance(stdin, str) else stdin
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as inp:
        if data is not None:
            inp.write(data)
            inp.seek(0)
        with _isolated(env, cwd or os.getcwd()), _redirected(inp.fileno() if data is not None else None,
                                                            out.fileno(), err.fileno()):
            with _deadline(argv, timeout):
                code = _main(argv)
        return subprocess.CompletedProcess(["gw", *argv], code, _text(out), _text(err))


def _text(file: Any) -> str:
    """What ``subprocess.run(text=True)`` makes of the bytes: decoded, universal newlines."""
    file.seek(0)
    return io.TextIOWrapper(io.BytesIO(file.read()), encoding="utf-8", errors="strict", newline=None).read()


def _main(argv: list[str]) -> int:
    from .cli import main

    try:
        return main(argv)
    except SystemExit as exc:  # argparse's --help, --version and usage errors
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1


class _Timeout(BaseException):
    pass


@contextlib.contextmanager
def _deadline(argv: list[str], timeout: float | None) -> Iterator[None]:
    if not timeout or signal.getsignal(signal.SIGALRM) not in (signal.SIG_DFL, None):
        yield
        return

    def expired(signum: int, frame: object) -> None:
        raise _Timeout

    signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        yield
    except _Timeout:
        raise subprocess.TimeoutExpired(["gw", *argv], timeout) from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)


@contextlib.contextmanager
def _isolated(env: dict[str, str], cwd: str | Path) -> Iterator[None]:
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_path = list(sys.path)
    saved_umask = os.umask(0o022)
    os.umask(saved_umask)
    saved_signals = {s: signal.getsignal(s) for s in _SIGNALS}
    saved_os = {name: getattr(os, name) for name in _PROCESS_ENDERS if hasattr(os, name)}
    from . import prompt

    saved_tty = prompt._read_tty
    try:
        os.environ.clear()
        os.environ.update(env)
        os.chdir(cwd)
        sys.path[:0] = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        for name in saved_os:
            setattr(os, name, _refuse(name))
        prompt._read_tty = _no_terminal
        yield
    finally:
        prompt._read_tty = saved_tty
        for name, function in saved_os.items():
            setattr(os, name, function)
        for signum, handler in saved_signals.items():
            if handler is not None:
                signal.signal(signum, handler)
        os.umask(saved_umask)
        sys.path[:] = saved_path
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


def _refuse(name: str) -> Any:
    def refused(*args: object, **kwargs: object) -> None:
        raise InProcessExit(f"os.{name} in an in-process run: use GwHome.run (a real process) for this test")

    return refused


def _no_terminal(label: str, secret: bool, timeout: float) -> str:
    """As under ``start_new_session``: opening /dev/tty fails (ENXIO), whatever terminal pytest has."""
    raise OSError(6, "No such device or address", "/dev/tty")


@contextlib.contextmanager
def _redirected(stdin: int | None, stdout: int, stderr: int) -> Iterator[None]:
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved_fds = [os.dup(0), os.dup(1), os.dup(2)]
    saved_streams = (sys.stdin, sys.stdout, sys.stderr)
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(stdin if stdin is not None else devnull, 0)
        os.dup2(stdout, 1)
        os.dup2(stderr, 2)
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", write_through=True)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", write_through=True)
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        sys.stdin, sys.stdout, sys.stderr = saved_streams
        for fd, saved in enumerate(saved_fds):
            os.dup2(saved, fd)
            os.close(saved)
        os.close(devnull)
