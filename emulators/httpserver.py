"""A small threaded HTTPS server that every emulator builds on.

Routes are ``(method, regex)`` pairs; a handler takes a :class:`Request` and
returns a :class:`Response`. The server listens on 127.0.0.1 (port 0 picks a free
one), speaks TLS with a certificate from :class:`gw_emulators.tls.LocalCA`
(optionally requiring client certificates), and counts calls per route name so
tests can assert how many upstream fetches really happened.

Also here: :class:`FaultQueue` (the faults injected into an emulator's routes, shared with
the moto observer of :mod:`gw_emulators.aws`) and :class:`Tripwire`, a listener that must
never be contacted (where an injected redirect points).
"""

from __future__ import annotations

import collections
import json
import re
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .tls import LocalCA


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    match: re.Match[str] | None = None
    peer_cert: dict[str, Any] | None = None
    peer_cert_der: bytes | None = None

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        """The body as JSON; raises ValueError on anything else."""
        return json.loads(self.body.decode("utf-8"))

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode("utf-8"), keep_blank_values=True)

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering


@dataclass
class Fault:
    """A fault injected into the next ``count`` calls of a route (see :meth:`EmulatorServer.inject`).

    ``location`` is sent as the answer's ``Location`` header (with a 3xx ``status``: a redirect).
    """

    status: int | None = None
    delay: float = 0.0
    garbage: bool = False
    drop: bool = False
    count: int = 1
    location: str | None = None


class FaultQueue(dict[str, list[Fault]]):
    """Faults by route name, taken in order, each for its ``count`` calls (thread-safe)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def add(self, route: str, fault: Fault) -> None:
        with self._lock:
            self.setdefault(route, []).append(fault)

    def take(self, route: str) -> Fault | None:
        """The fault for this call of ``route``, or None."""
        with self._lock:
            queue = self.get(route)
            if not queue:
                return None
            fault = queue[0]
            fault.count -= 1
            if fault.count <= 0:
                queue.pop(0)
            return fault


def json_response(status: int, document: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(document).encode(), {"Content-Type": "application/json", **(headers or {})})


def text_response(status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> Response:
    return Response(status, text.encode(), {"Content-Type": content_type})


Handler = Callable[[Request], Response]


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    ssl_context: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake happens here, in the per-connection thread.
        if self.ssl_context is not None:
            request.settimeout(10)
            try:
                request = self.ssl_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                self.emulator.count("tls-handshake-failed")  # type: ignore[attr-defined]
                return
            self.emulator.count("tls-connections")  # type: ignore[attr-defined]
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-answer is no error of the emulator's: say nothing (socketserver
        would print a traceback to ``sys.stderr``, which an in-process gw run captures as its own)."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError, ssl.SSLEOFError, ssl.SSLZeroReturnError)):
            return
        super().handle_error(request, client_address)


class EmulatorBase:
    """What every emulator shares: an injectable clock, call counts and fault injection.

    :class:`EmulatorServer` (HTTP) and the WebSocket emulator of the AWS IoT data plane
    build on it; a subclass consults :meth:`_take_fault` when a call of a route arrives.
    """

    name = "emulator"

    def __init__(self, *, clock: Callable[[], float] | None = None) -> None:
        self.clock: Callable[[], float] = clock or time.time
        self.faults = FaultQueue()
        self.calls: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def inject(self, route: str, *, status: int | None = None, delay: float = 0.0, garbage: bool = False,
               drop: bool = False, count: int = 1, location: str | None = None) -> None:
        """Make the next ``count`` calls of ``route`` (its name) fail: answer ``status`` with an
        error body, wait ``delay`` seconds first, answer a garbage body, or drop the connection.
        ``location`` goes out as the ``Location`` header: ``status=307, location=tripwire.url``
        is a redirect to another host."""
        self.faults.add(route, Fault(status, delay, garbage, drop, count, location))

    def advance(self, seconds: float) -> None:
        """Move this emulator's clock forward (replaces ``clock`` with a shifted one)."""
        base = self.clock
        self.clock = lambda: base() + seconds

    def _take_fault(self, route: str) -> Fault | None:
        return self.faults.take(route)

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.calls[name] += n

    def wait_count(self, name: str, at_least: int = 1, timeout: float = 10.0) -> int:
        """``calls[name]`` once it reaches ``at_least`` (or ``timeout`` passes). A client can see
        the end of a call before the server's thread counts it: a TLS alert reaches the client
        before ``wrap_socket`` raises on the server's side."""
        deadline = time.monotonic() + timeout
        while self.calls[name] < at_least and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.calls[name]


