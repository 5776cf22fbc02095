"""The shared emulator base: routes and counts, an injectable clock, and fault injection.

Every HTTP emulator (federation, SORACOM API, Krypton, Cognito, IoT, Endorse ...) subclasses
EmulatorServer, so what is tested here is what each of them offers the tests and the demo.
"""

from __future__ import annotations

import time

import pytest
import requests

from gw_emulators.httpserver import EmulatorServer, json_response


class Echo(EmulatorServer):
    name = "echo"

    def __init__(self, ca, **kwargs):
        super().__init__(ca, **kwargs)
        self.route("GET", r"/now", lambda request: json_response(200, {"now": self.clock()}), name="now")


@pytest.fixture
def echo(ca):
    with Echo(ca) as server:
        yield server


def get(server, ca, path="/now", timeout=10.0):
    return requests.get(server.url + path, verify=str(ca.ca_path), timeout=timeout)


def test_routes_are_counted_and_unknown_paths_are_404(echo, ca):
    assert get(echo, ca).status_code == 200
    assert get(echo, ca, "/nope").status_code == 404
    assert echo.calls["now"] == 1


def test_the_clock_is_injectable_and_can_be_advanced(ca):
    with Echo(ca, clock=lambda: 1000.0) as server:
        assert get(server, ca).json()["now"] == 1000.0
        server.advance(3600)
        assert get(server, ca).json()["now"] == 4600.0


def test_an_injected_status_answers_the_next_calls_then_stops(echo, ca):
    echo.inject("now", status=503, count=2)
    assert [get(echo, ca).status_code for _ in range(3)] == [503, 503, 200]
    assert echo.calls["now"] == 3


def test_a_garbage_body(echo, ca):
    echo.inject("now", garbage=True)
    reply = get(echo, ca)
    with pytest.raises(ValueError):
        reply.json()


def test_a_dropped_connection(echo, ca):
    echo.inject("now", drop=True)
    with pytest.raises(requests.ConnectionError):
        get(echo, ca)
    assert get(echo, ca).status_code == 200


def test_a_delay(echo, ca):
    echo.inject("now", delay=0.3)
    started = time.monotonic()
    assert get(echo, ca).status_code == 200
    assert time.monotonic() - started >= 0.3
    with pytest.raises(requests.Timeout):
        echo.inject("now", delay=1.0)
        get(echo, ca, timeout=0.2)


def test_a_fault_with_a_location_is_a_redirect(echo, ca, tripwire):
    echo.inject("now", status=307, location=tripwire.url(path="/elsewhere"))
    reply = requests.get(echo.url + "/now", verify=str(ca.ca_path), timeout=10, allow_redirects=False)
    assert reply.status_code == 307 and reply.headers["Location"] == tripwire.url(path="/elsewhere")
    assert tripwire.contacts() == []


def test_the_tripwire_records_every_contact_even_one_not_yet_accepted(tripwire):
    import socket

    with socket.create_connection(("127.0.0.1", tripwire.port), timeout=5) as conn:
        conn.sendall(b"GET /leak HTTP/1.1\r\nX-Secret: s\r\n\r\n")
        contacts = tripwire.contacts()  # counted at once, whether or not its thread accepted it yet
        assert len(contacts) == 1
    deadline = time.monotonic() + 5
    while not tripwire.contacts()[0] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tripwire.contacts() == [b"GET /leak HTTP/1.1\r\nX-Secret: s\r\n\r\n"]
    with pytest.raises(requests.ConnectionError):  # a client that follows fails fast
        requests.get(tripwire.url(), timeout=5)
    assert len(tripwire.contacts()) == 2


def test_a_client_hanging_up_mid_answer_prints_nothing(ca, capfd):
    """socketserver prints a traceback for an error in a connection's thread; a client that goes
    away before the answer is written is no error, and an in-process gw run would take the
    printed traceback for its own stderr."""
    import socket
    import ssl

    from gw_emulators.httpserver import Response

    with Echo(ca) as server:
        done = []

        def big(request):
            time.sleep(0.3)  # the client is gone by now
            done.append(True)
            return Response(200, b"x" * 4_000_000, {"Content-Type": "application/octet-stream"})

        server.route("GET", r"/big", big, name="big")
        context = ssl.create_default_context(cafile=str(ca.ca_path))
        with socket.create_connection(("127.0.0.1", server.port)) as raw:
            tls = context.wrap_socket(raw, server_hostname="127.0.0.1")
            tls.sendall(b"GET /big HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            tls.close()
        deadline = time.monotonic() + 10
        while not done and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
    assert done and server.calls["big"] == 1
    assert "Traceback" not in capfd.readouterr().err
