"""The per-user forwarder daemon of ``gw soracom`` (plugins/soracom/daemon.py, control.py).

Through real parts: the real ``gw`` executable, the soracom-cli stand-in, the SORACOM API
emulator over real TLS, the daemon as the process gw starts, and another local user
(``nobody`` via setpriv) knocking on its sockets.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from gw.testing import gw_executable
from gw_plugins.soracom import control
from tests.plugins.soracom.soracom_testdata import IMSIS
from tests.plugins.soracom.test_forwarder import CLIENT, NOBODY, needs_nobody

PROFILE = "sora-session"


def daemons(state: Path) -> list[int]:
    """Pids of forwarder daemons serving the gw home ``state``."""
    found = []
    marker = str(state / "run").encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(b"gw_plugins.soracom.daemon" in a for a in argv) and marker in argv:
            found.append(int(pid))
    return found


def wait_for(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _soracom(sora, *args: str, extra: dict | None = None):
    return sora.run("soracom", "--profile", PROFILE, "--", *args, extra=extra)


def _hold_script(tmp_path: Path) -> Path:
    """soracom-cli that makes one request, records its endpoint and placeholders, and then waits."""
    script = tmp_path / "hold"
    script.write_text(f"#!/bin/sh\nsoracom \"$@\" subscribers list > {tmp_path}/first.json\n"
                      f"echo \"$SORACOM_ENDPOINT $2 $4\" > {tmp_path}/info.tmp && mv {tmp_path}/info.tmp {tmp_path}/info\n"
                      "exec sleep 60\n")
    script.chmod(0o755)
    return script


def _held_call(sora, tmp_path: Path, extra: dict | None = None) -> tuple[subprocess.Popen, str, str, str]:
    """A ``gw soracom`` call held open by :func:`_hold_script`: (gw, forwarder URL, key and token placeholders)."""
    assert _soracom(sora, "subscribers", "list", extra=extra).returncode == 0  # cached: the call takes the fast path
    gw = subprocess.Popen([gw_executable(), "soracom", "--profile", PROFILE, "--"],
                          env={**sora.env, **(extra or {}), "GW_SORACOM_CLI": str(_hold_script(tmp_path))},
                          stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, cwd=sora.home.root)
    assert wait_for(lambda: (tmp_path / "info").exists(), 30), gw.stderr.read() if gw.poll() is not None else "no info"
    url, key, token = (tmp_path / "info").read_text().split()
    return gw, url, key, token


def _ask(url: str, key: str, token: str) -> tuple[int, dict]:
    import http.client

    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("GET", "/v1/subscribers", headers={"X-Soracom-API-Key": key, "X-Soracom-Token": token})
    response = conn.getresponse()
    return response.status, json.loads(response.read() or b"{}")


def _end(gw: subprocess.Popen) -> None:
    try:
        os.killpg(gw.pid, signal.SIGKILL)  # gw and the held soracom-cli (its own session, started by this test)
    except ProcessLookupError:
        pass
    gw.communicate(timeout=30)


# -- one daemon, shared, started on demand, gone when idle ---------------------------------------------------
def test_parallel_calls_on_no_daemon_start_exactly_one(sora):
    assert _soracom(sora, "subscribers", "list").returncode == 0
    control_socket = sora.home.state / "run" / control.SOCKET_NAME
    for pid in daemons(sora.home.state):  # from a cold start: no daemon, no socket
        os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: not daemons(sora.home.state))
    assert control_socket.exists()  # a stale socket the next call must replace
    procs = [subprocess.Popen([gw_executable(), "soracom", "--profile", PROFILE, "--", "subscribers", "list"],
                              env=sora.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, start_new_session=True, cwd=sora.home.root) for _ in range(8)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, outputs
    assert all(sorted(row["imsi"] for row in json.loads(out)) == sorted(IMSIS) for out, _ in outputs)
    assert len(daemons(sora.home.state)) == 1
    assert sora.api.calls["auth"] == 1


def test_calls_share_the_daemon_and_its_warm_connection(sora):
    assert _soracom(sora, "subscribers", "list").returncode == 0
    (first,) = daemons(sora.home.state)
    connections = sora.api.calls["tls-connections"]
    for _ in range(3):
        assert _soracom(sora, "operator", "get").returncode == 0
    assert daemons(sora.home.state) == [first]
    assert sora.api.calls["tls-connections"] == connections  # warm TLS connections to the API served all three


def test_the_daemon_holds_no_secret_and_its_runtime_dir_is_private(sora):
    assert _soracom(sora, "subscribers", "list").returncode == 0
    (pid,) = daemons(sora.home.state)
    assert Path(f"/proc/{pid}/environ").read_bytes() == b""
    argv = Path(f"/proc/{pid}/cmdline").read_bytes()
    (session,) = sora.api.live_sessions()
    assert session.api_key.encode() not in argv and session.token.encode() not in argv
    run = sora.home.state / "run"
    assert run.stat().st_mode & 0o777 == 0o700
    assert sorted(p.name for p in run.iterdir()) == sorted([control.SOCKET_NAME, control.LOCK_NAME])
    assert (run / control.LOCK_NAME).stat().st_mode & 0o777 == 0o600


def test_the_daemon_exits_when_idle_and_the_next_call_starts_another(sora):
    idle = {"GW_SORACOM_FORWARDER_IDLE": "1"}
    assert _soracom(sora, "subscribers", "list", extra=idle).returncode == 0
    (first,) = daemons(sora.home.state)
    assert wait_for(lambda: not daemons(sora.home.state), 10)
    assert not (sora.home.state / "run" / control.SOCKET_NAME).exists()  # it took its socket along
    assert _soracom(sora, "subscribers", "list").returncode == 0
    (second,) = daemons(sora.home.state)
    assert second != first


def test_the_daemon_exits_when_its_socket_is_gone(sora):
    """A removed (or replaced) socket: no call can reach this daemon any more, so it leaves."""
    assert _soracom(sora, "subscribers", "list").returncode == 0
    assert len(daemons(sora.home.state)) == 1
    (sora.home.state / "run" / control.SOCKET_NAME).unlink()
    assert wait_for(lambda: not daemons(sora.home.state), 5)


def test_a_call_keeps_an_idle_daemon_alive(sora, tmp_path):
    """Idle means no call: one held open longer than the idle timeout (1 s) keeps its placeholders working."""
    gw, url, key, token = _held_call(sora, tmp_path, {"GW_SORACOM_FORWARDER_IDLE": "1"})
    try:
        time.sleep(2.5)
        assert _ask(url, key, token)[0] == 200
        assert len(daemons(sora.home.state)) == 1
    finally:
        _end(gw)
    assert wait_for(lambda: not daemons(sora.home.state), 10)  # and once the call is over, it goes


# -- a call's placeholders live as long as the call ----------------------------------------------------------
def test_gw_killed_mid_call_its_placeholders_are_refused(sora, tmp_path):
    gw, url, key, token = _held_call(sora, tmp_path)
    try:
        assert len(json.loads((tmp_path / "first.json").read_text())) == len(IMSIS)  # they worked while gw lived
        assert _ask(url, key, token)[0] == 200
        os.kill(gw.pid, signal.SIGKILL)
        gw.wait(timeout=30)
        assert wait_for(lambda: _ask(url, key, token)[0] == 403, 5)  # the daemon saw the control connection close
        forwarded = sora.api.calls["subscribers"]
        status, doc = _ask(url, key, token)
        assert status == 403 and doc["code"] == "GW-FWD-PLACEHOLDER"
        assert sora.api.calls["subscribers"] == forwarded  # refused, forwarded nowhere
    finally:
        _end(gw)


def test_no_daemon_possible_the_call_serves_itself(sora):
    """A runtime directory others may enter is refused: the call runs its own forwarder instead."""
    run = sora.home.state / "run"
    run.mkdir(mode=0o700)
    run.chmod(0o755)
    proc = _soracom(sora, "subscribers", "list")
    assert proc.returncode == 0 and sorted(r["imsi"] for r in json.loads(proc.stdout)) == sorted(IMSIS), proc.stderr
    assert sora.errors(proc) == []
    assert daemons(sora.home.state) == [] and list(run.iterdir()) == []


# -- another user ---------------------------------------------------------------------------------------------
@needs_nobody
def test_another_user_is_refused_on_the_control_socket_and_the_port(sora, tmp_path):
    gw, url, key, token = _held_call(sora, tmp_path)
    run = sora.home.state / "run"
    path = run / control.SOCKET_NAME
    knock = ("import socket, sys\ns = socket.socket(socket.AF_UNIX)\ntry:\n    s.connect(sys.argv[1])\n"
             "except OSError as e:\n    print('refused', e.errno); sys.exit()\n"
             "try:\n    s.sendall(b'register\\0https://x\\0k\\0t\\0\\0\\0\\0\\0\\n'); s.settimeout(10)\n"
             "    print('answer', s.recv(100) or 'none')\nexcept OSError as e:\n    print('answer none', e.errno)\n")
    modes: dict[Path, int] = {}
    try:
        # the runtime directory is 0700: nobody cannot even reach the socket
        proc = subprocess.run([*NOBODY, "/usr/bin/python3", "-c", knock, str(path)], capture_output=True, text=True,
                              timeout=60, cwd="/")
        assert proc.stdout.startswith("refused 13"), proc.stdout + proc.stderr
        # opened up on purpose: the daemon itself checks the peer's uid, and hangs up without a word
        for p in [run, *run.parents]:
            modes[p] = p.stat().st_mode & 0o7777
            p.chmod(modes[p] | 0o111)
        path.chmod(0o777)
        proc = subprocess.run([*NOBODY, "/usr/bin/python3", "-c", knock, str(path)], capture_output=True, text=True,
                              timeout=60, cwd="/")
        assert proc.stdout.startswith("answer none"), proc.stdout + proc.stderr
        # the TCP port, with the live call's placeholders: refused for the uid
        port = url.rpartition(":")[2]
        proc = subprocess.run([*NOBODY, "/usr/bin/python3", "-c", CLIENT, port, key, token], capture_output=True,
                              text=True, timeout=60, cwd="/")
        status, _, body = proc.stdout.partition(" ")
        assert status == "403" and json.loads(body)["code"] == "GW-FWD-PEER", proc.stdout + proc.stderr
        assert _ask(url, key, token)[0] == 200  # the same from this user goes through
    finally:
        for p, mode in modes.items():
            p.chmod(mode)
        _end(gw)


def test_a_control_message_with_a_newline_is_refused():
    with pytest.raises(control.ControlError):
        control.encode("register", "https://api.soracom.io\n")
    assert control.decode(control.encode("a", "b c")[:-1]) == ["a", "b c"]


def test_a_daemon_socket_of_another_user_is_not_trusted(tmp_path, monkeypatch):
    """The caller checks the daemon's uid too (SO_PEERCRED), before sending the session."""
    run = tmp_path / "run"
    fd = control.open_runtime_dir(str(run))
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(run / control.SOCKET_NAME))
    listener.listen()
    try:
        other = os.getuid() + 1
        monkeypatch.setattr(control.os, "getuid", lambda: other)
        with pytest.raises(control.ControlError, match="another user"):
            control._connect(control.in_dir(fd, control.SOCKET_NAME))
    finally:
        listener.close()
        os.close(fd)
