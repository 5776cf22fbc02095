"""Plug a :class:`~gw_emulators.usim.VirtualUsim` into the real PC/SC stack.

The vsmartcard ``vpcd`` driver (Debian package ``vsmartcard-vpcd``) makes pcscd show a reader
("Virtual PCD 00 00") that listens on TCP port 35963; a virtual card "inserts" itself by
connecting to it. Frames in both directions are a 2-byte big-endian length and the payload.
A 1-byte frame from the reader is a control code: 0 power off, 1 power on, 2 reset, 4 send the
ATR (answered with the ATR); every other frame is a command APDU, answered with the card's
response APDU. Closing the connection removes the card. A power cycle or reset (a program ending
its PC/SC transaction with ``SCARD_RESET_CARD``, as gw does after a PIN verification) resets the
VirtualUsim, which forgets that PIN1 was verified; the PIN retry counter stays.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import threading
import time
from typing import IO

from .usim import VirtualUsim

__all__ = ["VpcdCard", "VPCD_PORT", "PCSC_LOCK", "pcsc_lock"]

VPCD_PORT = 35963
#: One user of the one vpcd reader at a time: the test sessions and the PC/SC benchmarks take it.
PCSC_LOCK = os.environ.get("GW_TEST_PCSC_LOCK", "/tmp/gw-test-pcsc.lock")
_POWER_OFF, _POWER_ON, _RESET, _GET_ATR = 0, 1, 2, 4


class VpcdCard:
    """A virtual card connected to vpcd from a background thread, reconnecting until stopped."""

    def __init__(self, usim: VirtualUsim, host: str = "127.0.0.1", port: int = VPCD_PORT) -> None:
        self.usim = usim
        self.host, self.port = host, port
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> VpcdCard:
        """Start the card thread (returns at once; see :meth:`wait_connected`)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="vpcd-card", daemon=True)
            self._thread.start()
        return self

    def wait_connected(self, timeout: float = 5.0) -> bool:
        """Wait until the card is connected to the reader."""
        return self._connected.wait(timeout)

    def stop(self) -> None:
        """Remove the card: close the connection and end the thread."""
        self._stop.set()
        self._close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> VpcdCard:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # -- thread --------------------------------------------------------------------
    def _close(self) -> None:
        sock, self._sock = self._sock, None
        self._connected.clear()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sock = socket.create_connection((self.host, self.port), timeout=1.0)
            except OSError:
                self._stop.wait(0.2)
                continue
            sock.settimeout(None)
            self._sock = sock
            if self._stop.is_set():
                self._close()
                break
            self._connected.set()
            try:
                self._serve(sock)
            except OSError:
                pass
            finally:
                self._close()
            self._stop.wait(0.2)

    def _serve(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            frame = self._recv_frame(sock)
            if frame is None:
                return
            if len(frame) == 1:
                code = frame[0]
                if code == _GET_ATR:
                    self._send_frame(sock, self.usim.atr)
                elif code in (_POWER_ON, _RESET, _POWER_OFF):
                    self.usim.reset()
                continue
            self._send_frame(sock, self.usim.transmit(frame))

    @staticmethod
    def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            _quick_ack(sock)
            chunk = sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def _recv_frame(self, sock: socket.socket) -> bytes | None:
        head = self._recv_exact(sock, 2)
        if head is None:
            return None
        (size,) = struct.unpack(">H", head)
        return self._recv_exact(sock, size) if size else b""

    @staticmethod
    def _send_frame(sock: socket.socket, data: bytes) -> None:
        sock.sendall(struct.pack(">H", len(data)) + data)


def pcsc_lock(timeout: float = 900.0, path: str = PCSC_LOCK) -> IO[str] | None:
    """The machine-wide PC/SC lock, held until the returned file is closed; None when another
    user kept it for ``timeout`` seconds (pcscd and the vpcd port are one per machine)."""
    handle = open(path, "a+")
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() > deadline:
                handle.close()
                return None
            time.sleep(0.5)


def _quick_ack(sock: socket.socket) -> None:
    """ACK at once (Linux; the kernel turns it off again, hence before every read).

    pcscd's vpcd driver writes a frame's 2-byte length and its bytes in two ``send`` calls; with
    Nagle on its side the second waits for our ACK of the first, which a delayed ACK holds back
    up to 40 ms: every APDU would take 40 ms longer than the card, which no USB reader does.
    """
    quickack = getattr(socket, "TCP_QUICKACK", None)
    if quickack is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)
        except OSError:
            pass
