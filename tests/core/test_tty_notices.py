"""Waits and errors a person can see when another program captures gw's stderr.

Each test gives gw a pseudo-terminal as its controlling terminal (/dev/tty) while its
stdout and stderr are pipes, as under botocore's credential_process or soracom-cli's
profileCommand. Lines gw writes to /dev/tty arrive on the pty's master side.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from gw.testing import gw_executable  # noqa: E402
from tests.conftest import AWS_CLI

GW = gw_executable()
SECRET = "tty-notice-secret-value-0123456789"


class Terminal:
    """A pty whose slave becomes the controlling terminal of the processes started with it."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self.slave_name = os.ttyname(self.slave)
        self._seen = b""
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            if not data:
                return
            with self._cond:
                self._seen += data
                self._cond.notify_all()

    @property
    def text(self) -> str:
        with self._cond:
            return self._seen.decode("utf-8", "replace")

    def wait_for(self, needle: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        with self._cond:
            while needle.encode() not in self._seen:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{needle!r} never appeared on the terminal; it shows {self._seen!r}")
                self._cond.wait(left)
        return self.text

    def popen(self, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        name = self.slave_name

        def take_terminal() -> None:  # runs in the child after setsid(): opening the pty makes it ours
            os.close(os.open(name, os.O_RDWR))

        return subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True,
                                preexec_fn=take_terminal)  # noqa: PLW1509 - only a setsid'd open()

    def close(self) -> None:
        os.close(self.slave)
        os.close(self.master)


@pytest.fixture
def terminal():
    term = Terminal()
    yield term
    term.close()


def _env(home, quiet: bool = False) -> dict[str, str]:
    env = dict(home.env)
    if not quiet:
        env.pop("GW_QUIET", None)
    return env


def test_the_final_error_also_reaches_the_terminal(gw_home, terminal):
    gw_home.write_config("[profiles.p]\nsteps = [{ use = \"aws-keys\", access_key_id = \"env:NOPE_A\", "
                         "secret_access_key = \"env:NOPE_B\" }]\n")
    proc = terminal.popen([GW, "credential-process", "--profile", "p"], _env(gw_home, quiet=True))
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and out == ""
    line = "gw: environment variable NOPE_A is not set"
    assert err.strip() == line
    assert line in terminal.wait_for(line)


def test_an_sdk_that_captures_stderr_still_lets_the_person_see_why(aws_home, terminal):
    """The AWS CLI (botocore) runs credential_process with stderr captured."""
    aws_home.write_config("[profiles.p]\nsteps = [{ use = \"aws-keys\", access_key_id = \"env:NOPE_A\", "
                          "secret_access_key = \"env:NOPE_B\" }]\n")
    aws_home.aws_config.write_text(f"[profile p]\ncredential_process = {GW} credential-process --profile p\n")
    proc = terminal.popen([AWS_CLI, "sts", "get-caller-identity", "--profile", "p"], _env(aws_home))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "environment variable NOPE_A is not set" in err
    assert "gw: environment variable NOPE_A is not set" in terminal.wait_for("NOPE_A is not set")


def test_soracom_profile_errors_reach_the_terminal(gw_home, terminal):
    """soracom-cli runs profileCommand with stderr captured and shows only "exit status 1"."""
    gw_home.write_config("[profiles.sc]\nsteps = [{ use = \"soracom-keys\", auth_key_id = \"env:NOPE_ID\", "
                         "auth_key = \"env:NOPE_KEY\" }]\n")
    proc = terminal.popen([GW, "soracom-profile", "--profile", "sc"], _env(gw_home))
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and out == ""
    line = err.strip().splitlines()[-1]
    assert line.startswith("gw: ") and "NOPE_" in line
    assert line in terminal.wait_for(line)


def _keys_profile_and_its_lock(home) -> Path:
    """Profile p (keys from the environment) and the path of its lock file, ready to be held."""
    home.env.update(GWT_AKID="AKIATTYNOTICEEXAMPLE", GWT_SECRET=SECRET)
    home.write_config("[profiles.p]\nsteps = [{ use = \"aws-keys\", access_key_id = \"env:GWT_AKID\", "
                      "secret_access_key = \"env:GWT_SECRET\" }]\n")
    locks = home.state / "locks"
    locks.mkdir(parents=True, exist_ok=True, mode=0o700)
    return locks / "p.lock"


def test_a_lock_wait_is_shown_on_the_terminal(gw_home, terminal):
    with open(_keys_profile_and_its_lock(gw_home), "a") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)  # "another gw process" busy with profile p
        proc = terminal.popen([GW, "env", "--profile", "p"], _env(gw_home))
        terminal.wait_for("gw: another gw process is busy with 'p'; waiting for it")
    # the wait ended because the holder let go, not because time passed
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "AKIATTYNOTICEEXAMPLE" in out and err == ""
    assert SECRET not in terminal.text


