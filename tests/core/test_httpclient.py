"""gw's small HTTP client (``gw.plugin.HttpClient``, ``http_request``): real TLS on 127.0.0.1
against an emulator server, a connection opened ahead in a thread, and a real CONNECT proxy."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from gw.plugin import HttpClient, HttpFailure, StepError, http_request
from gw_emulators.httpserver import EmulatorServer, Request, Response, json_response
from gw_emulators.tls import LocalCA


class Echo(EmulatorServer):
    """Answers what it got: method, query, body, content type and one header."""

    name = "echo"

    def __init__(self, ca: LocalCA) -> None:
        super().__init__(ca)
        self.route("POST", "/echo", self._echo)
        self.route("GET", "/echo", self._echo)

    def _echo(self, request: Request) -> Response:
        return json_response(200, {"method": request.method, "query": request.query, "body": request.body.decode(),
                                   "type": request.header("content-type"), "x": request.header("x-gw-test")},
                             {"X-Answer": "yes"})


@pytest.fixture
def ca(tmp_path: Path) -> LocalCA:
    return LocalCA(tmp_path / "ca")


@pytest.fixture
def echo(ca: LocalCA):
    with Echo(ca) as server:
        yield server


class Ctx:
    def __init__(self, verify: bool | str) -> None:
        self.tls_verify = verify


def test_http_request_sends_form_json_and_query_and_reads_the_answer(echo, ca) -> None:
    ctx = Ctx(str(ca.ca_path))
    form = http_request(ctx, "POST", f"{echo.url}/echo", what="echo", data={"a": "1 2", "b": "%+:"},
                        params={"q": "x y"}, headers={"X-Gw-Test": "h"})
    assert form.status_code == 200 and form.headers.get("x-answer") == "yes" and form.headers["X-ANSWER"] == "yes"
    assert form.json() == {"method": "POST", "query": {"q": ["x y"]}, "body": "a=1+2&b=%25%2B%3A",
                           "type": "application/x-www-form-urlencoded", "x": "h"}
    doc = http_request(ctx, "POST", f"{echo.url}/echo", what="echo", json={"k": [1, "é"]}).json()
    assert doc["type"] == "application/json" and doc["body"] == '{"k": [1, "\\u00e9"]}'


def test_a_connection_opened_ahead_serves_several_requests(echo, ca) -> None:
    with HttpClient(str(ca.ca_path), 10) as client:
        client.preconnect(echo.url)
        first = client.request("GET", f"{echo.url}/echo?n=1")
        second = client.request("POST", f"{echo.url}/echo", body=b"two", headers={"Content-Type": "text/plain"})
    assert first.json()["query"] == {"n": ["1"]} and second.json()["body"] == "two"


def test_failures_are_one_line_and_name_the_reason(echo, ca, tmp_path: Path) -> None:
    other = LocalCA(tmp_path / "other")
    with HttpClient(str(other.ca_path), 5) as client, pytest.raises(HttpFailure) as tls:
        client.request("GET", f"{echo.url}/echo")
    assert tls.value.reason == "tls" and "TLS verification of 127.0.0.1" in str(tls.value)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with HttpClient(True, 5) as client:
        client.preconnect(f"https://127.0.0.1:{port}")  # fails in its thread; the request reports it
        with pytest.raises(HttpFailure) as refused:
            client.request("GET", f"https://127.0.0.1:{port}/")
    assert refused.value.reason == "connect"
    with pytest.raises(StepError, match=r"cannot reach echo \(127\.0\.0\.1:\d+\): connection failed"):
        http_request(Ctx(True), "GET", f"https://127.0.0.1:{port}/", what="echo")


class ConnectProxy:
    """A forward proxy on 127.0.0.1 that takes CONNECT and pipes bytes (TLS stays end to end)."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            head += client.recv(1)
        self.requests.append(head)
        host, _, port = head.split(b" ")[1].decode().rpartition(":")
        upstream = socket.create_connection((host, int(port)))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

        def pipe(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
        pipe(client, upstream)

    def close(self) -> None:
        self.sock.close()


def test_https_goes_through_the_https_proxy_unless_no_proxy_names_the_host(echo, ca, monkeypatch) -> None:
    """As requests did: ``HTTPS_PROXY`` (with Basic credentials in its URL), ``NO_PROXY`` bypasses it."""
    proxy = ConnectProxy()
    try:
        monkeypatch.setenv("HTTPS_PROXY", f"http://user:p%40ss@127.0.0.1:{proxy.port}")
        monkeypatch.delenv("https_proxy", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        answer = http_request(Ctx(str(ca.ca_path)), "GET", f"{echo.url}/echo", what="echo")
        assert answer.status_code == 200
        (head,) = proxy.requests
        # http.client's tunnel: HTTP/1.0 up to Python 3.11, HTTP/1.1 (with Host) from 3.12
        assert head.startswith(f"CONNECT 127.0.0.1:{echo.port} HTTP/1.".encode())
        assert b"Proxy-Authorization: Basic dXNlcjpwQHNz\r\n" in head  # user:p@ss
        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
        assert http_request(Ctx(str(ca.ca_path)), "GET", f"{echo.url}/echo", what="echo").status_code == 200
        assert len(proxy.requests) == 1
    finally:
        proxy.close()


def test_closing_does_not_wait_for_a_connection_still_opening() -> None:
    """A step that fails before its first request (no SIM) must not wait for a slow upstream."""
    import time

    silent = socket.create_server(("127.0.0.1", 0))  # accepts TCP, never speaks TLS
    try:
        client = HttpClient(True, 30)
        client.preconnect(f"https://127.0.0.1:{silent.getsockname()[1]}")
        started = time.monotonic()
        client.close()
        assert time.monotonic() - started < 5  # not the 30 s the handshake could wait
    finally:
        silent.close()


class RawServer:
    """A plain-HTTP server on 127.0.0.1 that answers every request with the same raw bytes and closes."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            with client:
                head = b""
                while b"\r\n\r\n" not in head and (data := client.recv(4096)):
                    head += data
                client.settimeout(0.2)  # the body too: closing with unread bytes would send a reset
                try:
                    while client.recv(4096):
                        pass
                except OSError:
                    pass
                client.sendall(self.answer)

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize(("answer", "reason", "text"), [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\nshort", "protocol", "incomplete"),
    (b"", "protocol", "closed the connection before"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n" + b"x" * 2000, "protocol", "too large"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + (b"3e8\r\n" + b"x" * 1000 + b"\r\n") * 2 + b"0\r\n\r\n",
     "protocol", "too large"),
    (b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 2000, "protocol", "too large"),
    (b"SSH-2.0-OpenSSH\r\n\r\n", "protocol", "not valid HTTP/1.x"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n", "protocol", "incomplete"),
])
def test_a_bad_or_oversized_answer_is_a_protocol_failure(answer: bytes, reason: str, text: str) -> None:
    server = RawServer(answer)
    try:
        with HttpClient(True, 5) as client, pytest.raises(HttpFailure) as failure:
            client.request("POST", f"{server.url}/x", body=b"secret-body", headers={"Authorization": "secret-head"},
                           limit=1024)
        assert failure.value.reason == reason and text in str(failure.value)
        assert "secret" not in str(failure.value) and failure.value.__cause__ is None
    finally:
        server.close()


def test_chunked_and_read_to_close_answers_and_a_redirect_that_is_not_followed() -> None:
    chunked = RawServer(b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/\r\nSet-Cookie: a\r\nSet-Cookie: b\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n")
    to_close = RawServer(b"HTTP/1.0 200 OK\r\n\r\nuntil close")
    try:
        with HttpClient(True, 5) as client:
            moved = client.request("GET", f"{chunked.url}/a")
            plain = client.request("GET", f"{to_close.url}/b")
    finally:
        chunked.close()
        to_close.close()
    assert (moved.status_code, moved.content, moved.headers["location"]) == (302, b"abc", "http://127.0.0.1:9/")
    assert moved.headers.get("SET-COOKIE") == "a, b"
    assert (plain.status_code, plain.content) == (200, b"until close")


def test_a_header_http_cannot_carry_is_refused_without_its_value() -> None:
    with HttpClient(True, 5) as client, pytest.raises(ValueError) as refused:
        client.request("GET", "http://127.0.0.1:9/", headers={"Authorization": "sec\r\nret"})
    assert "Authorization" in str(refused.value) and "sec" not in str(refused.value)
    server = RawServer(b"HTTP/1.1 204 No Content\r\n\r\n")
    try:
        with HttpClient(True, 5) as client, pytest.raises(ValueError) as refused:
            client.request("GET", f"{server.url}/", headers={"Authorization": "secr\u20acet"})
        assert "secr" not in str(refused.value) and refused.value.__cause__ is None
        assert refused.value.__context__ is None or "secr" not in str(refused.value.__context__)
    finally:
        server.close()


def test_a_kept_alive_connection_the_server_closed_is_retried_once_on_a_fresh_one() -> None:
    server = RawServer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")  # keep-alive, then it closes
    try:
        with HttpClient(True, 5) as client:
            answers = [client.request("GET", f"{server.url}/{n}").content for n in range(3)]
    finally:
        server.close()
    assert answers == [b"ok"] * 3
