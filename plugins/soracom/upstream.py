"""A small HTTP/1.1 client over verified TLS, for the forwarder's upstream side.

http.client would do, but importing it (it loads the email package) costs more than the
whole of gw's share of a ``gw soracom`` call; this reads exactly what the SORACOM API
sends (Content-Length or chunked bodies, keep-alive) and nothing more. It never follows
a redirect: a 3xx is returned like any other answer. Standard library only.

TLS: :func:`tls_client` uses ``ssl.create_default_context()`` - certificate required, host
name (or IP address) checked, the CA bundle or the system's trust store. (Driving CPython's
private ``_ssl`` directly would save the import of ``ssl``, a few milliseconds; a credential
tool does not build its TLS on a private API.)
"""

from __future__ import annotations

import _socket

MAX_HEAD = 64 * 1024
NO_BODY = (204, 304)


# Linux: ACK at once instead of up to 40 ms later. A server that writes its answer's head and
# body separately (Nagle on its side) otherwise waits for our delayed ACK between the two.
_QUICKACK = getattr(_socket, "TCP_QUICKACK", None)


def _no_delays(sock: object) -> None:
    try:
        sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)  # type: ignore[attr-defined]
        if _QUICKACK is not None:
            sock.setsockopt(_socket.IPPROTO_TCP, _QUICKACK, 1)  # type: ignore[attr-defined]
    except OSError:
        pass


class UpstreamError(Exception):
    """The upstream answered something that is not HTTP/1.x."""


class StdTLS:
    """Verified TLS through the ssl module: ``ssl.create_default_context()``'s checks, trusting
    ``cafile``/``capath`` when given, else the system's trust store."""

    def __init__(self, cafile: str | None, capath: str | None = None) -> None:
        import ssl

        self._context = ssl.create_default_context(cafile=cafile, capath=capath)

    def connect(self, host: str, port: int, timeout: float) -> object:
        import socket

        raw = socket.create_connection((host, port), timeout=timeout)
        try:
            return self._context.wrap_socket(raw, server_hostname=host)
        except BaseException:
            raw.close()
            raise


def tls_client(cafile: str | None, capath: str | None = None) -> StdTLS:
    """A verifying TLS client: the CA bundle ``cafile`` (and directory ``capath``), else the system's trust store."""
    return StdTLS(cafile, capath)


class Connection:
    """One keep-alive TLS connection to ``host:port`` made by ``tls`` (:func:`tls_client`)."""

    def __init__(self, host: str, port: int, tls: StdTLS, timeout: float) -> None:
        self._sock: object = tls.connect(host, port, timeout)
        self._host = host if port == 443 else f"{host}:{port}"
        self._timeout = timeout
        self._buffer = b""
        self.reusable = True
        self.sent = False  # the last request went out whole
        self.answered = False  # a byte of an answer arrived on this connection

    def alive(self) -> bool:
        """Still open, with nothing unread (asked before reusing an idle connection). A TLS 1.3
        session ticket that arrived meanwhile is consumed here and does not count as data."""
        import ssl

        if self._buffer or not self.reusable:
            return False
        sock = self._sock
        try:
            sock.setblocking(False)  # type: ignore[attr-defined]
            try:
                sock.recv(1)  # type: ignore[attr-defined]
            finally:
                sock.settimeout(self._timeout)  # type: ignore[attr-defined]
        except (ssl.SSLWantReadError, BlockingIOError):
            return True
        except OSError:
            return False
        return False  # end of file, or bytes nobody asked for

    def close(self) -> None:
        self.reusable = False
        try:
            self._sock.close()  # type: ignore[attr-defined]
        except OSError:
            pass

    def request(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes,
                limit: int) -> tuple[int, str, list[tuple[str, str]], bytes]:
        """Send one request; (status, reason, headers, body) of the answer (at most ``limit`` bytes)."""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self._host}"] + [f"{k}: {v}" for k, v in headers]
        _no_delays(self._sock)
        self.sent = False
        self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)  # type: ignore[attr-defined]
        self.sent = True
        head = self._read_head()
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        version, _, rest = status_line.partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise UpstreamError("not an HTTP/1.x answer")
        status = int(code)
        answer_headers = []
        for line in header_lines:
            name, colon, value = line.partition(":")
            if colon:
                answer_headers.append((name.strip(), value.strip()))
        fields = {k.lower(): v for k, v in answer_headers}
        if version == "HTTP/1.0" or "close" in fields.get("connection", "").lower():
            self.reusable = False
        if method == "HEAD" or status in NO_BODY or 100 <= status < 200:
            data = b""
        elif "chunked" in fields.get("transfer-encoding", "").lower():
            data = self._read_chunked(limit)
        elif fields.get("content-length", "").isdigit():
            length = int(fields["content-length"])
            if length > limit:
                raise UpstreamError("answer too large")
            data = self._read_exactly(length)
        else:
            self.reusable = False
            data = self._read_to_close(limit)
        return status, reason, answer_headers, data

    # -- reading ------------------------------------------------------------------------------
    def _fill(self) -> None:
        _no_delays(self._sock)  # quick ACK lasts only until the kernel sees the exchange as interactive again
        chunk = self._sock.recv(65536)  # type: ignore[attr-defined]
        if not chunk:
            raise UpstreamError("the connection closed early")
        self.answered = True
        self._buffer += chunk

    def _read_head(self) -> bytes:
        while b"\r\n\r\n" not in self._buffer:
            if len(self._buffer) > MAX_HEAD:
                raise UpstreamError("answer head too large")
            self._fill()
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        return head

    def _read_exactly(self, length: int) -> bytes:
        while len(self._buffer) < length:
            self._fill()
        data, self._buffer = self._buffer[:length], self._buffer[length:]
        return data

    def _read_line(self) -> bytes:
        while b"\r\n" not in self._buffer:
            if len(self._buffer) > MAX_HEAD:
                raise UpstreamError("chunk line too long")
            self._fill()
        line, _, self._buffer = self._buffer.partition(b"\r\n")
        return line

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size_text = self._read_line().split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise UpstreamError("bad chunk size") from None
            if size == 0:
                while self._read_line():  # trailers, up to the empty line
                    pass
                return b"".join(parts)
            total += size
            if total > limit:
                raise UpstreamError("answer too large")
            parts.append(self._read_exactly(size))
            self._read_exactly(2)

    def _read_to_close(self, limit: int) -> bytes:
        while len(self._buffer) <= limit:
            chunk = self._sock.recv(65536)  # type: ignore[attr-defined]
            if not chunk:
                data, self._buffer = self._buffer, b""
                return data
            self._buffer += chunk
        raise UpstreamError("answer too large")