def test_a_short_lock_wait_is_not_worth_a_line(gw_home, terminal):
    """A wait of a fraction of a second (parallel callers, the common case) prints nothing."""
    with open(_keys_profile_and_its_lock(gw_home), "a") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        proc = terminal.popen([GW, "env", "--profile", "p"], _env(gw_home))
        time.sleep(0.3)  # the point of the test: a wait shorter than a second (gw waits at most this long)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "AKIATTYNOTICEEXAMPLE" in out and err == "", err
    assert "waiting" not in terminal.text


def test_a_wait_for_a_shared_chain_step_reaches_the_terminal(aws_home, iam_user, moto, terminal):
    """Two SDK callers of different profiles sharing one MFA session: the second waits on the
    shared step's lock, and the person sees why on /dev/tty although stderr is captured."""
    import tomllib

    from gw.store import prefix_digests, prefix_name
    from tests.core.core_helpers import store_user
    from tests.core.gw_test_support import ROLE

    store_user(aws_home, iam_user)
    keys = '{ use = "aws-keys", access_key_id = "vault:akid", secret_access_key = "vault:secret" }'
    session = '{ use = "session-token", duration = 3600 }'
    aws_home.write_config(f'[profiles.admin]\nsteps = [ {keys}, {session}, {{ use = "assume-role", role_arn = "{ROLE}" }} ]\n')
    steps = tomllib.loads(aws_home.config_path.read_text())["profiles"]["admin"]["steps"]
    locks = aws_home.state / "locks"
    locks.mkdir(parents=True, exist_ok=True, mode=0o700)
    holders = [open(locks / f"{prefix_name(d)}.lock", "a") for d in prefix_digests(steps)]
    try:
        for holder in holders:
            fcntl.flock(holder, fcntl.LOCK_EX)  # "another gw process" fetching the shared steps
        proc = terminal.popen([GW, "credential-process", "--profile", "admin"], _env(aws_home))
        terminal.wait_for("gw: another gw process is fetching a shared chain step; waiting for it")
    finally:
        for holder in holders:
            holder.close()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert '"AccessKeyId"' in out and "waiting" not in err


def test_a_slow_secret_command_is_shown_after_a_second_and_its_output_is_not(gw_home, terminal, tmp_path):
    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    blocker = tmp_path / "blocker"
    blocker.write_text(f'#!/bin/sh\nread x < "{fifo}"\necho "{SECRET}"\n')
    blocker.chmod(0o700)
    gw_home.write_config(f"[profiles.p]\nsteps = [{{ use = \"aws-keys\", access_key_id = \"cmd:echo AKIATTYNOTICEEXAMPLE\", "
                         f"secret_access_key = \"cmd:{blocker}\" }}]\n")
    proc = terminal.popen([GW, "env", "--profile", "p"], _env(gw_home))
    terminal.wait_for("gw: running blocker for the secret access key ...")
    with open(fifo, "w") as go:
        go.write("now\n")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert SECRET in out and err == ""
    assert SECRET not in terminal.text
    assert "running echo" not in terminal.text  # a quick command is not worth a line


def test_nothing_extra_without_a_terminal(gw_home):
    """No controlling terminal (start_new_session, as under a daemon): only the stderr line."""
    gw_home.write_config("[profiles.p]\nsteps = [{ use = \"aws-keys\", access_key_id = \"env:NOPE_A\", "
                         "secret_access_key = \"env:NOPE_B\" }]\n")
    result = gw_home.run("credential-process", "--profile", "p", env={"GW_QUIET": ""})
    assert result.returncode == 1
    assert result.stderr == "gw: environment variable NOPE_A is not set\n"


def test_a_terminal_stderr_gets_the_line_once(gw_home, terminal):
    """When stderr IS the terminal, the error is written there once, not twice."""
    gw_home.write_config("[profiles.p]\nsteps = [{ use = \"aws-keys\", access_key_id = \"env:NOPE_A\", "
                         "secret_access_key = \"env:NOPE_B\" }]\n")
    name = terminal.slave_name
    script = f'"{GW}" credential-process --profile p 2>"{name}"; status=$?; echo END-MARK >"{name}"; exit $status'
    proc = terminal.popen(["/bin/sh", "-c", script], _env(gw_home))
    proc.communicate(timeout=30)
    assert proc.returncode == 1
    text = terminal.wait_for("END-MARK")
    assert text.count("NOPE_A is not set") == 1
