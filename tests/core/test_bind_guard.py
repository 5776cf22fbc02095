"""The loopback-only guard of the test suite (issue 15.8): a bind beyond loopback is refused, here and in children."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from tests.bind_guard import loopback_only


@pytest.mark.parametrize("host, ok", [("127.0.0.1", True), ("127.9.9.9", True), ("::1", True), ("localhost", True),
                                      ("::ffff:127.0.0.1", True), ("192.0.2.7", True), ("2001:db8::1", True),
                                      ("0.0.0.0", False), ("", False), ("::", False), ("10.0.0.1", False),
                                      ("::ffff:0.0.0.0", False), ("example.com", False)])
def test_the_decision(host, ok):
    assert loopback_only.allowed(host) is ok


def test_a_wildcard_bind_in_the_test_process_is_refused_and_noted():
    with socket.socket() as sock, pytest.raises(OSError, match="tests bind loopback only"):
        sock.bind(("0.0.0.0", 0))
    assert loopback_only.violations and "0.0.0.0" in loopback_only.violations[-1]
    loopback_only.violations.clear()  # this test's bind was meant; the autouse check would fail it otherwise
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # loopback is fine


def test_a_python_child_gets_the_guard_and_its_refusal_is_logged(tmp_path):
    log = tmp_path / "binds.log"
    probe = "import socket; s = socket.socket(socket.AF_INET6); s.bind(('::', 0))"
    result = subprocess.run([sys.executable, "-c", probe], check=False, capture_output=True, text=True, timeout=30,
                            env={**os.environ, "GW_TEST_BIND_LOG": str(log)})
    assert result.returncode != 0 and "tests bind loopback only" in result.stderr
    assert "binds ('::', 0" in log.read_text()


def test_a_client_s_wildcard_source_address_is_not_a_listener():
    """paho connects with ``source_address=("", 0)``: an ephemeral client port, never a listener."""
    server = socket.create_server(("127.0.0.1", 0))
    try:
        client = socket.create_connection(server.getsockname(), timeout=5, source_address=("", 0))
        client.close()
    finally:
        server.close()
    listener = socket.socket()
    try:
        with pytest.raises(OSError, match="loopback only"):
            listener.bind(("", 0))  # the same address bound by hand, to listen on: refused
    finally:
        listener.close()
        loopback_only.violations.clear()
