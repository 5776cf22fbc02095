"""The exchange service's local front door: ``gw serve endorse-exchange`` (stdlib http.server).

Routes: ``GET|POST /exchange`` (the exchange, see :mod:`.service`), ``OPTIONS`` (CORS
preflight), ``GET /`` and ``GET /static/<file>`` (the browser page from the package's
``static/`` directory when it is installed), ``GET /healthz``. Listens on 127.0.0.1 by
default; another address only when ``--listen`` asks for it, with a warning.

Slow or stalled clients cost no thread (see :class:`ExchangeHttpServer`): requests are read
on an asyncio loop with a deadline and a body limit checked before the body, and answered
by a bounded worker pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import mimetypes
import re
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .service import MAX_BODY_BYTES, ExchangeService, HttpAnswer, HttpRequest

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_NAME = re.compile(r"(?:vendor/)?[A-Za-z0-9_][A-Za-z0-9_.-]{0,100}")
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
READ_TIMEOUT = 10.0  # seconds a connection has to deliver a whole request (idle keep-alive included)
WORKERS = 16  # threads computing answers
MAX_CONNECTIONS = 512  # open connections at once; more are closed at once
MAX_HEAD_BYTES = 16384  # request line and headers


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) -> (host, port); ValueError with one line."""
    m = re.fullmatch(r"\[([0-9a-fA-F:]+)\]:(\d{1,5})|([A-Za-z0-9.-]+):(\d{1,5})", text.strip())
    if not m:
        raise ValueError(f"--listen wants HOST:PORT such as 127.0.0.1:8080, not {text[:60]!r}")
    host = m.group(1) or m.group(3)
    port = int(m.group(2) or m.group(4))
    if port > 65535:
        raise ValueError("--listen port must be 0..65535")
    return host, port


def _static(path: str) -> tuple[int, bytes, str]:
    if path == "/":
        name = "index.html"
    else:
        name = path[len("/static/"):]
        if not STATIC_NAME.fullmatch(name) or ".." in name:
            return 404, b'{"code":"not_found","message":"no such file"}', "application/json"
    file = STATIC_DIR / name
    if not STATIC_DIR.is_dir() or not file.is_file():
        return 404, b'{"code":"not_found","message":"no such file"}', "application/json"
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if kind.startswith("text/") or kind in ("application/javascript",):
        kind += "; charset=utf-8"
    return 200, file.read_bytes(), kind


def respond(service: ExchangeService, method: str, target: str, headers: dict[str, str], body: bytes,
            source: str) -> tuple[int, bytes, dict[str, str]]:
    """One parsed request -> (status, body, headers); runs in a worker thread, never raises."""
    try:
        parts = urlsplit(target)
        if parts.path == "/exchange":
            request = HttpRequest(
                method=method, path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True, max_num_fields=50) if parts.query else {},
                headers=headers, body=body, source=source,
            )
            answer: HttpAnswer = service.handle(request)
            return answer.status, answer.payload(), answer.headers
        if method in ("GET", "HEAD") and (parts.path == "/" or parts.path.startswith("/static/")):
            status, data, kind = _static(parts.path)
            return status, data, {"Content-Type": kind, "Cache-Control": "no-cache"}
        if method == "GET" and parts.path == "/healthz":
            return 200, b'{"status":"ok"}', {"Content-Type": "application/json"}
        return 404, b'{"code":"not_found","message":"no such path"}', {"Content-Type": "application/json"}
    except ValueError:  # e.g. too many query fields
        return _error(400, "malformed_request", "malformed request")
    except Exception:  # noqa: BLE001 - a bug answers 500, never a traceback
        return _error(500, "internal_error", "internal error")


def _error(status: int, code: str, message: str) -> tuple[int, bytes, dict[str, str]]:
    body = json.dumps({"code": code, "message": message}, separators=(",", ":")).encode()
    return status, body, {"Content-Type": "application/json"}


