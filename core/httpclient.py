"""A small HTTP/1.1 client over verified TLS: the standard library's ``ssl`` and ``socket`` only.

Upstream calls are what a cache miss waits for, and ``requests`` (or ``urllib3``, or even
``http.client``, which loads the email package) costs more to import than the rest of gw's
slow path before the first byte goes out (docs/performance.md "Cache miss"). This reads what
the upstreams send (``Content-Length``, chunked, or read-to-close bodies; keep-alive), never
follows a redirect (a 3xx is an answer like any other) and never decompresses (it asks for
``identity``).

TLS: ``ssl.create_default_context`` - certificate required, host name checked - with the CA
bundle given, else as requests picks one (``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``, else
certifi's bundle when installed, else the system's trust store). A connection can be opened
ahead of its first request in a thread (:meth:`HttpClient.preconnect`), so the TCP and TLS
handshakes overlap other work, e.g. the SIM's APDUs on the Krypton path. An https URL goes
through the proxy in ``https_proxy`` / ``HTTPS_PROXY`` (a ``CONNECT`` tunnel; TLS is still
end to end) unless ``no_proxy`` names its host, as requests does.

Failures are :class:`HttpFailure` with ``reason`` ``tls``, ``timeout``, ``connect`` or
``protocol`` and a message without the request's headers or body.
"""

from __future__ import annotations

import os
from typing import Any

MAX_HEAD = 64 * 1024
MAX_BODY = 16 * 1024 * 1024
NO_BODY = (204, 304)
USER_AGENT = "gw"


class HttpFailure(Exception):
    """No usable answer: ``reason`` is ``tls``, ``timeout``, ``connect`` or ``protocol``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Headers(dict[str, str]):
    """An answer's headers; ``get`` and ``[]`` ignore case (keys are stored lower-case)."""

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


class HttpResponse:
    """An answer: ``status_code``, ``reason``, ``headers`` (case-insensitive), ``content``, ``text``, ``json()``."""

    def __init__(self, status_code: int, reason: str, headers: Headers, content: bytes, url: str) -> None:
        self.status_code = status_code
        self.reason = reason
        self.headers = headers
        self.content = content
        self.url = url

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; ``ValueError`` when it is not."""
        import json

        return json.loads(self.content)

    def __repr__(self) -> str:
        return f"<HttpResponse [{self.status_code}]>"


def default_cafile() -> str | None:
    """The CA bundle for ``verify=True``, chosen as requests chooses it (None: the system's store)."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        if os.environ.get(name):
            return os.environ[name]
    try:
        import certifi
    except ImportError:
        return None
    return str(certifi.where())


def tls_context(verify: bool | str) -> Any:
    """An ``ssl.SSLContext`` for ``verify``: a CA bundle path, True (default trust) or False (no checks)."""
    import ssl

    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=verify if isinstance(verify, str) else default_cafile())


