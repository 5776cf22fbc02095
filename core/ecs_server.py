"""An ECS container-credentials endpoint for one profile (``gw exec --server``, ``gw serve ecs``).

The AWS SDKs read ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` and send the value of
``AWS_CONTAINER_AUTHORIZATION_TOKEN`` as the ``Authorization`` header; the answer is
JSON with ``AccessKeyId``, ``SecretAccessKey``, ``Token``, ``Expiration`` and,
when known, ``AccountId`` (botocore ``ContainerProvider._create_fetcher`` and
``ContainerMetadataFetcher`` in botocore/credentials.py and botocore/utils.py). The
SDK asks again before the credentials expire, so a long job keeps working: every
request resolves the profile through :meth:`gw.app.App.resolve` (cache, locks and
one upstream fetch apply). botocore accepts a plain-HTTP full URI only for loopback
and the ECS link-local addresses, and waits 2 s per attempt (3 attempts).

Each connection has its own thread, at most ``max_connections`` at once, and one
deadline for its whole request: a client that has not sent its request line and
headers within ``REQUEST_DEADLINE`` seconds is cut off, however it dribbles them
(the deadline is not per read). When every slot is taken, the connection that has
waited longest for its request is cut to make room, so slow or half-open clients
cannot keep an SDK out. The profile is resolved for one request at a time (prompts
and locks behave as in any gw command). A request without the right token is refused
with 403. A client that resets or hangs up ends only its own connection, silently.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import ThreadingMixIn

from .credentials import AwsCredentials, to_rfc3339
from .errors import GwError, UsageError
from .ui import one_line

PATH = "/gw/credentials"
# botocore refreshes at 15 min left (advisory) and refuses credentials with less than
# 10 min left after a refresh (mandatory): never hand out less than this by default.
DEFAULT_MIN_TTL = 11 * 60
# botocore sends its whole request at once and waits 2 s for the answer; a request
# (line and headers) not complete this long after the connection was accepted is cut.
REQUEST_DEADLINE = 5.0
MAX_CONNECTIONS = 32


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``HOST`` or ``:PORT`` (IPv6 as ``[::1]:PORT``) -> (host, port)."""
    host, port = text, "0"
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else "0"
    elif text.count(":") == 1:
        host, port = text.split(":")
    host = host or "127.0.0.1"
    if not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--listen {text!r}: the port must be a number from 0 to 65535")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(profile: str, host: str, port: int) -> str | None:
    """The warning ``gw serve ecs`` gives for an address beyond loopback (None on loopback)."""
    if is_loopback(host):
        return None
    return (f"serving the credentials of {profile!r} on {host}:{port}, beyond this machine's loopback: anyone who "
            "can reach it and learns the token gets them (SDKs accept plain HTTP only for 127.0.0.1 / localhost)")


def credentials_document(credential: AwsCredentials) -> dict[str, str]:
    """The JSON body an SDK's container provider expects."""
    doc = {
        "AccessKeyId": credential.access_key_id,
        "SecretAccessKey": credential.secret_access_key,
        "Token": credential.session_token or "",
        "Expiration": to_rfc3339(credential.expiration) if credential.expiration else "",
    }
    if credential.account_id:
        doc["AccountId"] = credential.account_id
    return doc


