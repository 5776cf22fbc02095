"""soracom-cli hides a profileCommand's stderr (it shows only ``Error: exit status N``), so
``gw soracom-profile`` also writes its one-line error and long waits to /dev/tty when stderr
is not a terminal (core/ui.py does that for every command)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time

import pytest

from gw.testing import gw_executable
from tests.plugins.soracom.conftest import sora_config

GW = gw_executable()


def _run_with_tty(env: dict[str, str], *args: str, timeout: float = 60) -> tuple[int, str, str]:
    """Run gw with a pty as its controlling terminal, stdout and stderr pipes: (status, stderr, tty text)."""
    env = {k: v for k, v in env.items() if k != "GW_QUIET"}  # as a person at a terminal runs it
    master, slave = pty.openpty()
    # A session leader that opens a terminal gets it as its controlling terminal (Linux):
    # a new session opens the pty by name, then becomes gw.
    becomes_gw = "import os, sys; os.open(sys.argv[1], os.O_RDWR); os.execv(sys.argv[2], sys.argv[2:])"
    proc = subprocess.Popen([sys.executable, "-c", becomes_gw, os.ttyname(slave), GW, *args], env=env,
                            stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the last holder of the slave side went away
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    _, err = proc.communicate(timeout=timeout)
    os.close(master)
    return proc.returncode, err.decode(), seen.decode(errors="replace")


def test_error_reaches_the_terminal_when_stderr_is_a_pipe(sora):
    status, err, tty = _run_with_tty(sora.env, "soracom-profile", "--profile", "op-missing-item")
    assert status != 0 and "1Password item not found" in err
    assert "1Password item not found" in tty
    assert tty.count("\n") <= 2  # one line


def test_long_totp_wait_is_announced_on_the_terminal(sora):
    """The second sign-in needs the next 5 s TOTP step: started early in a step, it waits seconds."""
    sora.home.write_config(sora_config(sora.api.url).replace("period = 2", "period = 5"))
    for _ in range(3):  # a first call slower than the whole step (a very loaded machine) tries again
        time.sleep(5 - time.time() % 5 + 0.05)  # the first call starts as a step begins
        first = sora.run("soracom-profile", "--profile", "sora-root")
        assert first.returncode == 0, first.stderr
        start = time.monotonic()
        status, _, tty = _run_with_tty(sora.env, "soracom-profile", "--profile", "sora-root")
        assert status == 0
        if time.monotonic() - start >= 1.5:
            break
    else:
        pytest.fail("the second call never had to wait for the next step")
    assert "waiting" in tty.lower()
    for secret in sora.api.accepted_codes:
        assert secret not in tty


def test_nothing_is_written_without_a_terminal(sora):
    proc = sora.run("soracom-profile", "--profile", "op-missing-item")  # no controlling terminal at all
    assert proc.returncode != 0 and len(sora.errors(proc)) == 1
