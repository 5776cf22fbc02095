"""Issue 8, bad input and signals: numbers, non-UTF-8 configs, federation replies, a closed or
full stdout on the fast path, SIGTERM/SIGHUP during a secret prompt (on a real pty), early
SIGINT, and TOTP codes that never reached the upstream.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import termios
import time
from pathlib import Path

import pytest

from tests.core.gw_test_support import (
    GW,
    assert_clean_failure,
    keys_from_env,
    role_profile,
)
from tests.core.hardening_upstream import ScriptedUpstream

TIMEOUT = 30
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
USER = '{ use = "aws-keys", access_key_id = "env:GWT_AKID", secret_access_key = "env:GWT_SECRET" }'


# -- numbers ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("setting", [
    "lock_timeout = nan", "lock_timeout = inf", "lock_timeout = -inf", "lock_timeout = 0", "lock_timeout = 1e300",
    "prompt_timeout = nan", "prompt_timeout = inf", "prompt_timeout = -5",
])
def test_every_number_in_settings_is_finite_and_in_range(gw_home, setting):
    # a wrong setting fails the commands that read it: prompt_timeout is read by a prompt
    asks = '[profiles.p]\nsteps = [{ use = "aws-keys", access_key_id = "prompt", secret_access_key = "prompt" }]\n'
    gw_home.write_config(f"[settings]\n{setting}\n\n" + (asks if "prompt" in setting else role_profile("p")),
                         settings=False)
    started = time.monotonic()
    result = gw_home.run_in_process("credential-process", "--profile", "p", timeout=TIMEOUT)
    line = assert_clean_failure(result, contains=setting.split(" = ")[0])
    assert "internal error" not in line and "from" in line
    assert result.returncode == 2
    assert time.monotonic() - started < TIMEOUT


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e300", "0"])
def test_a_non_finite_or_out_of_range_krypton_timeout_is_refused(gw_home, value):
    gw_home.write_config(f"""
[profiles.k]
steps = [{{ use = "krypton", operation = "cognito-credentials", endpoint = "https://127.0.0.1:9", reader = "emulated", sim_file = "/nonexistent", timeout = {value} }}]
""")
    for args in (("check",), ("credential-process", "--profile", "k")):
        result = gw_home.run_in_process(*args, timeout=TIMEOUT)
        assert result.returncode != 0 and result.stdout == "", result.stderr
        assert args[0] == "check" or result.returncode == 2  # a config error
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr
        assert "timeout must be a" in result.stderr


def test_nan_lock_timeout_cannot_make_gw_wait_forever(gw_home):
    """The reproduction: a held lock and lock_timeout = nan. Refused before any lock is taken."""
    import fcntl

    gw_home.write_config("[settings]\nlock_timeout = nan\n\n" + role_profile("p"), settings=False)
    (gw_home.state / "locks").mkdir(parents=True, mode=0o700)
    fd = os.open(gw_home.state / "locks" / "p.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        result = gw_home.run_in_process("credential-process", "--profile", "p", timeout=TIMEOUT)
        assert_clean_failure(result, contains="lock_timeout")
    finally:
        os.close(fd)


# -- encodings -----------------------------------------------------------------------------------------
def test_a_non_utf8_config_names_the_byte(gw_home):
    gw_home.config_path.write_bytes(b'[profiles.p]\ndescription = "caf\xe9"\n')
    result = gw_home.run_in_process("profiles")
    line = assert_clean_failure(result, contains="not UTF-8")
    assert "0xe9" in line and "line 2" in line and str(gw_home.config_path) in line


# -- the federation endpoint answering nonsense ------------------------------------------------------------
@pytest.fixture
def scripted(ca):
    with ScriptedUpstream(ca) as upstream:
        yield upstream


@pytest.mark.parametrize("body", [b"[1,2]", b'{"SigninToken": 12}', b'{"SigninToken": ["a"]}', b'{"SigninToken": null}',
                                  b'{"SigninToken": "a b\\n"}', b'"just a string"', b"\xff\xfe", b""])
def test_a_strange_federation_reply_is_one_line(gw_home, scripted, body):
    home = gw_home
    home.env.update(GWT_AKID="ASIAEXAMPLEEXAMPLE12", GWT_SECRET="s" * 40, GWT_TOK="FwoGtoken" + "t" * 60)
    home.write_config(f"""
