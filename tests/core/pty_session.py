"""A program on a new pseudo-terminal, driven like a person: wait for text, type a line."""

from __future__ import annotations

import os
import pty
import re
import select
import time


class PtySession:
    """``argv`` on a new pty (its controlling terminal, stdin, stdout and stderr)."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str | None = None, columns: int = 80) -> None:
        env = {k: v for k, v in env.items() if k != "GW_QUIET"} | {"TERM": "xterm", "COLUMNS": str(columns)}
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            try:
                if cwd:
                    os.chdir(cwd)
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        self.seen = ""
        self.status: int | None = None

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.fd, 4096)
        except OSError:
            return False
        if not data:
            return False
        self.seen += data.decode(errors="replace").replace("\r", "")
        return True

    def expect(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """Wait until the screen so far matches ``pattern`` (a regex); the match."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.seen)
            if found:
                return found
            if not self._read(0.2):
                break
        found = re.search(pattern, self.seen)
        assert found, f"no {pattern!r} on the terminal:\n{self.seen}"
        return found

    def send(self, line: str) -> None:
        os.write(self.fd, (line + "\n").encode())

    def wait(self, timeout: float = 60) -> int:
        """Read to the end and return the exit status."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._read(0.2):
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                while select.select([self.fd], [], [], 0.1)[0] and self._read(0):
                    pass
                break
        if self.status is None:
            if time.monotonic() >= deadline:
                os.kill(self.pid, 9)  # still running at the deadline: the test fails below
            _, status = os.waitpid(self.pid, 0)
            self.status = None if time.monotonic() >= deadline else os.waitstatus_to_exitcode(status)
        os.close(self.fd)
        assert self.status is not None, self.seen
        return self.status
