"""gw.commands.exec: ``gw exec`` (in-process, with a stand-in for the exec that would replace the test)."""

from __future__ import annotations

import os
import signal

import pytest

from tests.core.commands_helpers import KEYS_ENV, parse


class Execed(Exception):
    pass


@pytest.fixture(autouse=True)
def _signal_dispositions():
    """Puts back what gw set for the program it would exec (SIGPIPE and SIGXFSZ to default, as a
    shell would): left so, a later test's write to a closed socket would kill this test process."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGPIPE, signal.SIGXFSZ)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def _exec_recorder(monkeypatch, failure: BaseException | None = None) -> list:
    """Records the exec instead of doing it."""
    calls: list = []

    def execvpe(file, args, env):
        calls.append((file, list(args), dict(env)))
        assert signal.getsignal(signal.SIGPIPE) == signal.SIG_DFL  # what the program gets
        if failure is not None:
            raise failure
        raise Execed

    monkeypatch.setattr(os, "execvpe", execvpe)
    return calls


def test_exec_replaces_gw_with_the_command_and_the_credentials(keys_home, monkeypatch):
    ns, app = parse(keys_home, monkeypatch, "exec", "--profile", "keys", "--region", "eu-west-1", "--", "prog", "-x")
    calls = _exec_recorder(monkeypatch)
    with pytest.raises(Execed):
        ns.handler(ns, app)
    [(file, argv, env)] = calls
    assert (file, argv) == ("prog", ["prog", "-x"])
    assert env["AWS_ACCESS_KEY_ID"] == KEYS_ENV["GWTEST_AK"] and env["AWS_SECRET_ACCESS_KEY"] == KEYS_ENV["GWTEST_SK"]
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["GW_EXEC_PROFILE"] == "keys"
    assert env["HOME"] == keys_home.env["HOME"]  # the caller's environment goes on


@pytest.mark.parametrize(("failure", "status", "line"), [(FileNotFoundError(), 127, "command not found: prog"),
                                                         (PermissionError(), 126, "permission denied: prog")])
def test_exec_failures_have_the_shells_statuses(keys_home, monkeypatch, capfd, failure, status, line):
    ns, app = parse(keys_home, monkeypatch, "exec", "--profile", "keys", "--", "prog")
    _exec_recorder(monkeypatch, failure)
    assert ns.handler(ns, app) == status
    assert capfd.readouterr().err == f"gw: {line}\n"


def test_exec_server_needs_temporary_credentials(keys_home):
    result = keys_home.run_in_process("exec", "--server", "--profile", "keys", "--", "true")
    assert (result.returncode, result.stdout) == (2, "")
    assert "yields long-term keys; the ECS endpoint serves only temporary credentials" in result.stderr