[profiles.p]
steps = [{{ use = "aws-keys", access_key_id = "env:GWT_AKID", secret_access_key = "env:GWT_SECRET", session_token = "env:GWT_TOK" }}]
login = {{ endpoint = "{scripted.url}/federation" }}
""")
    scripted.answer(200, body, {"Content-Type": "application/json"})
    result = home.run_in_process("login", "--profile", "p", "--print", timeout=TIMEOUT)
    line = assert_clean_failure(result, contains="federation endpoint refused")
    assert "internal error" not in line and "t" * 20 not in result.stderr


def test_login_hands_the_url_to_the_browser_without_argv(gw_home, scripted, tmp_path):
    home = gw_home
    token = "SIGNINTOKEN" + "z" * 50
    home.env.update(GWT_AKID="ASIAEXAMPLEEXAMPLE12", GWT_SECRET="s" * 40, GWT_TOK="FwoGtoken" + "t" * 60)
    home.write_config(f"""
[profiles.p]
steps = [{{ use = "aws-keys", access_key_id = "env:GWT_AKID", secret_access_key = "env:GWT_SECRET", session_token = "env:GWT_TOK" }}]
login = {{ endpoint = "{scripted.url}/federation" }}
""")
    scripted.answer(200, json.dumps({"SigninToken": token}).encode(), {"Content-Type": "application/json"})
    log = tmp_path / "browser.log"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{log}"\n')
    browser.chmod(0o700)
    result = home.run_in_process("login", "--profile", "p", env={"BROWSER": str(browser)}, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    argv = log.read_text()
    assert token not in argv and "SigninToken" not in argv
    page = Path(argv.strip().removeprefix("file://"))
    assert page.is_file() and (page.stat().st_mode & 0o777) == 0o600
    assert (page.parent.stat().st_mode & 0o777) == 0o700
    assert token in page.read_text()


# -- stdout closed or full on the cache-hit path --------------------------------------------------------------
@pytest.fixture
def warm(aws_home, iam_user):
    keys_from_env(aws_home, iam_user)
    aws_home.write_config(role_profile("p"))
    assert aws_home.run_in_process("credential-process", "--profile", "p").returncode == 0
    return aws_home


def test_a_full_stdout_on_the_fast_path_is_one_line(warm):
    with open("/dev/full", "wb") as full:
        result = subprocess.run([GW, "credential-process", "--profile", "p"], check=False, stdout=full, stderr=subprocess.PIPE,
                                env=warm.env, timeout=TIMEOUT, text=True, stdin=subprocess.DEVNULL)
    assert result.returncode == 1
    assert result.stderr.startswith("gw: cannot write the credentials to stdout") and result.stderr.count("\n") == 1


def test_a_closed_stdout_on_the_fast_path_is_one_line(warm):
    result = subprocess.run([GW, "credential-process", "--profile", "p"], check=False, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=warm.env, timeout=TIMEOUT, text=True,
                            stdin=subprocess.DEVNULL, preexec_fn=lambda: os.close(1))
    assert result.returncode == 1
    assert result.stderr.startswith("gw: cannot write the credentials to stdout") and "Traceback" not in result.stderr


# -- signals ------------------------------------------------------------------------------------------------
def _read_until(master: int, marker: bytes, timeout: float = TIMEOUT) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        assert time.monotonic() < deadline, seen
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            seen += os.read(master, 4096)
    return seen


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_during_a_secret_prompt_restores_the_terminal_echo(gw_home, signum):
    env = {k: v for k, v in gw_home.env.items() if k != "GW_QUIET"}
    pid, master = pty.fork()
    if pid == 0:
        try:
            os.execve(GW, [GW, "vault", "set", "x"], env)
        finally:
            os._exit(127)
    try:
        assert termios.tcgetattr(master)[3] & termios.ECHO  # a terminal starts with echo on
        _read_until(master, b"x")  # the prompt names the secret
        deadline = time.monotonic() + TIMEOUT
        while termios.tcgetattr(master)[3] & termios.ECHO:  # gw turned echo off: it is reading the secret
            assert time.monotonic() < deadline, "echo never went off"
            time.sleep(0.01)
        os.kill(pid, signum)
        _, status = os.waitpid(pid, 0)
        assert termios.tcgetattr(master)[3] & termios.ECHO, "the terminal was left with echo off"
        assert os.waitstatus_to_exitcode(status) == 128 + signum
        rest = b""
        while select.select([master], [], [], 0.2)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            rest += chunk
        assert b"Traceback" not in rest
        assert b"stopped by " + signal.Signals(signum).name.encode() in rest
    finally:
        os.close(master)


def test_sigint_in_the_first_milliseconds_prints_no_traceback_from_gw(warm):
    """From gw's first line on, an early Ctrl-C ends gw quietly (the launcher leaves SIGINT to the
    kernel until gw.cli installs its handler). Python's own start-up before that line (site and
    .pth files) is the interpreter's: a signal that arrives there is raised in the interpreter's
    frames (a traceback, an "Exception ignored in" report, or a bare "KeyboardInterrupt" when no
    frame ran), or, when it lands after site, at the launcher's line 0 - the instruction before
    its first line, which no code can guard. In every case no line of gw ran (docs/security.md)."""
    gw_files = (GW, os.path.dirname(__import__("gw").__file__))
    frame = re.compile(r'File "([^"]+)", line (\d+)')
    for i in range(40):
        proc = subprocess.Popen([GW, "credential-process", "--profile", "p"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**warm.env, "GW_NO_ISOLATION": "" if i % 2 else "1"})  # the launcher's both ways
        time.sleep(i * 0.002)  # the point of the test: signals at many moments of start-up
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=TIMEOUT)
        if "Traceback" in err:
            assert "KeyboardInterrupt" in err and "gw: " not in err, err
            ran = [(path, line) for path, line in frame.findall(err) if path.startswith(gw_files)]
            assert ran in ([], [(GW, "0")]), err  # a gw line ran without the handler
        else:  # quiet, gw's own line, or the interpreter's bare line for a signal caught in its C code
            assert err in ("", "gw: cancelled\n", "KeyboardInterrupt\n"), err


# -- one-time codes that never left ------------------------------------------------------------------------------
def _totp_record(home) -> list[Path]:
    return sorted((home.state / "totp").glob("*.last"))


def test_a_totp_code_that_never_reached_the_upstream_is_not_burned(gw_home, scripted):
    import socket

    home = gw_home
    home.vault_set("pw", "sam-Pa55word!")
    home.vault_set("seed", SEED)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # bound, never listening: connection refused
        profile = """
[profiles.t]
steps = [
  {{ use = "soracom-keys", operator_id = "OP0000000001", username = "u", password = "vault:pw", mfa_code = "totp:vault:seed" }},
  {{ use = "soracom-auth", endpoint = "{endpoint}" }},
]
"""
        home.write_config(profile.format(endpoint=f"https://127.0.0.1:{closed}"))
        refused = home.run_in_process("env", "--profile", "t", timeout=TIMEOUT)
    assert_clean_failure(refused, contains="cannot reach")
    assert _totp_record(home) == []  # the reservation was released: no step is recorded as used
    # an upstream that answers (here: 401) has seen the code: it stays used
    scripted.answer(401, b'{"code":"AUM0001","message":"bad credentials"}', {"Content-Type": "application/json"})
    home.write_config(profile.format(endpoint=scripted.url))
    answered = home.run_in_process("env", "--profile", "t", timeout=TIMEOUT)
    assert answered.returncode != 0 and len(scripted.requests) == 1
    records = _totp_record(home)
    assert len(records) == 1 and int(records[0].read_text()) >= int(time.time() // 30) - 1
