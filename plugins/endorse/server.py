"""The exchange service's local front door: ``gw serve endorse-exchange`` (stdlib http.server).

Routes: ``GET|POST /exchange`` (the exchange, see :mod:`.service`), ``OPTIONS`` (CORS
preflight), ``GET /`` and ``GET /static/<file>`` (the browser page from the package's
``static/`` directory when it is installed), ``GET /healthz``. Listens on 127.0.0.1 by
default; another address only when ``--listen`` asks for it, with a warning.
"""

from __future__ import annotations

import mimetypes
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .service import MAX_BODY_BYTES, ExchangeService, HttpAnswer, HttpRequest

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_NAME = re.compile(r"(?:vendor/)?[A-Za-z0-9_][A-Za-z0-9_.-]{0,100}")
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


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


def make_server(service: ExchangeService, host: str, port: int) -> ThreadingHTTPServer:
    """A bound (not yet serving) HTTP server answering with ``service``."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "gw-endorse-exchange"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:  # the service logs one JSON line itself
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > MAX_BODY_BYTES:
                self.close_connection = True
                self._send(400 if length < 0 else 413,
                           b'{"code":"malformed_request","message":"bad or too large Content-Length"}',
                           {"Content-Type": "application/json"})
                return
            body = self.rfile.read(length) if length else b""
            if parts.path == "/exchange":
                request = HttpRequest(
                    method=self.command, path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True, max_num_fields=50) if parts.query else {},
                    headers={k.lower(): v for k, v in self.headers.items()}, body=body,
                    source=self.client_address[0],
                )
                answer: HttpAnswer = service.handle(request)
                self._send(answer.status, answer.payload(), answer.headers)
            elif self.command in ("GET", "HEAD") and (parts.path == "/" or parts.path.startswith("/static/")):
                status, data, kind = _static(parts.path)
                self._send(status, data, {"Content-Type": kind, "Cache-Control": "no-cache"})
            elif self.command == "GET" and parts.path == "/healthz":
                self._send(200, b'{"status":"ok"}', {"Content-Type": "application/json"})
            else:
                self._send(404, b'{"code":"not_found","message":"no such path"}', {"Content-Type": "application/json"})

        def _guarded(self) -> None:
            try:
                self._handle()
            except ValueError:  # e.g. too many query fields
                self._send(400, b'{"code":"malformed_request","message":"malformed request"}',
                           {"Content-Type": "application/json"})

        do_GET = do_POST = do_OPTIONS = do_HEAD = do_PUT = do_DELETE = do_PATCH = _guarded

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256

    if ":" in host:
        import socket

        Server.address_family = socket.AF_INET6
    return Server((host, port), Handler)


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

