"""A cellular modem stand-in on a pseudo-terminal, answering AT commands for a VirtualUsim.

Real modems take 3GPP TS 27.007 commands on a serial port; the krypton plugin uses three:
``ATE0`` (echo off; a modem echoes each command until then), ``AT+CIMI`` (the IMSI) and
``AT+CSIM=<length>,"<hex APDU>"`` (generic SIM access, answered ``+CSIM: <length>,"<hex>"``).
A SIM that wants its PIN1 makes ``AT+CIMI`` answer ``+CME ERROR: SIM PIN required`` (27.007
error 11) until a VERIFY through ``AT+CSIM`` succeeds. ``path`` is the pty's slave device,
which pyserial (and so ``reader = "modem:<path>"``) opens like ``/dev/ttyUSB2``.
"""

from __future__ import annotations

import os
import re
import select
import threading
import tty

from .usim import VirtualUsim

__all__ = ["FakeModem"]

_CSIM = re.compile(r'^AT\+CSIM=(\d+),"([0-9A-Fa-f]*)"$')


class FakeModem:
    """Answers AT commands on a pty master like a cellular modem with echo on until ATE0.

    ``usim=None`` is a modem without a SIM; ``csim=False`` one that refuses AT+CSIM. Every
    command line received is kept in :attr:`commands` (tests assert on them).
    """

    def __init__(self, usim: VirtualUsim | None, *, csim: bool = True) -> None:
        self.usim, self.csim = usim, csim
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.echo = True
        self.commands: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-modem", daemon=True)

    def start(self) -> FakeModem:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        os.close(self.master)
        os.close(self.slave)

    def __enter__(self) -> FakeModem:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _reply(self, line: str) -> str:
        if line == "ATE0":
            self.echo = False
            return "\r\nOK\r\n"
        if line == "AT":
            return "\r\nOK\r\n"
        if self.usim is None:
            return "\r\n+CME ERROR: SIM not inserted\r\n"
        if line == "AT+CIMI":
            if self.usim.pin_state["pin_enabled"] and not self.usim.pin_verified:
                return "\r\n+CME ERROR: SIM PIN required\r\n"
            return f"\r\n{self.usim.imsi}\r\n\r\nOK\r\n"
        m = _CSIM.match(line)
        if m and self.csim and int(m.group(1)) == len(m.group(2)):
            out = self.usim.transmit(bytes.fromhex(m.group(2))).hex().upper()
            return f'\r\n+CSIM: {len(out)},"{out}"\r\n\r\nOK\r\n'
        return "\r\nERROR\r\n"

    def _run(self) -> None:
        buf = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                buf += os.read(self.master, 4096)
            except OSError:
                return
            while b"\r" in buf:
                raw, buf = buf.split(b"\r", 1)
                line = raw.decode(errors="replace").strip()
                if not line:
                    continue
                self.commands.append(line)
                answer = (line + "\r" if self.echo else "") + self._reply(line)
                try:
                    os.write(self.master, answer.encode())
                except OSError:
                    return
