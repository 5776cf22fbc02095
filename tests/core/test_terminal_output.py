"""On a terminal, gw explains what it is doing on stderr; stdout still carries only the result.

Each test runs gw inside a pseudo-terminal (its controlling terminal and stderr),
with stdout redirected to a file, as a person's shell would.
"""

from __future__ import annotations

import json
import os
import pty
import select
import time

from gw.testing import gw_executable
from gw_emulators.krypton import KryptonEmulator

GW = gw_executable()
IMSI = "440103123456789"


def run_in_terminal(script: str, env: dict[str, str], timeout: float = 90) -> str:
    """Run ``sh -c script`` on a new pty; returns everything written to the terminal."""
    env = {k: v for k, v in env.items() if k != "GW_QUIET"} | {"TERM": "xterm", "COLUMNS": "120"}
    pid, master = pty.fork()
    if pid == 0:
        try:
            os.execve("/bin/sh", ["/bin/sh", "-c", script], env)
        finally:
            os._exit(127)
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            seen += data
        elif os.waitpid(pid, os.WNOHANG)[0]:
            break
    os.close(master)
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        status = 0
    assert os.waitstatus_to_exitcode(status) == 0, seen.decode(errors="replace")
    return seen.decode(errors="replace")


def test_krypton_shows_progress_on_the_terminal(gw_home, ca, moto, tmp_path):
    k, opc = os.urandom(16), os.urandom(16)
    sim = tmp_path / "sim.json"
    sim.write_text(json.dumps({"imsi": IMSI, "k": k.hex(), "opc": opc.hex(), "sqn": 0}))
    with KryptonEmulator(ca, aws_endpoint=moto.url) as krypton:
        krypton.add_subscriber(IMSI, k, opc)
        gw_home.write_config(f"""
[profiles.sim]
steps = [{{ use = "krypton", operation = "cognito-credentials", endpoint = "{krypton.url}", reader = "emulated", sim_file = "{sim}" }}]
""")
        out = tmp_path / "out.json"
        screen = run_in_terminal(f"{GW} credential-process --profile sim > {out}", gw_home.env)
    assert "Authenticating the SIM" in screen
    assert json.loads(out.read_text())["Version"] == 1
    assert json.loads(out.read_text())["SecretAccessKey"] not in screen


def test_a_used_totp_step_is_explained_while_gw_waits(gw_home, tmp_path):
    seed = "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU"
    gw_home.vault_set("seed", seed)
    gw_home.vault_set("pw", "sam-Pa55word!")
    gw_home.write_config("""
[profiles.sam]
steps = [{ use = "soracom-keys", operator_id = "OP0000000001", username = "deploy", password = "vault:pw", mfa_code = { totp = "vault:seed", period = 3 } }]
""")
    first, second = tmp_path / "1.json", tmp_path / "2.json"
    period = 3
    time.sleep(period - time.time() % period + 0.05)  # start just after a step boundary: both calls share it
    screen = run_in_terminal(
        f"{GW} soracom-profile --profile sam > {first} && {GW} soracom-profile --profile sam > {second}", gw_home.env
    )
    codes = [json.loads(p.read_text())["mfaOTPCode"] for p in (first, second)]
    assert codes[0] != codes[1]
    assert "for a fresh mfa code (the current one was already used)" in screen
    assert codes[0] not in screen and codes[1] not in screen and "sam-Pa55word!" not in screen
