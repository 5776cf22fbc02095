"""`gw demo` runs end to end on the embedded emulators and leaves nothing behind."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from gw.testing import gw_executable

GW = gw_executable()


def test_demo_runs_end_to_end(tmp_path):
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(tmp_path)}
    result = subprocess.run([GW, "demo"], env=env, capture_output=True, text=True, timeout=300,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    out = result.stdout
    flat = " ".join(out.split())  # rich wraps lines at the terminal width
    assert "demo finished" in out
    assert re.search(r"cold: \d+ ms \(1 AssumeRole call\)\s+warm: \d+ ms \(same credentials, no STS call\)", out)
    assert "assumed-role/DemoAdmin/gw-admin" in out
    assert "federation endpoint: accepted" in out
    assert "POST /v1/auth with that profile, as soracom-cli would: signed in" in out
    assert "still 1 handshake" in out
    assert "console sign-in URL accepted" in out
    assert re.search(r"first token: \d+ ms \(1 token request\)\s+again: \d+ ms \(cached, no request\)", out)
    assert "\"path\": \"/items\"" in out
    assert "assumed-role/EndorseDevice/endorse-440101234567890" in flat
    assert "the emulator verified the SigV4 signature and bridged the WebSocket" in flat
    assert "1 Krypton bootstrap" in flat and "attempt 3: accepted" in flat
    assert "demo-root-Pa55word" not in out and "demo-deploy-Pa55word" not in out
    assert not list(tmp_path.glob("gw-demo-*")), "the demo left its temporary directory behind"


def test_demo_help_has_description_and_examples():
    result = subprocess.run([GW, "demo", "--help"], capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert "no account, no" in result.stdout and "exits non-zero when any part gets a wrong answer" in result.stdout
    examples = result.stdout.split("examples:\n", 1)[1]
    assert "gw demo --only iot --keep" in examples
