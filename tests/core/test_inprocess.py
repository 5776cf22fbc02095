"""gw.testing's in-process runner gives what the real executable gives, and leaks nothing."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from gw.testing import InProcessExit

PROFILE = '[profiles.p]\nsteps = [{ use = "aws-keys", access_key_id = "vault:a", secret_access_key = "vault:b" }]\n'
COMMAND_LINES = [
    ["--help"], ["--version"], ["nope"], ["vault", "list"], ["profiles"], ["check"], ["env", "--profile", "p"],
    ["env", "--profile", "p", "--format", "json"], ["credential-process", "--profile", "p"],
    ["credential-process", "--profile", "missing"], ["cache", "list"], ["completion", "bash"],
]


@pytest.fixture
def home(gw_home):
    gw_home.write_config(PROFILE)
    gw_home.vault_set("a", "AKIAIOSFODNN7EXAMPLE")
    gw_home.vault_set("b", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    return gw_home


@pytest.mark.parametrize("args", COMMAND_LINES, ids=" ".join)
def test_same_result_as_the_executable(home, args):
    real = home.run(*args)
    inside = home.run_in_process(*args)
    assert (inside.returncode, inside.stdout, inside.stderr) == (real.returncode, real.stdout, real.stderr)


def test_stdin_is_the_input_or_empty(home):
    assert home.run_in_process("vault", "set", "c", input="value-of-c\n").returncode == 0
    assert "c" in home.run_in_process("vault", "list").stdout.split()
    empty = home.run_in_process("vault", "set", "d")  # /dev/null, as for the executable
    assert empty.returncode == 2 and "empty secret" in empty.stderr


def test_nothing_leaks_into_the_caller(home, monkeypatch):
    monkeypatch.setenv("GWT_CALLER", "1")
    before = (dict(os.environ), os.getcwd(), list(sys.path), signal.getsignal(signal.SIGTERM), os._exit)
    home.env["PYTHONPATH"] = "/nonexistent-gw-test-dir"
    result = home.run_in_process("env", "--profile", "p", env={"GWT_ONLY_INSIDE": "1"})
    assert result.returncode == 0, result.stderr
    assert (dict(os.environ), os.getcwd(), list(sys.path), signal.getsignal(signal.SIGTERM), os._exit) == before
    assert "GWT_ONLY_INSIDE" not in os.environ


def test_the_environment_is_exactly_the_homes(home, monkeypatch):
    monkeypatch.setenv("GWT_SECRET_A", "AKIAIOSFODNN7EXAMPLE")  # the caller's, not the home's
    home.write_config('[profiles.p]\nsteps = [{ use = "aws-keys", access_key_id = "env:GWT_SECRET_A", '
                      'secret_access_key = "vault:b" }]\n')
    result = home.run_in_process("env", "--profile", "p")
    assert result.returncode != 0 and "GWT_SECRET_A" in result.stderr


def test_what_needs_a_process_is_refused(home):
    with pytest.raises(InProcessExit, match="GwHome.run"):
        home.run_in_process("exec", "--profile", "p", "--", "true")
    assert home.run_in_process("profiles").returncode == 0  # and the next run is whole


def test_no_terminal_even_when_the_caller_has_one(home):
    home.write_config('[profiles.p]\nsteps = [{ use = "aws-keys", access_key_id = "prompt", '
                      'secret_access_key = "vault:b" }]\n')
    result = home.run_in_process("env", "--profile", "p")
    assert result.returncode != 0 and "no terminal" in result.stderr


def test_a_run_that_hangs_times_out_like_the_executable(home, tmp_path):
    fifo = tmp_path / "stdin-fifo"
    os.mkfifo(fifo)
    home.write_config(f'[profiles.p]\nsteps = [{{ use = "aws-keys", access_key_id = "cmd:cat {fifo}", '
                      'secret_access_key = "vault:b" }]\n')  # cat waits for a writer that never comes
    import subprocess

    with pytest.raises(subprocess.TimeoutExpired):
        home.run_in_process("env", "--profile", "p", timeout=1)
    assert signal.getsignal(signal.SIGALRM) == signal.SIG_DFL
