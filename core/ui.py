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
    """Replaces known secret values in text with ``****``, in every form a message can carry them.

    For each secret it knows the raw value, the value without surrounding
    whitespace/CR/LF, Python's ``repr`` of it as text and as bytes (what
    ``http.client`` prints), its JSON escaping (ASCII and not), and its URL
    encodings (upper- and lower-case escapes). Any run of text in which every
    :data:`MIN_CUT`-character window is a piece of one of those forms is scrubbed
    as a whole, so a form cut short at either end (``message[:200]``,
    ``message[-200:]``), a slice from its middle, or pieces of two forms side by
    side never leave a readable part behind.
    """

    MIN_CUT = 8

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._forms: list[str] = []  # shorter than MIN_CUT: replaced only where whole
        self._pieces: set[str] = set()  # every MIN_CUT-character window of every longer form

    def add(self, value: str | None) -> None:
        if not value or len(value) < 4 or value in self._secrets:
            return
        self._secrets.add(value)
        cut = self.MIN_CUT
        for form in self.forms(value):
            if len(form) >= cut:
                self._pieces.update(form[i:i + cut] for i in range(len(form) - cut + 1))
            elif len(form) >= 4 and form not in self._forms:
                self._forms.append(form)
        self._forms.sort(key=len, reverse=True)

    @staticmethod
    def forms(value: str) -> list[str]:
        """Every spelling of ``value`` a message may contain."""
        import json
        import re
        from urllib.parse import quote, quote_plus

        found = []
        for v in {value, value.strip(), value.strip("\r\n")}:
            if not v:
                continue
            found += [
                v,
                repr(v)[1:-1],
                repr(v.encode("utf-8", "surrogatepass"))[2:-1],
                json.dumps(v)[1:-1],
                json.dumps(v, ensure_ascii=False)[1:-1],
                quote(v, safe=""),
                quote(v),
                quote_plus(v),
                re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), quote(v, safe="")),
            ]
        return found

    def scrub(self, text: str) -> str:
        cut = self.MIN_CUT
        if self._pieces and len(text) >= cut:
            spans: list[list[int]] = []
            for i in range(len(text) - cut + 1):
                if text[i:i + cut] in self._pieces:
                    if spans and i <= spans[-1][1]:
                        spans[-1][1] = i + cut
                    else:
                        spans.append([i, i + cut])
            for start, end in reversed(spans):
                text = text[:start] + "****" + text[end:]
        for form in self._forms:
            if form in text:
                text = text.replace(form, "****")
        return text


class UI:
    """gw's messages to people.

    On a terminal's stderr: progress (``info``), spinners (``status``) and waits
    (``wait``). When stderr is NOT a terminal (gw runs under an SDK, soracom-cli or a
    script that captures it), a wait longer than a second and the final error line are
    also written to ``/dev/tty`` when the process has a controlling terminal, so the
    person sees why nothing happens (protocols.md sections 1 and 3). Everything passes
    through the scrubber first; with no terminal nothing is written anywhere extra.
    """

    TTY_DELAY = 1.0  # seconds a wait must last before it is worth a line on /dev/tty

    def __init__(self) -> None:
        self.scrubber = Scrubber()
        self._console: Any = None
        self.quiet = bool(os.environ.get("GW_QUIET"))
        self.stderr_is_tty = sys.stderr.isatty()
        self.interactive = self.stderr_is_tty and not self.quiet
        self.errors_on_tty = True  # False where the caller shows gw's stderr itself (credential_process)

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

    def wait(self, message: str) -> None:
        """Tell the person gw is waiting (a lock, a fresh one-time code, an approval).

        On a terminal's stderr like :meth:`info`; when stderr is captured, on ``/dev/tty``.
        """
        if self.interactive:
            self.info(message)
        elif not self.quiet:
            self.to_tty(f"gw: {message}")

    def warn(self, message: str) -> None:
        """A warning, always shown, plain text."""
        print(f"gw: warning: {one_line(self.scrubber.scrub(message))}", file=sys.stderr, flush=True)

    def error(self, message: str) -> None:
        """The final one-line error: on stderr, and on ``/dev/tty`` when stderr is not a terminal
        (unless :attr:`errors_on_tty` is off: the caller shows gw's stderr itself)."""
        line = f"gw: {one_line(self.scrubber.scrub(message))}"
        print(line, file=sys.stderr, flush=True)
        if self.errors_on_tty:
            self.to_tty(line)

    def to_tty(self, line: str) -> bool:
        """Write one scrubbed line to the controlling terminal when stderr is not that terminal.

        Returns False (and writes nothing) when stderr is a terminal or there is none.
        """
        if self.stderr_is_tty:
            return False
        try:
            fd = os.open("/dev/tty", os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError:  # no controlling terminal (a daemon, CI, start_new_session)
            return False
        try:
            os.write(fd, (one_line(self.scrubber.scrub(line)) + "\r\n").encode("utf-8", "replace"))
            return True
        except OSError:
            return False
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def status(self, message: str) -> Iterator[None]:
        """A spinner while the block runs on a terminal; when stderr is captured, a line on
        ``/dev/tty`` if the block takes longer than :attr:`TTY_DELAY`."""
        if not self.interactive:
            if self.quiet or self.stderr_is_tty:
                yield
                return
            import threading

            timer = threading.Timer(self.TTY_DELAY, self.to_tty, args=(f"gw: {message}",))
            timer.daemon = True
            timer.start()
            try:
                yield
            finally:
                timer.cancel()
            return
        from rich.markup import escape

        with self.console.status(escape(self.scrubber.scrub(message))):
            yield
