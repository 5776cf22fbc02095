"""A guard that makes any bind beyond loopback an error, in the test process and in its Python children.

tests/conftest.py installs it with :func:`sys.addaudithook` (Python raises the audit event
``socket.bind`` with the socket and address before every bind, whatever module calls it)
and puts this directory on ``PYTHONPATH`` so that ``sitecustomize.py`` installs it in
every Python process the tests start (gw, emulators, probes). A refused bind raises
:class:`OSError` (EADDRNOTAVAIL: gw reports it as a listen failure) and appends a line to
the file named by ``GW_TEST_BIND_LOG``, which conftest turns into a failed test, so a
caller that swallows the error still fails.

Allowed: AF_UNIX and other non-IP families; IPv4/IPv6 loopback; ``localhost``; and the
documentation ranges (RFC 5737, RFC 3849), which no host running the tests has
configured, so binding one fails with nothing bound (tests use them to reach gw's
"beyond loopback" path without listening there).
"""

from __future__ import annotations

import errno
import os
import sys

_installed = False
_log_to_file = True
violations: list[str] = []


def allowed(host: object) -> bool:
    """True for an address a test may bind."""
    import ipaddress

    if not isinstance(host, str) or host == "":
        return False  # "" is INADDR_ANY
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False  # a name: it could resolve anywhere
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    documentation = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
    return address.is_loopback or any(address in ipaddress.ip_network(net) for net in documentation)


def _outgoing(address: object) -> bool:
    """A client's source address: ``socket.create_connection(..., source_address=("", 0))`` (paho's
    default) binds an ephemeral port only to connect from it; such a socket never listens."""
    if not (isinstance(address, tuple) and len(address) >= 2 and address[1] == 0):
        return False
    frame = sys._getframe(2)
    for _ in range(4):
        if frame is None:
            return False
        if frame.f_code.co_name == "create_connection" and frame.f_code.co_filename.endswith("socket.py"):
            return True
        frame = frame.f_back
    return False


def _hook(event: str, args: tuple) -> None:
    if event != "socket.bind":
        return
    sock, address = args
    import socket

    if getattr(sock, "family", None) not in (socket.AF_INET, socket.AF_INET6):
        return
    host = address[0] if isinstance(address, tuple) and address else address
    if allowed(host) or _outgoing(address):
        return
    line = f"pid {os.getpid()} ({' '.join(sys.argv)[:200]}) binds {address!r}: tests bind loopback only"
    violations.append(line)
    log = os.environ.get("GW_TEST_BIND_LOG") if _log_to_file else None
    if log:
        try:
            with open(log, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        except OSError:
            pass
    raise OSError(errno.EADDRNOTAVAIL, f"tests bind loopback only, not {host!r} (tests/bind_guard)")


def install(log_to_file: bool = True) -> None:
    """Install the guard in this process (conftest keeps the test process's notes in memory)."""
    global _installed, _log_to_file
    _log_to_file = log_to_file
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True