def split_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, target) of an http(s) URL; ``ValueError`` for anything else."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url[:80]!r}")
    port = parts.port or (443 if scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, parts.hostname, port, target


def _quick(sock: Any) -> None:
    """No Nagle, and (Linux) ACK at once: a server writing head and body apart must not wait 40 ms."""
    import socket

    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if hasattr(socket, "TCP_QUICKACK"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
    except OSError:
        pass


class Connection:
    """One keep-alive connection to ``scheme://host:port`` (TLS for https with ``context``)."""

    def __init__(self, scheme: str, host: str, port: int, context: Any, timeout: float) -> None:
        self.key = (scheme, host, port)
        self.host_header = host if port == (443 if scheme == "https" else 80) else f"{host}:{port}"
        if ":" in host and not host.startswith("["):
            self.host_header = f"[{host}]" if port in (80, 443) else f"[{host}]:{port}"
        self._buffer = b""
        self.reusable = True
        self.used = False
        self._sock = _connect(scheme, host, port, context, timeout)

    def close(self) -> None:
        self.reusable = False
        try:
            self._sock.close()
        except OSError:
            pass

    def request(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes,
                limit: int = MAX_BODY) -> tuple[int, str, Headers, bytes]:
        """Send one request; (status, reason, headers, body) of its answer."""
        self.used = True
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host_header}", *(f"{k}: {v}" for k, v in headers)]
        _quick(self._sock)
        self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        while True:
            status, reason, fields = self._read_head()
            if status != 100 or method == "HEAD":  # a 100 Continue is followed by the real answer
                break
        if fields.get("connection", "").lower() == "close":
            self.reusable = False
        if method == "HEAD" or status in NO_BODY or 100 <= status < 200:
            data = b""
        elif "chunked" in fields.get("transfer-encoding", "").lower():
            data = self._read_chunked(limit)
        elif fields.get("content-length", "").strip().isdigit():
            length = int(fields["content-length"])
            if length > limit:
                raise HttpFailure("protocol", "the answer is too large")
            data = self._read_exactly(length)
        else:
            self.reusable = False
            data = self._read_to_close(limit)
        return status, reason, fields, data

    # -- reading --------------------------------------------------------------------------------
    def _fill(self) -> None:
        _quick(self._sock)  # quick ACK lasts only until the kernel sees the exchange as interactive again
        chunk = self._sock.recv(65536)
        if not chunk:
            raise HttpFailure("protocol", "the connection closed before the answer was complete")
        self._buffer += chunk

    def _read_head(self) -> tuple[int, str, Headers]:
        while b"\r\n\r\n" not in self._buffer:
            if len(self._buffer) > MAX_HEAD:
                raise HttpFailure("protocol", "the answer's head is too large")
            self._fill()
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        version, _, rest = status_line.partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or not (code.isdigit() and len(code) == 3):
            raise HttpFailure("protocol", "the answer is not HTTP/1.x")
        if version == "HTTP/1.0":
            self.reusable = False
        fields = Headers()
        for line in header_lines:
            name, colon, value = line.partition(":")
            if colon:
                key = name.strip().lower()
                fields[key] = f"{fields[key]}, {value.strip()}" if key in fields else value.strip()
        return int(code), reason.strip(), fields

    def _read_exactly(self, length: int) -> bytes:
        while len(self._buffer) < length:
            self._fill()
        data, self._buffer = self._buffer[:length], self._buffer[length:]
        return data

    def _read_line(self) -> bytes:
        while b"\r\n" not in self._buffer:
            if len(self._buffer) > MAX_HEAD:
                raise HttpFailure("protocol", "a chunk line is too long")
            self._fill()
        line, _, self._buffer = self._buffer.partition(b"\r\n")
        return line

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            try:
                size = int(self._read_line().split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise HttpFailure("protocol", "a chunk size is not a number") from None
            if size == 0:
                while self._read_line():  # trailers, up to the empty line
                    pass
                return b"".join(parts)
            total += size
            if total > limit:
                raise HttpFailure("protocol", "the answer is too large")
            parts.append(self._read_exactly(size))
            self._read_exactly(2)

    def _read_to_close(self, limit: int) -> bytes:
        while len(self._buffer) <= limit:
            chunk = self._sock.recv(65536)
            if not chunk:
                data, self._buffer = self._buffer, b""
                return data
            self._buffer += chunk
        raise HttpFailure("protocol", "the answer is too large")


def _connect(scheme: str, host: str, port: int, context: Any, timeout: float) -> Any:
    """A connected socket (TLS-wrapped and handshaken for https); :class:`HttpFailure` otherwise."""
    import socket
    import ssl

    where = f"{host}:{port}"
    # a str host goes through the idna codec (which loads re and unicodedata); ASCII needs none
    name: Any = host.encode("ascii") if host.isascii() else host
    proxy = https_proxy(host) if scheme == "https" else None
    try:
        if proxy is None:
            raw = socket.create_connection((name, port), timeout=timeout)
        else:
            raw = _tunnel(proxy, host, port, timeout)
    except TimeoutError:
        raise HttpFailure("timeout", f"no answer from {where} within {timeout:g} s") from None
    except OSError:
        via = f" through the proxy {proxy[0]}:{proxy[1]}" if proxy else ""
        raise HttpFailure("connect", f"cannot connect to {where}{via}") from None
    if scheme != "https":
        return raw
    try:
        return context.wrap_socket(raw, server_hostname=name)  # bytes: ssl skips the idna codec too
    except (ssl.SSLError, ssl.CertificateError):
        raw.close()
        raise HttpFailure("tls", f"TLS verification of {where} failed") from None
    except TimeoutError:
        raw.close()
        raise HttpFailure("timeout", f"no answer from {where} within {timeout:g} s") from None
    except OSError:
        raw.close()
        raise HttpFailure("connect", f"the connection to {where} failed during the TLS handshake") from None


def https_proxy(host: str) -> tuple[str, int, str | None] | None:
    """(host, port, Proxy-Authorization value) of the proxy for ``https://host`` from
    ``https_proxy`` / ``HTTPS_PROXY``, unless ``no_proxy`` / ``NO_PROXY`` names the host (as
    requests reads them); None for a direct connection."""
    from urllib.parse import unquote, urlsplit

    url = os.environ.get("https_proxy") or os.environ.get("HTTPS_PROXY")
    if not url:
        return None
    bypass = os.environ.get("no_proxy") or os.environ.get("NO_PROXY") or ""
    for entry in (e.strip().lower() for e in bypass.split(",")):
        entry = entry.lstrip(".").rpartition(":")[0] if ":" in entry and "]" not in entry else entry.lstrip(".")
        if entry == "*" or (entry and (host.lower() == entry or host.lower().endswith("." + entry))):
            return None
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if not parts.hostname:
        return None
    auth = None
    if parts.username is not None:
        import base64

        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        auth = "Basic " + base64.b64encode(pair).decode("ascii")
    return parts.hostname, parts.port or 80, auth


def _tunnel(proxy: tuple[str, int, str | None], host: str, port: int, timeout: float) -> Any:
    """A socket through the proxy's ``CONNECT host:port`` tunnel (HTTP/1.1, RFC 9110 section 9.3.6)."""
    import socket

    sock = socket.create_connection((proxy[0], proxy[1]), timeout=timeout)
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}", *([f"Proxy-Authorization: {proxy[2]}"] if proxy[2] else [])]
    try:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        head = b""
        while b"\r\n\r\n" not in head:  # read byte by byte: nothing of the tunnel may be consumed
            byte = sock.recv(1)
            if not byte or len(head) > MAX_HEAD:
                raise ConnectionError("the proxy closed the connection")
            head += byte
        status = head.split(b" ", 2)[1] if head.startswith(b"HTTP/1.") else b""
        if status != b"200":
            raise ConnectionError(f"the proxy refused the tunnel ({status.decode('latin-1') or 'not HTTP'})")
    except BaseException:
        sock.close()
        raise
    return sock


class _Pending:
    """A connection being opened in a thread; :meth:`result` waits for it (or its failure)."""

    def __init__(self, opener: Any) -> None:
        import threading

        self._opener = opener
        self._value: Connection | None = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._discarded = False
        self._thread = threading.Thread(target=self._run, name="gw-preconnect", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            value = self._opener()
        except BaseException as exc:  # handed to the caller of result()
            self._error = exc
            return
        with self._lock:
            if not self._discarded:
                self._value = value
                return
        value.close()  # nobody wants it any more

    def result(self) -> Connection:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value

    def discard(self) -> None:
        """Close it without waiting: a connection still opening is closed by its thread."""
        with self._lock:
            self._discarded = True
            value, self._value = self._value, None
        if value is not None:
            value.close()


class HttpClient:
    """HTTP calls with one kept-alive connection per host; ``verify`` as requests takes it.

    ``preconnect(url)`` opens the connection to ``url``'s host in a thread (the SSL context
    loads there too); the first request to that host waits for it. Use as a context manager
    or call :meth:`close`.
    """

    def __init__(self, verify: bool | str = True, timeout: float = 30.0) -> None:
        self.verify = verify
        self.timeout = timeout
        self._context: Any = None
        self._connections: dict[tuple[str, str, int], Connection | _Pending] = {}

    def _tls(self) -> Any:
        if self._context is None:
            self._context = tls_context(self.verify)
        return self._context

    def _open(self, scheme: str, host: str, port: int) -> Connection:
        return Connection(scheme, host, port, self._tls() if scheme == "https" else None, self.timeout)

    def preconnect(self, url: str) -> None:
        """Start opening the connection to ``url``'s host now, in a thread (errors wait for the request)."""
        scheme, host, port, _ = split_url(url)
        if (scheme, host, port) not in self._connections:
            self._connections[(scheme, host, port)] = _Pending(lambda: self._open(scheme, host, port))

    def request(self, method: str, url: str, *, headers: dict[str, str] | None = None, body: bytes = b"",
                limit: int = MAX_BODY) -> HttpResponse:
        """One request; an answer of any status (3xx included) or :class:`HttpFailure`."""
        scheme, host, port, target = split_url(url)
        fields = {"User-Agent": USER_AGENT, "Accept": "*/*", "Accept-Encoding": "identity"}
        for key, value in (headers or {}).items():
            fields = {k: v for k, v in fields.items() if k.lower() != key.lower()}
            fields[key] = value
        if body or method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
            fields["Content-Length"] = str(len(body))
        for key, value in fields.items():
            if any(c in f"{key}{value}" for c in "\r\n\0"):
                raise ValueError(f"header {key!r} holds a line break")
        items = list(fields.items())
        for attempt in (1, 2):
            connection = self._take(scheme, host, port)
            reused = connection.used
            try:
                status, reason, answer, data = connection.request(method, target, items, body, limit)
            except HttpFailure as exc:
                connection.close()
                self._connections.pop((scheme, host, port), None)
                if reused and attempt == 1 and exc.reason == "protocol" and "closed" in str(exc):
                    continue  # the server closed an idle keep-alive connection: one fresh try
                raise
            except TimeoutError:
                connection.close()
                self._connections.pop((scheme, host, port), None)
                raise HttpFailure("timeout", f"no answer from {host}:{port} within {self.timeout:g} s") from None
            except OSError:
                connection.close()
                self._connections.pop((scheme, host, port), None)
                if reused and attempt == 1:
                    continue
                raise HttpFailure("connect", f"the connection to {host}:{port} failed") from None
            if not connection.reusable:
                connection.close()
                self._connections.pop((scheme, host, port), None)
            return HttpResponse(status, reason, answer, data, url)
        raise AssertionError("unreachable")

    def _take(self, scheme: str, host: str, port: int) -> Connection:
        held = self._connections.get((scheme, host, port))
        if isinstance(held, _Pending):
            try:
                held = held.result()
            except BaseException:
                self._connections.pop((scheme, host, port), None)
                raise
        if held is None or not held.reusable:
            held = self._open(scheme, host, port)
        self._connections[(scheme, host, port)] = held
        return held

    def close(self) -> None:
        for held in self._connections.values():
            if isinstance(held, _Pending):
                held.discard()
            else:
                held.close()
        self._connections.clear()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def encode_request(*, params: dict[str, Any] | None = None, data: Any = None, json: Any = None,
                   headers: dict[str, str] | None = None) -> tuple[str, dict[str, str], bytes]:
    """(query suffix, headers, body) for requests-style ``params``, ``data`` (a form dict, str or
    bytes) and ``json`` arguments."""
    from urllib.parse import urlencode

    fields = dict(headers or {})
    lower = {k.lower() for k in fields}
    query = urlencode(params, doseq=True) if params else ""
    body = b""
    if json is not None:
        import json as _json

        body = _json.dumps(json, allow_nan=False).encode("utf-8")
        if "content-type" not in lower:
            fields["Content-Type"] = "application/json"
    elif isinstance(data, dict):
        body = urlencode(data, doseq=True).encode("ascii")
        if "content-type" not in lower:
            fields["Content-Type"] = "application/x-www-form-urlencoded"
    elif isinstance(data, str):
        body = data.encode("utf-8")
    elif data is not None:
        body = bytes(data)
    return query, fields, body


def with_query(url: str, query: str) -> str:
    """``url`` with ``query`` appended (after any query it has)."""
    base = url.partition("#")[0]
    if not query:
        return base
    return f"{base}{'&' if '?' in base else '?'}{query}"
