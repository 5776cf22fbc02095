"""The control channel between ``gw soracom`` and the per-user forwarder daemon (:mod:`.daemon`).

The daemon listens on a Unix socket in a private runtime directory (``<state dir>/run``,
0700, gw's own): only gw's user can reach it, and each side checks the other's uid
(``SO_PEERCRED``). One control connection is one call:

1. gw sends the session (endpoint, API key, token, operator ID, CA file and directory);
   the daemon answers with its TCP port and the call's two placeholders;
2. gw starts soracom-cli; should the API refuse the session on soracom-cli's FIRST request,
   the daemon sends ``refused`` and holds that request unanswered: gw kills soracom-cli.
   A later refusal (``later CODE``), a logout answered 2xx (``logout``) and notes (``note
   TEXT``) are sent before soracom-cli gets that answer, so they are in gw's socket buffer by
   the time soracom-cli exits;
3. once soracom-cli has exited gw reads what is there and hangs up; the daemon forgets the
   session.

The session exists only while its control connection is open: gw killed means the
placeholders are refused from then on. Messages are one line each: fields separated by
NUL, ended by a newline (neither may occur in a field). The daemon is started on demand under
a lock (:func:`connect`): gw binds the socket itself and hands it to the daemon, so the
socket answers from the moment it exists and parallel calls find one daemon.

Standard library only, and little of it (no threading, json or re): the fast path runs it.
"""

from __future__ import annotations

import _socket
import os
import sys

SOCKET_NAME = "soracom-forwarder.sock"
LOCK_NAME = "soracom-forwarder.lock"
IDLE_ENV = "GW_SORACOM_FORWARDER_IDLE"
IDLE_EXIT = 600.0  # seconds the daemon stays without calls before it exits
REPLY_TIMEOUT = 10.0  # seconds for the daemon to answer a registration or ``done``
START_TIMEOUT = 10.0  # seconds waiting for the start lock


class ControlError(Exception):
    """The daemon could not be reached or refused the call (the message says why, no secret)."""


def encode(*fields: str) -> bytes:
    """One message: ``fields`` joined by NUL, ended by a newline."""
    if any("\0" in f or "\n" in f for f in fields):
        raise ControlError("a field holds a NUL or a newline")
    return ("\0".join(fields) + "\n").encode()


def decode(line: bytes) -> list[str]:
    return line.decode(errors="replace").split("\0")


class Channel:
    """A control connection read line by line."""

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        self._buffer = b""

    def send(self, *fields: str) -> None:
        self.sock.sendall(encode(*fields))

    def drain(self) -> list[list[str]] | None:
        """The messages that have arrived, without waiting; None once the other end has hung up
        (after the messages before that)."""
        ended = False
        self.sock.settimeout(0.0)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    ended = True
                    break
                self._buffer += chunk
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            ended = True
        lines = self._buffer.split(b"\n")
        self._buffer = lines.pop()
        messages = [decode(line) for line in lines]
        if ended and not messages:
            return None
        return messages

    def read(self, timeout: float | None = None) -> list[str] | None:
        """The next message, None at the end of the connection (OSError: timed out or reset)."""
        while b"\n" not in self._buffer:
            self.sock.settimeout(timeout)
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self._buffer += chunk
            if len(self._buffer) > 1 << 20:
                raise ControlError("message too long")
        line, _, self._buffer = self._buffer.partition(b"\n")
        return decode(line)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def peer_uid(sock: _socket.socket) -> int:
    """The uid of the process at the other end of a Unix socket (``SO_PEERCRED``)."""
    ucred = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)  # struct ucred: pid, uid, gid (32 bits each)
    return int.from_bytes(ucred[4:8], sys.byteorder)  # as _struct would read it, without loading it


def open_runtime_dir(path: str) -> int:
    """A descriptor of the runtime directory ``path``, created 0700 if missing; refused
    (ControlError) unless it is a real directory of ours that no one else may enter."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ControlError(f"cannot create {path}: {exc.strerror}") from None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise ControlError(f"cannot open {path}: {exc.strerror}") from None
    st = os.fstat(fd)
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        os.close(fd)
        raise ControlError(f"{path} is not private to this user")
    return fd


def in_dir(fd: int, name: str) -> str:
    """A short path to ``name`` in the directory open as ``fd`` (a Unix socket path has at most
    107 bytes; this one is short whatever the directory's own path)."""
    return f"/proc/self/fd/{fd}/{name}"


def _connect(path: str) -> _socket.socket:
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(REPLY_TIMEOUT)
        sock.connect(path)
        if peer_uid(sock) != os.getuid():
            raise ControlError("the forwarder socket belongs to another user")
    except BaseException:
        sock.close()
        raise
    return sock


def daemon_command(runtime_dir: str, idle: float) -> list[str]:
    """The daemon's argv: this Python, isolated, running :func:`gw_plugins.soracom.daemon.main`.
    No secret: those arrive over the control socket."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = "from gw_plugins.soracom.daemon import main; main()"
    if os.path.basename(package) == "gw_plugins":  # a regular install: no site needed, only this location
        root = os.path.dirname(package)
        return [sys.executable, "-I", "-S", "-c", f"import sys; sys.path.insert(0, sys.argv[3]); {code}",
                runtime_dir, f"{idle:g}", root]
    return [sys.executable, "-I", "-c", code, runtime_dir, f"{idle:g}"]  # editable: site finds gw_plugins


def _start(dir_fd: int, runtime_dir: str, idle: float) -> _socket.socket:
    """Connect, starting the daemon first if none answers: under the start lock, so that
    parallel calls start one daemon; a stale socket (its daemon gone) is replaced."""
    import fcntl

    path = in_dir(dir_fd, SOCKET_NAME)
    lock = os.open(in_dir(dir_fd, LOCK_NAME), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return _connect(path)
        except (OSError, ControlError):
            pass
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            listener.bind(path)
            listener.listen(64)
            devnull = os.O_RDWR
            actions = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", devnull, 0),
                       (os.POSIX_SPAWN_OPEN, 1, "/dev/null", devnull, 0),
                       (os.POSIX_SPAWN_OPEN, 2, "/dev/null", devnull, 0),
                       (os.POSIX_SPAWN_DUP2, listener.fileno(), 3)]
            os.set_inheritable(listener.fileno(), True)
            argv = daemon_command(runtime_dir, idle)
            os.posix_spawn(argv[0], argv, {}, file_actions=actions, setsid=True)  # nothing of gw's environment
        finally:
            listener.close()
        return _connect(path)
    finally:
        os.close(lock)


def connect(runtime_dir: str) -> _socket.socket:
    """A control connection to this user's forwarder daemon, started if need be (ControlError, OSError)."""
    try:
        idle = float(os.environ.get(IDLE_ENV) or IDLE_EXIT)
    except ValueError:
        idle = IDLE_EXIT
    fd = open_runtime_dir(runtime_dir)
    try:
        try:
            return _connect(in_dir(fd, SOCKET_NAME))
        except (OSError, ControlError):
            return _start(fd, runtime_dir, idle)
    finally:
        os.close(fd)