class _Refused(Exception):
    """A request the server answers itself, then closes the connection."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.answer = _error(status, code, message)


@dataclass
class _Head:
    method: str
    target: str
    headers: dict[str, str]
    keep_alive: bool


def _parse_head(raw: bytes) -> _Head:
    """The request line and headers (RFC 9112), strictly: what is not plainly HTTP/1.x is a 400."""
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not re.fullmatch(r"[A-Z]{1,16}", parts[0]) or parts[2] not in ("HTTP/1.1", "HTTP/1.0") \
            or not parts[1] or len(parts[1]) > 8192:
        raise _Refused(400, "malformed_request", "malformed request line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
            raise _Refused(400, "malformed_request", "malformed header line")
        key, value = name.lower(), value.strip(" \t")
        if key in headers:
            if key in ("content-length", "host", "authorization", "content-type"):
                raise _Refused(400, "malformed_request", f"more than one {name} header")
            value = f"{headers[key]}, {value}"
        headers[key] = value
    connection = headers.get("connection", "").lower()
    keep_alive = parts[2] == "HTTP/1.1" and "close" not in connection
    return _Head(parts[0], parts[1], headers, keep_alive)


class ExchangeHttpServer:
    """The local front door: HTTP/1.1 on one asyncio loop, answers computed by a bounded pool.

    Reading a request costs no thread: a connection is only a buffer on the loop until its
    whole request (head and body) has arrived, and it gets ``timeout`` seconds for that,
    idle keep-alive time included, before it is closed. The body limit is checked on the
    ``Content-Length`` before a byte of the body is read. ``workers`` threads run the
    service (which blocks on STS, DynamoDB, the key store); at most ``max_connections``
    connections are open at once (beyond that new ones are closed at once). A client
    hanging up at any point is the end of its connection and nothing else: no traceback.

    The interface is ``socketserver``'s where the callers use it: ``server_address``,
    ``serve_forever``, ``shutdown`` (from another thread) and ``server_close``.
    """

    def __init__(self, service: ExchangeService, host: str, port: int, *, timeout: float = READ_TIMEOUT,
                 workers: int = WORKERS, max_connections: int = MAX_CONNECTIONS,
                 body_limit: int = MAX_BODY_BYTES) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.create_server((host, port), family=family, backlog=256)
        self.server_address: tuple[str, int] = self.socket.getsockname()[:2]
        self.service = service
        self.timeout = timeout
        self.max_connections = max_connections
        self.body_limit = body_limit
        self.open_connections = 0
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="endorse-exchange")
        self._guard = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._closing = False
        self._finished = threading.Event()
        self._writers: set[asyncio.StreamWriter] = set()  # open connections (used on the loop only)

    # -- socketserver's interface -----------------------------------------------------------
    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Serve until :meth:`shutdown` (``poll_interval`` is accepted for compatibility)."""
        try:
            asyncio.run(self._serve())
        finally:
            self._finished.set()

    def shutdown(self) -> None:
        """Stop :meth:`serve_forever` and wait for it to return (call it from another thread)."""
        with self._guard:
            self._closing = True
            loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already ended
                loop.call_soon_threadsafe(stop.set)
            self._finished.wait()

    def server_close(self) -> None:
        self.socket.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- the loop ---------------------------------------------------------------------------
    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, _context: None)  # a hang-up is never a traceback
        stop = asyncio.Event()
        with self._guard:
            if self._closing:
                return
            self._loop, self._stop = loop, stop
        server = await asyncio.start_server(self._connection, sock=self.socket, limit=MAX_HEAD_BYTES)
        try:
            await stop.wait()
        finally:  # stop accepting, drop every open connection, and do not wait for idle clients
            server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.open_connections >= self.max_connections:
            writer.transport.abort()
            return
        self.open_connections += 1
        self._writers.add(writer)
        peer = writer.get_extra_info("peername")
        source = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        graceful = False
        try:
            while True:
                try:
                    request = await asyncio.wait_for(self._read_request(reader, writer), self.timeout)
                except _Refused as refused:
                    await self._answer(writer, "GET", refused.answer, keep_alive=False)
                    await self._linger(reader, writer)
                    graceful = True
                    return
                if request is None:  # the client closed between requests
                    graceful = True
                    return
                head, body = request
                answer = await asyncio.get_running_loop().run_in_executor(
                    self._executor, respond, self.service, head.method, head.target, head.headers, body, source)
                await self._answer(writer, head.method, answer, keep_alive=head.keep_alive)
                if not head.keep_alive:
                    graceful = True
                    return
        except (TimeoutError, ConnectionError, OSError, EOFError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError, RuntimeError):
            pass  # too slow, hung up, reset: the connection ends here, quietly
        finally:
            self.open_connections -= 1
            self._writers.discard(writer)
            if graceful:
                writer.close()
            else:
                writer.transport.abort()

    async def _read_request(self, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> tuple[_Head, bytes] | None:
        """A whole request, or None on a clean close before its first byte; :class:`_Refused` when
        it is one the server answers itself. The caller bounds the time this may take."""
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                raise
            return None
        except asyncio.LimitOverrunError:
            raise _Refused(431, "headers_too_large", f"the request head is larger than {MAX_HEAD_BYTES} bytes") from None
        head = _parse_head(raw[:-4].lstrip(b"\r\n"))
        if "transfer-encoding" in head.headers:
            raise _Refused(411, "length_required", "send the body with a Content-Length, not chunked")
        text = head.headers.get("content-length", "0")
        if not re.fullmatch(r"[0-9]{1,12}", text):
            raise _Refused(400, "malformed_request", "bad Content-Length")
        length = int(text)
        if length > self.body_limit:  # refused before a byte of the body is read
            raise _Refused(413, "body_too_large", f"the request body is larger than {self.body_limit} bytes")
        if length and head.headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
        body = await reader.readexactly(length) if length else b""
        return head, body

    async def _answer(self, writer: asyncio.StreamWriter, method: str, answer: tuple[int, bytes, dict[str, str]],
                      *, keep_alive: bool) -> None:
        status, body, headers = answer
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
        lines = [f"HTTP/1.1 {status} {reason}", "Server: gw-endorse-exchange", f"Date: {formatdate(usegmt=True)}"]
        lines += [f"{k}: {v}" for k, v in headers.items() if not re.search(r"[\r\n]", f"{k}{v}")]
        lines += [f"Content-Length: {len(body)}", "X-Content-Type-Options: nosniff"]
        if not keep_alive:
            lines.append("Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if method == "HEAD" else body))
        await asyncio.wait_for(writer.drain(), self.timeout)

    async def _linger(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """After refusing a request whose body was not read: stop sending and discard what the
        client still sends for a moment, so closing does not reset the answer away."""
        with contextlib.suppress(OSError, RuntimeError):
            writer.write_eof()
        with contextlib.suppress(TimeoutError, ConnectionError, OSError):
            async with asyncio.timeout(min(2.0, self.timeout)):
                for _ in range(64):
                    if not await reader.read(65536):
                        break


def make_server(service: ExchangeService, host: str, port: int, **options: Any) -> ExchangeHttpServer:
    """A bound (not yet serving) server answering with ``service``; ``options`` go to
    :class:`ExchangeHttpServer` (``timeout``, ``workers``, ``max_connections``, ``body_limit``)."""
    return ExchangeHttpServer(service, host, port, **options)


# -- gw serve endorse-exchange ---------------------------------------------------------------
def configure(parser: Any) -> None:
    parser.add_argument("--config", required=True, metavar="FILE", help="TOML file with an [endorse_exchange] table")
    parser.add_argument("--listen", default="127.0.0.1:8080", metavar="HOST:PORT",
                        help="address to listen on (default 127.0.0.1:8080; port 0 picks a free one)")


def run(args: Any, ctx: Any) -> int:
    import signal

    from gw.plugin import SORACOM_SESSION, UsageError

    from .settings import SettingsError, load_file

    try:
        settings = load_file(args.config)
        host, port = parse_listen(args.listen)
    except (SettingsError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    session_source = None
    if settings.soracom_profile:
        profile = settings.soracom_profile
        kind = ctx.output_kind(profile)
        if kind != SORACOM_SESSION:
            raise UsageError(f"soracom_profile {profile!r} ends in {kind}; it must end in soracom-auth")
        lock = threading.Lock()

        def session_source(refresh: bool) -> Any:
            with lock:  # one gw chain run at a time; the cache answers the rest
                return ctx.resolve(profile, require=SORACOM_SESSION, refresh=refresh)

    service = ExchangeService(settings, soracom_session=session_source)
    if host not in LOOPBACK:
        ctx.warn(f"listening on {host}, not on loopback: anyone who can reach it can exchange tokens; "
                 "put TLS in front of it")
    try:
        httpd = make_server(service, host, port)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    bound_host, bound_port = str(httpd.server_address[0]), int(httpd.server_address[1])
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    ctx.emit(f"http://{shown}:{bound_port}")
    ctx.info("serving the Endorse exchange on /exchange; Ctrl-C stops")

    def stop(signum: int, frame: Any) -> None:
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    try:
        httpd.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
    return 0

