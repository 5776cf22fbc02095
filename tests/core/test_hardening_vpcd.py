"""Issue 8: the test pcscd's vpcd listens on 127.0.0.1 only, never on every interface.

tests/pcsc/pcscd.sh preloads tests/pcsc/bind_loopback.so into the pcscd it starts; the
shim turns the vpcd driver's wildcard bind into a loopback bind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PCSC_IN_CI, pcsc_unavailable

PCSC = Path(__file__).resolve().parents[1] / "pcsc"
# Asks libc's bind() for the wildcard (as vpcd does) only when bind is interposed by a preloaded
# library; otherwise it says so and binds nothing (issue 15.8: no test binds beyond loopback).
# It calls bind through ctypes, as a C program would, past Python's socket module.
PROBE = """
import ctypes, socket, struct, sys
default, libc = ctypes.CDLL(None, use_errno=True), ctypes.CDLL("libc.so.6")
address = lambda f: ctypes.cast(f, ctypes.c_void_p).value
if address(default.bind) == address(libc.bind):
    print("not interposed")
    sys.exit(3)
s = socket.socket()
wildcard = struct.pack("=HH4s8x", socket.AF_INET, socket.htons(0), socket.inet_aton("0.0.0.0"))
if default.bind(s.fileno(), ctypes.c_char_p(wildcard), len(wildcard)) != 0:
    sys.exit(ctypes.get_errno())
print(s.getsockname()[0])
"""


def _build(tmp_path: Path) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        if PCSC_IN_CI:
            pytest.fail("no C compiler under CI=true (tests/pcsc/install.sh installs gcc)")
        pytest.skip("no C compiler to build the shim")
    shim = tmp_path / "bind_loopback.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", str(shim), str(PCSC / "bind_loopback.c"),
                    "-ldl"], check=True, capture_output=True, timeout=60)
    return shim


def test_the_shim_turns_a_wildcard_bind_into_loopback(tmp_path):
    shim = _build(tmp_path)
    plain = subprocess.run([sys.executable, "-c", PROBE], check=False, capture_output=True, text=True, timeout=30)
    assert (plain.returncode, plain.stdout.strip()) == (3, "not interposed")  # no shim: the probe binds nothing
    shimmed = subprocess.run([sys.executable, "-c", PROBE], check=False, capture_output=True, text=True, timeout=30,
                             env={**os.environ, "LD_PRELOAD": str(shim)})
    assert shimmed.returncode == 0, shimmed.stderr
    assert shimmed.stdout.strip() == "127.0.0.1"


def test_pcscd_sh_preloads_the_shim():
    script = (PCSC / "pcscd.sh").read_text()
    start = script[script.index("start)"): script.index("stop)")]
    assert 'LD_PRELOAD="$SHIM" "$PCSCD" -f' in start


def _listeners(port: int) -> list[str]:
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and local.endswith(f":{port:04X}"):
                found.append(local)
    return found


def test_the_running_vpcd_listens_on_loopback_only(pcscd):
    pid_file = Path(os.environ.get("GW_PCSCD_PIDFILE", "/tmp/gw-test-pcscd.pid"))
    pid = pid_file.read_text().strip() if pid_file.exists() else ""
    environ = Path(f"/proc/{pid}/environ").read_bytes() if pid and Path(f"/proc/{pid}").exists() else b""
    if b"LD_PRELOAD=" not in environ:
        pcsc_unavailable("the running pcscd was not started by tests/pcsc/pcscd.sh with the loopback shim "
                         "(stop it and run: sh tests/pcsc/pcscd.sh start)")
    for port in (35963, 35964):
        listeners = _listeners(port)
        assert listeners, f"nothing listens on {port}"
        assert all(addr.startswith("0100007F:") for addr in listeners), listeners  # 127.0.0.1 only


@pytest.mark.parametrize("address, refused", [("0.0.0.0", True), ("[::]", True), ("192.0.2.7", True),
                                              ("127.0.0.1", False), ("[::1]", False)])
def test_pcscd_sh_refuses_a_running_pcscd_whose_vpcd_is_not_on_loopback(tmp_path, address, refused):
    """A pcscd started elsewhere (the system's, without the shim) is not reused when its vpcd
    listens beyond loopback. ``ss`` is a stand-in printing that listener (nothing real listens)."""
    import socket

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ss = bin_dir / "ss"
    ss.write_text(f"#!/bin/sh\necho 'LISTEN 0 5 {address}:35963 0.0.0.0:*'\n")
    ss.chmod(0o755)
    pid_file = tmp_path / "pcscd.pid"
    pid_file.write_text(str(os.getpid()))  # a live process stands for the running pcscd
    sock_path = tmp_path / "pcscd.comm"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "GW_PCSCD_PIDFILE": str(pid_file),
               "GW_PCSCD_SOCKET": str(sock_path)}
        result = subprocess.run(["sh", str(PCSC / "pcscd.sh"), "start"], env=env, capture_output=True, text=True,
                                timeout=30, check=False)
    if refused:
        assert result.returncode == 1 and "listening beyond 127.0.0.1" in result.stderr, result
    else:
        assert result.returncode == 0 and "already running" in result.stdout, result
