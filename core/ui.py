"""Human output on stderr, and scrubbing of secrets from every message.

Progress and colour (rich) appear only when stderr is a terminal; warnings and
errors are always plain one-liners. Every message passes through the
:class:`Scrubber`, which knows each secret value gw has handled in this run.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any


def one_line(text: str) -> str:
    """``text`` as a single line: upstream messages (e.g. a child process's stderr quoted
    by botocore) may carry newlines, but every gw warning and error is one line."""
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


class Scrubber:
    """Replaces known secret values in text with ``****``."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, value: str | None) -> None:
        if value and len(value) >= 4:
            self._secrets.add(value)

    def scrub(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, "****")
        return text


class UI:
    def __init__(self) -> None:
        self.scrubber = Scrubber()
        self._console: Any = None
        self.interactive = sys.stderr.isatty() and not os.environ.get("GW_QUIET")

    @property
    def console(self) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True, highlight=False)
        return self._console

    def info(self, message: str) -> None:
        """A progress line, only on a terminal."""
        if self.interactive:
            from rich.markup import escape

            self.console.print(f"[dim]{escape(self.scrubber.scrub(message))}[/dim]")

    def warn(self, message: str) -> None:
        """A warning, always shown, plain text."""
        print(f"gw: warning: {one_line(self.scrubber.scrub(message))}", file=sys.stderr, flush=True)

    def error(self, message: str) -> None:
        print(f"gw: {one_line(self.scrubber.scrub(message))}", file=sys.stderr, flush=True)

    @contextlib.contextmanager
    def status(self, message: str) -> Iterator[None]:
        """A spinner while the block runs, only on a terminal."""
        if not self.interactive:
            yield
            return
        from rich.markup import escape

        with self.console.status(escape(self.scrubber.scrub(message))):
            yield
