"""gw's HTTP client: the standard library's ``http.client`` over verified TLS, with what gw adds.

``http.client`` reads the wire (status line, headers, ``Content-Length`` / chunked / read-to-close
bodies, keep-alive, the proxy's ``CONNECT`` tunnel); this module adds what is gw's: the CA
bundle, the proxy settings, a connection opened ahead in a thread, the size limit of an
answer, and failures as one line. It never follows a redirect (``http.client`` does not; a 3xx
is an answer like any other) and never decompresses (it asks for ``identity``). ``http.client``
loads part of the ``email`` package, so it is imported only when a connection opens: a cache
hit imports no HTTP library (docs/performance.md "Cache miss").

TLS: ``ssl.create_default_context`` - certificate required, host name checked - with the CA
bundle given, else as requests picks one (``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``, else
certifi's bundle when installed, else the system's trust store). A connection can be opened
ahead of its first request in a thread (:meth:`HttpClient.preconnect`), so the TCP and TLS
handshakes overlap other work, e.g. the SIM's APDUs on the Krypton path. An https URL goes
through the proxy in ``https_proxy`` / ``HTTPS_PROXY`` (a ``CONNECT`` tunnel with Basic
credentials from the proxy URL; TLS is still end to end) unless ``no_proxy`` names its host,
as requests does.

Failures are :class:`HttpFailure` with ``reason`` ``tls``, ``timeout``, ``connect`` or
``protocol`` and a message without the request's headers or body.
"""

from __future__ import annotations

import os
from typing import Any

MAX_BODY = 16 * 1024 * 1024  # the head is bounded by http.client: 64 KiB a line, 100 fields
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


def _quick(conn: Any) -> None:
    """(Linux) ACK at once: a server writing head and body apart must not wait 40 ms for our ACK.
    ``http.client`` already turns Nagle off."""
    import socket

    if conn.sock is not None and hasattr(socket, "TCP_QUICKACK"):
        try:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        except OSError:
            pass


def _failure(exc: BaseException, where: str, timeout: float, *, during: str) -> HttpFailure:
    """The :class:`HttpFailure` for what ``http.client`` / ``ssl`` / ``socket`` raised (no request in it)."""
    import http.client
    import ssl

    if isinstance(exc, HttpFailure):
        return exc
    if isinstance(exc, (ssl.SSLError, ssl.CertificateError)):
        return HttpFailure("tls", f"TLS verification of {where} failed")
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError
        return HttpFailure("timeout", f"no answer from {where} within {timeout:g} s")
    if isinstance(exc, http.client.RemoteDisconnected):
        return HttpFailure("protocol", f"{where} closed the connection before the answer was complete")
    if isinstance(exc, OSError):
        return HttpFailure("connect", f"cannot connect to {where}" if during == "connect" else f"the connection to {where} failed")
    if isinstance(exc, http.client.IncompleteRead):  # also a malformed chunk
        return HttpFailure("protocol", f"the answer from {where} is incomplete (cut short or badly chunked)")
    if isinstance(exc, http.client.LineTooLong):
        return HttpFailure("protocol", f"the answer from {where} has a line that is too long")
    return HttpFailure("protocol", f"the answer from {where} is not valid HTTP/1.x ({type(exc).__name__})")


class _Unsendable(ValueError):
    """``http.client`` refused to send the request (its own message would quote the value)."""


class _Pending:
    """A connection being opened in a thread; :meth:`result` waits for it (or its failure)."""

    def __init__(self, opener: Any) -> None:
        import threading

        self._opener = opener
        self._value: Any = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._discarded = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gw-preconnect", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._open()
        finally:
            self._done.set()
        _warm_cipher()

    def _open(self) -> None:
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

    def result(self) -> Any:
        self._done.wait()
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


def _warm_cipher() -> None:
    """Load the cache's cipher (cryptography's binding) once a connection opened ahead is ready.

    A connection opened ahead means a cache miss, which ends by sealing its entry; the caller
    meanwhile usually waits for something else (a SIM's answers), so the binding's load (about
    5 ms) leaves the path to the first byte. Any failure is left for the cache to report.
    """
    try:
        from .cachehit import aesgcm_class

        aesgcm_class()
    except Exception:  # pragma: no cover - the cache imports it again and reports
        pass