class _Server(ThreadingMixIn, HTTPServer):
    """A thread per connection, bounded, each with a deadline (monotonic) for its request."""

    allow_reuse_address = False
    daemon_threads = True
    block_on_close = False  # stopping never waits for a slow client

    def __init__(self, address: tuple[str, int], owner: EcsServer, max_connections: int, deadline: float) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.owner = owner
        self.max_connections = max_connections
        self.deadline = deadline
        self._live: dict[socket.socket, float | None] = {}  # connection -> deadline (None: being answered)
        self._live_lock = threading.Lock()
        super().__init__(address, _Handler)

    @staticmethod
    def _cut(connection: socket.socket) -> None:
        """Wake the connection's thread (its read returns end-of-file); that thread closes it."""
        try:
            connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already gone

    def process_request(self, request, client_address) -> None:
        with self._live_lock:
            if len(self._live) >= self.max_connections:
                waiting = [(d, c) for c, d in self._live.items() if d is not None]
                if not waiting:  # every slot is answering an authorized request: this one is turned away
                    self._cut(request)
                    request.close()
                    return
                oldest = min(waiting, key=lambda item: item[0])[1]
                self._cut(oldest)  # its thread sees end-of-file at once and closes it
                del self._live[oldest]
            self._live[request] = time.monotonic() + self.deadline
        super().process_request(request, client_address)

    def set_deadline(self, connection: socket.socket, seconds: float | None) -> None:
        with self._live_lock:
            if connection in self._live:
                self._live[connection] = None if seconds is None else time.monotonic() + seconds

    def shutdown_request(self, request) -> None:
        with self._live_lock:
            self._live.pop(request, None)
        super().shutdown_request(request)

    def service_actions(self) -> None:
        """Run by serve_forever between polls: cut the connections past their deadline."""
        now = time.monotonic()
        with self._live_lock:
            for connection, deadline in self._live.items():
                if deadline is not None and deadline <= now:
                    self._cut(connection)

    def cut_all(self) -> None:
        with self._live_lock:
            for connection in self._live:
                self._cut(connection)

    def handle_error(self, request, client_address) -> None:
        """A reset, hang-up or garbage from one client ends that connection only; nothing is printed."""
        self.owner.dropped += 1


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = REQUEST_DEADLINE  # no single read or write blocks longer (the server also cuts at the deadline)
    server_version = "gw-ecs"
    sys_version = ""

    def log_message(self, format: str, *args) -> None:
        pass  # no access log: nothing about requests goes to stderr

    def log_error(self, format: str, *args) -> None:
        pass

    def _answer(self, status: int, body: dict[str, str]) -> None:
        self.server.set_deadline(self.connection, REQUEST_DEADLINE)  # writing the answer has its own deadline
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        owner = self.server.owner
        self.server.set_deadline(self.connection, None)  # the request is in: resolving may take its time
        given = self.headers.get("Authorization") or ""
        if not hmac.compare_digest(given.encode(), owner.token.encode()):
            owner.refused += 1
            self._answer(403, {"code": "AccessDenied", "message": "missing or wrong authorization token"})
            return
        if self.path.split("?", 1)[0] != PATH:
            self._answer(404, {"code": "NotFound", "message": "no such path"})
            return
        try:
            with owner.resolving:
                credential = owner.provide()
        except GwError as exc:
            message = owner.scrub(one_line(str(exc)))
            owner.on_error(message)
            self._answer(500, {"code": "CredentialsUnavailable", "message": message})
            return
        owner.served += 1
        self._answer(200, credentials_document(credential))

    def _not_allowed(self) -> None:
        self._answer(405, {"code": "MethodNotAllowed", "message": "only GET"})

    do_POST = do_PUT = do_DELETE = do_PATCH = _not_allowed


class EcsServer:
    """Serve ``provide()`` as ECS container credentials on ``host:port`` (0: a free port).

    ``provide`` returns temporary :class:`AwsCredentials`; a :class:`GwError` it raises
    becomes a 500 with the (scrubbed) one-line message, also passed to ``on_error``.
    """

    def __init__(self, provide: Callable[[], AwsCredentials], host: str = "127.0.0.1", port: int = 0, *,
                 scrub: Callable[[str], str] = lambda s: s, on_error: Callable[[str], None] = lambda s: None,
                 token: str | None = None, max_connections: int = MAX_CONNECTIONS,
                 deadline: float = REQUEST_DEADLINE) -> None:
        self.provide = provide
        self.scrub = scrub
        self.on_error = on_error
        self.token = token or secrets.token_urlsafe(32)
        self.served = 0
        self.refused = 0
        self.dropped = 0
        self.resolving = threading.Lock()
        try:
            self._httpd = _Server((host, port), self, max_connections, deadline)
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self._stopping = threading.Event()

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{PATH}"

    def environment(self) -> dict[str, str]:
        """What a child needs to use this endpoint."""
        return {"AWS_CONTAINER_CREDENTIALS_FULL_URI": self.url, "AWS_CONTAINER_AUTHORIZATION_TOKEN": self.token}

    def serve_until(self, done: threading.Event | None = None) -> None:
        """Serve requests on this thread until :meth:`stop` (or ``done`` is set)."""
        if done is not None:
            def stop_when_done() -> None:
                done.wait()
                self.stop()

            threading.Thread(target=stop_when_done, daemon=True).start()
        try:
            self._httpd.serve_forever(poll_interval=0.2)  # also runs the deadline check every 0.2 s
        finally:
            self._httpd.cut_all()
            self._httpd.server_close()

    def stop(self) -> None:
        """Stop serving (from another thread or a signal handler's thread)."""
        if not self._stopping.is_set():
            self._stopping.set()
            threading.Thread(target=self._httpd.shutdown, daemon=True).start()
