"""Parallel calls on a cold cache: one upstream fetch, one MFA prompt, every caller served."""

from __future__ import annotations

import os
import pty
import select
import sys
import time

from tests.core.core_helpers import admin_profile, parse_credential_process, store_user


def test_32_parallel_cold_calls_make_one_fetch_and_one_prompt(aws_home, iam_user, askpass, moto):
    home = aws_home
    home.extra_settings["askpass"] = askpass[0]
    home.write_config(admin_profile())
    store_user(home, iam_user)
    before = moto.count("AssumeRole")
    procs = [home.popen("credential-process", "--profile", "admin") for _ in range(32)]
    outputs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0] * 32, [err for _, err in outputs if err]
    docs = [parse_credential_process(out) for out, _ in outputs]
    assert len({d["AccessKeyId"] for d in docs}) == 1
    assert moto.count("AssumeRole") == before + 1
    assert askpass[1].read_text().count("\n") == 1
    assert [err for _, err in outputs if err] == []


def _spawn_in_terminal(args: list[str], env: dict) -> tuple[int, int]:
    """Run ``args`` as the session leader of a new pseudo-terminal; returns (pid, master fd)."""
    pid, master = pty.fork()
    if pid == 0:  # child: the pty is now its controlling terminal
        try:
            os.execve(args[0], args, env)
        finally:
            os._exit(127)
    return pid, master


def test_prompt_goes_to_the_terminal_not_to_stdout(aws_home, iam_user, moto, tmp_path):
    """With a controlling terminal the MFA prompt is read from /dev/tty; stdout carries only JSON."""
    home = aws_home
    home.write_config(admin_profile())
    store_user(home, iam_user)
    out_path = tmp_path / "out.json"
    err_path = tmp_path / "err.txt"
    runner = (
        "import subprocess, sys;"
        f"r = subprocess.run([{sys.executable!r}, {str(home.env['PATH'].split(os.pathsep)[0] + '/gw')!r}, "
        "'credential-process', '--profile', 'admin'], capture_output=True);"
        f"open({str(out_path)!r}, 'wb').write(r.stdout); open({str(err_path)!r}, 'wb').write(r.stderr);"
        "sys.exit(r.returncode)"
    )
    pid, master = _spawn_in_terminal([sys.executable, "-c", runner], home.env)
    seen = b""
    deadline = time.monotonic() + 60
    while b"mfa code" not in seen.lower() and time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1)
        if ready:
            seen += os.read(master, 1024)
    assert b"mfa code for profile admin" in seen.lower()
    os.write(master, b"654321\n")
    _, status = os.waitpid(pid, 0)
    os.close(master)
    assert os.waitstatus_to_exitcode(status) == 0, err_path.read_text()
    parse_credential_process(out_path.read_text())
    assert err_path.read_text() == ""
    assert b"654321" not in seen  # the code was not echoed


def test_parallel_waiters_time_out_clearly(aws_home, iam_user, tmp_path, moto):
    """A caller waiting on a stuck lock holder gives up after settings.lock_timeout with one line."""
    home = aws_home
    slow = tmp_path / "slow-askpass.sh"
    asked = tmp_path / "asked"
    slow.write_text(f"#!/bin/sh\ntouch '{asked}'\nsleep 20\necho 123456\n")
    slow.chmod(0o700)
    home.extra_settings.update(askpass=str(slow), lock_timeout=1)
    home.write_config(admin_profile())
    store_user(home, iam_user)
    holder = home.popen("credential-process", "--profile", "admin")
    deadline = time.monotonic() + 30
    while not asked.exists():  # the holder asks for the code only while it holds the profile lock
        assert time.monotonic() < deadline and holder.poll() is None, "the holder never asked for a code"
        time.sleep(0.05)
    waiter = home.run("credential-process", "--profile", "admin", timeout=30)
    holder.kill()
    holder.wait()
    assert waiter.returncode == 1
    assert waiter.stdout == ""
    assert waiter.stderr.strip().startswith("gw: gave up after 1 s waiting for another gw process")
    assert len(waiter.stderr.strip().splitlines()) == 1
