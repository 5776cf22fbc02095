"""The per-user forwarder daemon of ``gw soracom``: one :class:`~.forwarder.Forwarder` that
outlives a call, so a call costs gw only its cache hit and one registration, and the TLS
connections to the API stay warm between calls.

Started by :func:`.control.connect` (argv: the runtime directory, the idle timeout; the
environment empty: no secret is ever in either), with its control socket already bound as
file descriptor 3. Each control connection (from gw's own uid only) registers one call for as
long as it stays open (:mod:`.control` describes the exchange). The daemon exits after
``idle`` seconds without a call (``control.IDLE_EXIT``, 10 minutes; ``$GW_SORACOM_FORWARDER_IDLE``
of the call that starts it), or at once when its socket file is gone or replaced. It writes
no file and prints nothing.

:func:`serve_call` is also what a call runs in a thread of its own when no daemon can run
(the runtime directory cannot be made private, say): the same exchange over a socket pair.
"""

from __future__ import annotations

import _socket
import os
import sys
import threading
import time

from . import control
from .forwarder import Forwarder, Session, tls_from

MAX_CALLS = 256  # control connections at once
REFUSED_HOLD = 30.0  # seconds a refused first request waits for gw to stop the child
TICK = 1.0
INLINE_READ = 0.05  # seconds the accepting thread waits for a registration before a thread takes over


class Calls:
    """The daemon's bookkeeping: calls open now, and when the last one ended."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open = 0
        self.last = time.monotonic()

    def enter(self) -> bool:
        with self.lock:
            if self.open >= MAX_CALLS:
                return False
            self.open += 1
            return True

    def leave(self) -> None:
        with self.lock:
            self.open -= 1
            self.last = time.monotonic()

    def idle_for(self) -> float:
        with self.lock:
            return 0.0 if self.open else time.monotonic() - self.last


class Call:
    """One call over its control connection: register, report as it goes, forget at the end."""

    def __init__(self, forwarder: Forwarder, sock: _socket.socket) -> None:
        self.forwarder = forwarder
        self.channel = control.Channel(sock)
        self.session: Session | None = None
        self.finished = threading.Event()
        self._sending = threading.Lock()

    def report(self, *fields: str) -> None:
        try:
            with self._sending:
                self.channel.send(*fields)
        except (OSError, control.ControlError):
            pass

    def refused_first(self) -> None:  # from a worker: tell gw, hold the request until gw has stopped the child
        self.report("refused")
        self.finished.wait(REFUSED_HOLD)

    def register(self, timeout: float) -> bool | None:
        """Read the registration and answer it: True when registered, False when the call is
        over (refused, gone), None when it did not arrive within ``timeout`` (yet)."""
        try:
            message = self.channel.read(timeout)
        except TimeoutError:
            return None
        except (OSError, control.ControlError):
            return False
        if not message or message[0] != "register" or len(message) != 8:
            return False
        _, endpoint, api_key, token, operator_id, bundle, env_file, env_dir = message
        try:
            session = self.forwarder.register(endpoint, api_key, token, tls_from(bundle, env_file, env_dir), operator_id)
        except ValueError as exc:
            self.report("error", str(exc))
            return False
        session.on_refused_first = self.refused_first
        session.on_event = self.report
        self.session = session
        self.report("ok", str(self.forwarder.port), session.key_placeholder, session.token_placeholder)
        return True

    def hold(self) -> None:
        """Until gw hangs up (soracom-cli has exited) or is gone; then the session is forgotten."""
        try:
            if self.session is not None:
                while self.channel.read(None) is not None:
                    pass
        except (OSError, control.ControlError):
            pass
        finally:
            self.end()

    def end(self) -> None:
        if self.session is not None:
            self.forwarder.unregister(self.session)
        self.finished.set()
        self.channel.close()


def serve_call(forwarder: Forwarder, sock: _socket.socket) -> None:
    """One call over its control connection ``sock`` (:class:`Call`), from start to end."""
    call = Call(forwarder, sock)
    if call.register(control.REPLY_TIMEOUT):
        call.hold()
    else:
        call.end()


def _same_socket(dir_fd: int, ino: int) -> bool:
    try:
        return os.stat(control.in_dir(dir_fd, control.SOCKET_NAME)).st_ino == ino
    except OSError:
        return False


def _retire(listener: _socket.socket, dir_fd: int, ino: int, calls: Calls, idle: float) -> bool:
    """Stop taking calls when idle: under the start lock, so a call either reached this daemon
    before or finds no socket and starts a new one. False: a call came meanwhile."""
    import fcntl

    lock = os.open(control.in_dir(dir_fd, control.LOCK_NAME), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if calls.idle_for() < idle:
            return False
        if _same_socket(dir_fd, ino):
            os.unlink(control.in_dir(dir_fd, control.SOCKET_NAME))
        listener.close()
        return True
    finally:
        os.close(lock)


def main() -> None:
    """The daemon (see the module docstring); never returns."""
    try:
        runtime_dir, idle = sys.argv[1], float(sys.argv[2])
        os.chdir("/")
        dir_fd = control.open_runtime_dir(runtime_dir)
        listener = _socket.socket(fileno=3)
        ino = os.stat(control.in_dir(dir_fd, control.SOCKET_NAME)).st_ino
        forwarder = Forwarder().start()
        calls = Calls()
        uid = os.getuid()
        listener.settimeout(min(TICK, idle))
        while True:
            try:
                fd, _ = listener._accept()  # type: ignore[attr-defined]  # _socket's accept: (fd, address)
            except TimeoutError:
                if not _same_socket(dir_fd, ino):
                    break  # replaced or removed: another daemon serves, or no one wants one
                if calls.idle_for() >= idle and _retire(listener, dir_fd, ino, calls, idle):
                    break
                continue
            except OSError:  # out of descriptors, say: try again shortly
                time.sleep(0.05)
                continue
            sock = _socket.socket(fileno=fd)
            if control.peer_uid(sock) != uid or not calls.enter():
                sock.close()
                continue
            # gw sent its registration right after connecting: answered here, gw waits for no new thread
            call = Call(forwarder, sock)
            registered = call.register(INLINE_READ)
            if registered is False:
                call.end()
                calls.leave()
                continue

            def rest(call: Call = call, registered: bool | None = registered) -> None:
                try:
                    if registered or call.register(control.REPLY_TIMEOUT):
                        call.hold()
                    else:
                        call.end()
                finally:
                    calls.leave()

            threading.Thread(target=rest, name="gw-forwarder-call", daemon=True).start()
    except BaseException:  # noqa: BLE001 - nothing to print to, and nothing to leave behind
        pass
    os._exit(0)
