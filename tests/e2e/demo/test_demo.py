"""`gw demo` runs end to end on the embedded emulators and leaves nothing behind."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from gw.testing import gw_executable

GW = gw_executable()


def test_demo_runs_end_to_end(tmp_path):
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(tmp_path),
           "COLUMNS": "80"}
    result = subprocess.run([GW, "demo"], env=env, capture_output=True, text=True, timeout=300,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    out = result.stdout
    # in a pipe at 80 columns, command lines and program output are never broken mid-argument
    assert "$ python -c 'boto3.Session(profile_name=\"admin\").client(\"sts\").get_caller_identity()'\n" in out
    assert re.search(r"^added \[profile admin\] in \S+/config: credential_process = \S+/gw credential-process "
                     r"--profile admin$", out, re.M)
    # the closing summary: every part ran, with its time and the upstream calls it made
    table = out[out.index("gw demo: summary"):]
    from gw_emulators.demo.parts import PARTS

    for name, _ in PARTS:
        row = re.search(rf"^│ {re.escape(name)} +│ ok +│ +[\d.]+ s │ +(\d+) │$", table, re.M)
        assert row, f"no ok row for part {name} in the summary:\n{table}"
        if name != "login":  # gw login --print and the federation call: at least one upstream call everywhere
            assert int(row.group(1)) >= 1, f"part {name} made no upstream call"
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


def test_a_skipped_part_makes_the_demo_incomplete_not_finished(tmp_path):
    """A part that cannot run (mosquitto missing) is a yellow row and a non-zero 'incomplete' ending."""
    import io

    from rich.console import Console

    from gw_emulators.demo.show import Demo, DemoFailed, DemoSkipped, run_part, summary, verdict

    console = Console(file=io.StringIO(), width=80, highlight=False)
    demo = Demo(root=tmp_path, gw=GW, console=console)

    def fine(demo):
        demo.show("fine")

    def missing(demo):
        raise DemoSkipped("mosquitto is not installed (apt-get install mosquitto)")

    def broken(demo):
        raise DemoFailed("wrong answer")

    run_part(demo, "aws", fine)
    run_part(demo, "iot-ws", missing)
    assert verdict(demo) == 1
    try:
        run_part(demo, "endorse", broken)
    except DemoFailed:
        pass
    else:
        raise AssertionError("a failed part must stop the demo")
    summary(demo, ["aws", "iot-ws", "endorse", "cognito"])
    out = console.file.getvalue()
    assert "demo incomplete: 1 part(s) skipped (iot-ws)" in out and "demo finished" not in out
    assert re.search(r"│ aws +│ ok +│", out)
    assert re.search(r"│ iot-ws +│ skipped: mosquitto is not installed", out)
    assert re.search(r"│ endorse +│ failed: wrong answer", out)
    assert re.search(r"│ cognito +│ not run +│ +- │ +- │", out)


def test_demo_serve_keeps_the_emulators_up_for_the_real_aws_cli_until_ctrl_c(tmp_path):
    import os
    import select
    import signal
    import socket
    import time
    from urllib.parse import urlsplit

    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([GW, "demo", "--serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, deadline = "", time.monotonic() + 240
        while "Ctrl-C stops the emulators" not in out:
            assert time.monotonic() < deadline and proc.poll() is None, out
            if select.select([proc.stdout], [], [], 1)[0]:
                out += os.read(proc.stdout.fileno(), 65536).decode()
        env_file = Path(re.search(r"source (\S+/env\.sh)", out).group(1))
        assert env_file.stat().st_mode & 0o777 == 0o600
        exported = dict(line.removeprefix("export ").split("=", 1) for line in env_file.read_text().splitlines())
        shell_env = {**env, **exported}
        # the real AWS CLI, through gw's credential_process, against the running moto
        aws = subprocess.run(["aws", "sts", "get-caller-identity", "--profile", "admin", "--output", "text"],
                             env=shell_env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert aws.returncode == 0, aws.stderr
        assert "assumed-role/DemoAdmin/gw-admin" in aws.stdout
        soracom = urlsplit(exported["SORACOM_ENDPOINT"])
        assert soracom.hostname == "127.0.0.1"
        socket.create_connection((soracom.hostname, soracom.port), timeout=5).close()
        os.killpg(proc.pid, signal.SIGINT)
        os.killpg(proc.pid, signal.SIGINT)  # a second Ctrl-C while stopping changes nothing
        rest_bytes, err_bytes = proc.communicate(timeout=120)
        rest, err = rest_bytes.decode(), err_bytes.decode()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "cancelled" not in err
    assert "stopping the emulators" in rest
    assert not env_file.parent.exists(), "--serve without --keep removes its files when stopped"
    try:
        socket.create_connection((soracom.hostname, soracom.port), timeout=2).close()
    except OSError:
        pass
    else:
        raise AssertionError("the emulators are still listening after Ctrl-C")