class HttpClient:
    """HTTP calls with one kept-alive ``http.client`` connection per host; ``verify`` as requests takes it.

    ``preconnect(url)`` opens the connection to ``url``'s host in a thread (the SSL context
    loads there too); the first request to that host waits for it. Use as a context manager
    or call :meth:`close`.
    """

    def __init__(self, verify: bool | str = True, timeout: float = 30.0) -> None:
        self.verify = verify
        self.timeout = timeout
        self._context: Any = None
        self._connections: dict[tuple[str, str, int], Any] = {}  # http.client connection or _Pending
        self._used: set[tuple[str, str, int]] = set()

    def _tls(self) -> Any:
        if self._context is None:
            self._context = tls_context(self.verify)
        return self._context

    def _open(self, scheme: str, host: str, port: int) -> Any:
        """A connected ``HTTP(S)Connection`` (TLS handshaken, through the proxy's tunnel if any)."""
        import http.client

        conn: Any
        proxy = https_proxy(host) if scheme == "https" else None
        if scheme == "http":
            conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
        elif proxy is None:
            conn = http.client.HTTPSConnection(host, port, timeout=self.timeout, context=self._tls())
        else:
            conn = http.client.HTTPSConnection(proxy[0], proxy[1], timeout=self.timeout, context=self._tls())
            conn.set_tunnel(host, port, headers={"Proxy-Authorization": proxy[2]} if proxy[2] else None)
        try:
            conn.connect()
        except BaseException as exc:
            conn.close()
            if not isinstance(exc, Exception):
                raise
            failure = _failure(exc, f"{host}:{port}", self.timeout, during="connect")
            if proxy is not None and failure.reason == "connect":
                failure = HttpFailure("connect", f"cannot connect to {host}:{port} through the proxy {proxy[0]}:{proxy[1]}")
            raise failure from None
        return conn

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
        for key, value in fields.items():  # checked here: http.client's own error quotes the value
            if any(c in f"{key}{value}" for c in "\r\n\0"):
                raise ValueError(f"header {key!r} holds a line break")
        slot = (scheme, host, port)
        for attempt in (1, 2):
            conn = self._take(slot)
            reused = slot in self._used
            self._used.add(slot)
            try:
                response = self._exchange(conn, method, target, fields, body, limit, f"{host}:{port}")
            except BaseException as exc:
                self._drop(slot)
                if not isinstance(exc, Exception):
                    raise
                if isinstance(exc, _Unsendable):
                    raise ValueError(str(exc)) from None
                stale = isinstance(exc, OSError) and not isinstance(exc, TimeoutError)
                if reused and attempt == 1 and stale:
                    continue  # the server closed an idle keep-alive connection: one fresh try
                raise _failure(exc, f"{host}:{port}", self.timeout, during="request") from None
            if conn.sock is None:  # http.client closed it (Connection: close, HTTP/1.0, read to close)
                self._drop(slot)
            return HttpResponse(*response, url)
        raise AssertionError("unreachable")

    @staticmethod
    def _exchange(conn: Any, method: str, target: str, fields: dict[str, str], body: bytes, limit: int,
                  where: str) -> tuple[int, str, Headers, bytes]:
        """Send one request on ``conn``; (status, reason, headers, body) of its answer."""
        import http.client

        try:
            conn.request(method, target, body=body or None, headers=fields)
        except (ValueError, http.client.InvalidURL):  # a character http.client will not send (its message may quote it)
            raise _Unsendable("the request cannot be sent: a header or the URL holds a character HTTP does not allow") from None
        _quick(conn)
        answer = conn.getresponse()
        try:
            fields_in = Headers()
            for name, value in answer.getheaders():
                name = name.lower()
                fields_in[name] = f"{fields_in[name]}, {value}" if name in fields_in else value
            if answer.length is not None:  # Content-Length (0 for HEAD, 1xx, 204, 304)
                if answer.length > limit:
                    raise HttpFailure("protocol", f"the answer from {where} is too large")
                data = answer.read()  # IncompleteRead when the connection closes early
            else:  # chunked, or read to close
                parts: list[bytes] = []
                total = 0
                while chunk := answer.read(65536):
                    total += len(chunk)
                    if total > limit:
                        raise HttpFailure("protocol", f"the answer from {where} is too large")
                    parts.append(chunk)
                data = b"".join(parts)
        except ValueError:  # http.client's chunk-size parse
            answer.close()
            raise HttpFailure("protocol", f"the answer from {where} is not valid HTTP/1.x (a bad chunk size)") from None
        except BaseException:
            answer.close()
            raise
        return answer.status, answer.reason, fields_in, data

    def _take(self, key: tuple[str, str, int]) -> Any:
        held = self._connections.get(key)
        if isinstance(held, _Pending):
            try:
                held = held.result()
            except BaseException:
                self._connections.pop(key, None)
                raise
        if held is None:
            held = self._open(*key)
            self._used.discard(key)
        self._connections[key] = held
        return held

    def _drop(self, key: tuple[str, str, int]) -> None:
        held = self._connections.pop(key, None)
        self._used.discard(key)
        if isinstance(held, _Pending):
            held.discard()
        elif held is not None:
            held.close()

    def close(self) -> None:
        for key in list(self._connections):
            self._drop(key)

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