class EmulatorServer(EmulatorBase):
    """Base class of the HTTP emulators: subclasses register routes in ``__init__`` with :meth:`route`."""

    def __init__(self, ca: LocalCA | None = None, *, client_ca: str | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        super().__init__(clock=clock)
        self.ca = ca
        self.client_ca = client_ca
        self._routes: list[tuple[str, re.Pattern[str], str, Handler]] = []
        self._httpd: _TLSServer | None = None
        self._thread: threading.Thread | None = None

    # -- routing -------------------------------------------------------------
    def route(self, method: str, pattern: str, handler: Handler, name: str | None = None) -> None:
        self._routes.append((method.upper(), re.compile(pattern + r"\Z"), name or pattern, handler))

    def dispatch(self, request: Request) -> Response:
        allowed = False
        for method, pattern, name, handler in self._routes:
            m = pattern.match(request.path)
            if not m:
                continue
            allowed = True
            if method != request.method:
                continue
            request.match = m
            self.count(name)
            fault = self._take_fault(name)
            if fault is not None:
                if fault.delay:
                    time.sleep(fault.delay)
                if fault.drop:
                    return Response(drop=True)
                extra = {"Location": fault.location} if fault.location is not None else {}
                if fault.garbage:
                    return Response(fault.status or 200, b"\x00<html>not what you expected",
                                    {"Content-Type": "application/json", **extra})
                if fault.status is not None:
                    return json_response(fault.status, {"code": f"FAULT{fault.status}", "message": "injected fault"},
                                         extra)
            return handler(request)
        if allowed:
            return json_response(405, {"message": "method not allowed"})
        return json_response(404, {"message": f"no such path: {request.path}"})

    # -- lifecycle -----------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._httpd is not None, "start() first"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        scheme = "https" if self.ca else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self, port: int = 0) -> EmulatorServer:
        emulator = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def date_time_string(self, timestamp: float | None = None) -> str:
                # the Date header tells the emulator's (injectable) clock, as a real server's tells its own
                return super().date_time_string(emulator.clock() if timestamp is None else timestamp)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                peer = None
                der = None
                if isinstance(self.connection, ssl.SSLSocket):
                    peer = self.connection.getpeercert() or None
                    der = self.connection.getpeercert(binary_form=True)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    peer_cert=peer,
                    peer_cert_der=der,
                )
                try:
                    response = emulator.dispatch(request)
                except Exception as exc:  # an emulator bug must still answer
                    response = json_response(500, {"code": "EMU0500", "message": f"emulator error: {exc}"})
                if response.drop:
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                self.send_response(response.status)
                for key, value in response.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(response.body)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        httpd = _TLSServer(("127.0.0.1", port), RequestHandler)
        httpd.emulator = self  # type: ignore[attr-defined]
        if self.ca is not None:
            issued = self.ca.issue(f"{self.name}-server")
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(issued.cert_path, issued.key_path)
            if self.client_ca:
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(self.client_ca)
            httpd.ssl_context = ctx
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=self.name,
                                        daemon=True)  # stop() waits at most one poll
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> EmulatorServer:
        return self if self._httpd else self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class Tripwire:
    """A plain TCP listener on 127.0.0.1 that nothing may contact: where a test points an
    injected redirect. Every connection is accepted, read (up to 64 KiB, briefly) and closed,
    so a client that follows the redirect fails fast instead of waiting; :meth:`contacts` holds
    what each one sent (a TLS ClientHello, an HTTP request with its headers ...).
    """

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.setblocking(False)
        self._received: list[bytes] = []
        self._lock = threading.Lock()  # accepting and recording a connection are one step
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="tripwire", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def url(self, scheme: str = "http", path: str = "/") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def _serve(self) -> None:
        import select

        while not self._closed.is_set():
            try:
                ready, _, _ = select.select([self._sock], [], [], 0.05)
            except (OSError, ValueError):  # closed
                return
            if ready:
                for conn, index in self._accept_pending():
                    self._read(conn, index)

    def _accept_pending(self) -> list[tuple[socket.socket, int]]:
        taken: list[tuple[socket.socket, int]] = []
        with self._lock:
            while True:
                try:
                    conn, _ = self._sock.accept()
                except OSError:  # nothing pending (BlockingIOError), or closed
                    return taken
                taken.append((conn, len(self._received)))
                self._received.append(b"")

    def _read(self, conn: socket.socket, index: int) -> None:
        data = b""
        with conn:
            conn.settimeout(0.5)
            try:
                while len(data) < 65536:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                pass
        with self._lock:
            self._received[index] = data

    def contacts(self) -> list[bytes]:
        """What each connection so far sent; connections still in the listen backlog count too."""
        for conn, index in self._accept_pending():
            self._read(conn, index)
        with self._lock:
            return list(self._received)

    def close(self) -> None:
        self._closed.set()
        self._sock.close()

    def __enter__(self) -> Tripwire:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
