"""A wait for a fresh one-time code counts down on the terminal; with no terminal gw says
once that it waits and why (issue 18, "Everyday habits")."""

from __future__ import annotations

import json
import re
import time

from gw.testing import gw_executable
from tests.core.pty_session import PtySession

SAM = """
[profiles.sam]
steps = [{ use = "soracom-keys", operator_id = "OP0000000001", username = "deploy", password = "vault:pw", mfa_code = { totp = "vault:seed", period = 6 } }]
"""


def _home(gw_home):
    gw_home.vault_set("seed", "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU")
    gw_home.vault_set("pw", "sam-Pa55word!")
    gw_home.write_config(SAM)
    time.sleep(6 - time.time() % 6 + 0.05)  # just after a step boundary: both calls share the step
    return gw_home


def test_a_wait_for_a_fresh_code_counts_down_on_the_terminal(gw_home, tmp_path):
    home = _home(gw_home)
    first, second = tmp_path / "1.json", tmp_path / "2.json"
    gw = gw_executable()
    session = PtySession(["/bin/sh", "-c", f"{gw} soracom-profile --profile sam > {first} 2>/dev/null && "
                                           f"{gw} soracom-profile --profile sam > {second} 2>/dev/null"], home.env)
    assert session.wait() == 0, session.seen
    counts = [int(n) for n in re.findall(r"waiting +(\d+) s for a fresh mfa code \(the current one was already used\)",
                                         session.seen)]
    assert len(counts) >= 3 and counts == sorted(counts, reverse=True), session.seen  # one per second, down
    assert session.seen.rstrip().endswith("\x1b[K")  # the line is erased when the wait ends
    codes = [json.loads(p.read_text())["mfaOTPCode"] for p in (first, second)]
    assert codes[0] != codes[1] and codes[0] not in session.seen and codes[1] not in session.seen


def test_with_no_terminal_gw_says_once_that_it_waits(gw_home):
    home = _home(gw_home)
    env = {"GW_QUIET": ""}
    assert home.run("soracom-profile", "--profile", "sam", env=env).returncode == 0
    second = home.run("soracom-profile", "--profile", "sam", env=env)
    assert second.returncode == 0, second.stderr
    lines = [line for line in second.stderr.splitlines() if "waiting" in line]
    assert len(lines) == 1 and re.fullmatch(
        r"gw: waiting \d s for a fresh mfa code \(the current one was already used\)", lines[0]), second.stderr
