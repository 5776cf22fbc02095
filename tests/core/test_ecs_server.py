"""``gw exec --server`` and ``gw serve ecs``: an ECS container-credentials endpoint.

Real gw, real boto3/botocore as the client (its ContainerProvider reads
AWS_CONTAINER_CREDENTIALS_FULL_URI + AWS_CONTAINER_AUTHORIZATION_TOKEN), moto's STS
behind the profile.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import textwrap
from urllib.parse import urlsplit

import pytest
import requests

from tests.core.gw_test_support import (
    ROLE,
    assert_clean_failure,
    keys_from_env,
    role_profile,
)

# A child that runs "longer than its credentials": botocore normally refreshes container
# credentials 15 min (advisory) / 10 min (mandatory) before they expire; moto's shortest
# AssumeRole is 900 s, so the child moves both thresholds just under 900 s and gw is run
# with --min-ttl just above them. The SDK's own refresh logic then asks the endpoint again
# within seconds, exactly as it would after 5 minutes with the defaults.
CHILD = textwrap.dedent("""
    import json, os, sys, time
    import boto3
    import botocore.credentials as bc

    window = int(sys.argv[1])
    bc.RefreshableCredentials._advisory_refresh_timeout = window
    bc.RefreshableCredentials._mandatory_refresh_timeout = window - 1
    report = {"static_keys": [k for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
                              if k in os.environ],
              "uri": os.environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
              "region": os.environ.get("AWS_REGION"), "keys": [], "arns": [], "account": None}
    session = boto3.session.Session()
    sts = session.client("sts")
    deadline = time.monotonic() + 60
    while len(set(report["keys"])) < 3 and time.monotonic() < deadline:
        identity = sts.get_caller_identity()
        frozen = session.get_credentials().get_frozen_credentials()
        report["keys"].append(frozen.access_key)
        report["arns"].append(identity["Arn"])
        report["account"] = frozen.account_id
        time.sleep(0.2)  # pacing between calls; the loop ends on the condition above
    print(json.dumps(report))
""")


@pytest.fixture
def role_home(aws_home, iam_user):
    keys_from_env(aws_home, iam_user)
    aws_home.write_config(role_profile("deploy", duration=900, extra='region = "eu-west-1"'))
    return aws_home


def _refused(url: str) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=2).close()
    except OSError:
        return True
    return False


def test_a_boto3_child_outlives_its_first_credentials(role_home, moto, tmp_path):
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    before = moto.count("AssumeRole")
    result = role_home.run_in_process("exec", "--server", "--min-ttl", "898", "--profile", "deploy", "--",
                           sys.executable, str(child), "897", timeout=90)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["static_keys"] == []  # the child got no keys, only the endpoint
    assert report["uri"].startswith("http://127.0.0.1:")
    assert report["region"] == "eu-west-1"
    keys = report["keys"]
    assert len(set(keys)) >= 3, keys  # the SDK refreshed through gw (twice) and kept working
    assert all(":assumed-role/Admin/gw-deploy" in arn for arn in report["arns"])
    assert all(moto.lookup(key).kind == "assume-role" for key in set(keys))
    assert moto.count("AssumeRole") - before >= 3
    assert report["account"] == "123456789012"  # AccountId in the endpoint's answer
    assert _refused(report["uri"])  # the endpoint ended with the child
    assert result.stderr == ""


def test_exec_server_passes_the_exit_status_and_a_missing_command(role_home):
    done = role_home.run_in_process("exec", "--server", "--profile", "deploy", "--", sys.executable, "-c",
                         "import sys; sys.exit(7)")
    assert done.returncode == 7, done.stderr
    missing = role_home.run_in_process("exec", "--server", "--profile", "deploy", "--", "no-such-command-gw")
    assert missing.returncode == 127 and "command not found: no-such-command-gw" in missing.stderr


def test_exec_server_forwards_sigterm_and_ends_with_the_child(role_home):
    script = 'trap "exit 42" TERM; echo ready; while :; do sleep 0.1; done'
    proc = role_home.popen("exec", "--server", "--profile", "deploy", "--", "sh", "-c", script)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)  # to gw only: it passes the signal on to the child
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 42, err


def test_long_term_keys_are_not_served(aws_home, iam_user):
    keys_from_env(aws_home, iam_user)
    aws_home.write_config('[profiles.keys]\nsteps = [{ use = "aws-keys", access_key_id = "env:GWT_AKID", '
                          'secret_access_key = "env:GWT_SECRET" }]\n')
    result = aws_home.run_in_process("exec", "--server", "--profile", "keys", "--", "true")
    assert_clean_failure(result, contains="serves only temporary credentials")
    assert iam_user[1] not in result.stderr


def _serve(home, *extra: str) -> tuple[subprocess.Popen, dict[str, str]]:
    proc = home.popen("serve", "ecs", "--profile", "deploy", *extra)
    values = {}
    for _ in range(2):
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.poll() is not None else "no output"
        key, _, value = line.strip().partition("=")
        values[key] = value
    return proc, values


def test_serve_ecs_refuses_requests_without_the_token(role_home):
    proc, values = _serve(role_home)
    try:
        url = values["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
        token = values["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
        assert urlsplit(url).hostname == "127.0.0.1"
        assert requests.get(url, timeout=10).status_code == 403
        wrong = requests.get(url, headers={"Authorization": token[:-1] + "x"}, timeout=10)
        assert wrong.status_code == 403 and token not in wrong.text
        assert requests.post(url, headers={"Authorization": token}, timeout=10).status_code == 405
        good = requests.get(url, headers={"Authorization": token}, timeout=10)
        assert good.status_code == 200
        doc = good.json()
        assert set(doc) == {"AccessKeyId", "SecretAccessKey", "Token", "Expiration", "AccountId"}
        assert doc["Expiration"].endswith("Z") and doc["AccountId"] == "123456789012"

        # botocore's own container provider, as every SDK-based tool uses it
        from botocore.credentials import ContainerProvider

        credentials = ContainerProvider(environ=values).load()
        assert credentials.get_frozen_credentials().access_key == doc["AccessKeyId"]
        assert credentials.method == "container-role"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert err == ""
    assert _refused(url)


def test_serve_ecs_token_file(role_home, tmp_path):
    token_file = tmp_path / "token"
    proc, values = _serve(role_home, "--listen", "127.0.0.1:0", "--token-file", str(token_file))
    try:
        assert values["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] == str(token_file)
        assert token_file.stat().st_mode & 0o777 == 0o600
        url = values["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
        ok = requests.get(url, headers={"Authorization": token_file.read_text()}, timeout=10)
        assert ok.status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and err == ""  # loopback: no warning


@pytest.mark.parametrize("listen, beyond", [("0.0.0.0:8080", True), ("[::]:8080", True), ("192.0.2.7:8080", True),
                                            ("127.0.0.1:8080", False), ("127.0.0.2:8080", False),
                                            ("[::1]:8080", False), ("localhost:8080", False)])
def test_an_address_beyond_loopback_is_warned_about(listen, beyond):
    """Decided from the address alone: the test binds nothing (issue 15.8)."""
    from gw.ecs_server import exposure_warning, parse_listen

    host, port = parse_listen(listen)
    warning = exposure_warning("deploy", host, port)
    if beyond:
        assert warning is not None and warning.startswith(f"serving the credentials of 'deploy' on {host}:8080, beyond")
    else:
        assert warning is None


def test_serve_ecs_bad_listen_address_is_one_line(role_home):
    result = role_home.run_in_process("serve", "ecs", "--profile", "deploy", "--listen", "127.0.0.1:http")
    assert_clean_failure(result, contains="the port must be a number")


def test_server_answers_with_the_role_it_was_given(role_home, moto):
    """The endpoint serves the profile's final credential (assume-role), not the source keys."""
    proc, values = _serve(role_home)
    try:
        doc = requests.get(values["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
                           headers={"Authorization": values["AWS_CONTAINER_AUTHORIZATION_TOKEN"]}, timeout=10).json()
        issued = moto.lookup(doc["AccessKeyId"])
        assert issued is not None and issued.kind == "assume-role" and issued.arn.startswith(
            ROLE.replace(":iam:", ":sts:").replace(":role/", ":assumed-role/"))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)


def test_an_upstream_failure_is_a_500_with_one_clean_line(aws_home, iam_user, tmp_path):
    """Each request resolves the profile; when that fails the SDK gets a 500 and gw says why once."""
    broken = tmp_path / "broken"
    secret_cmd = tmp_path / "secret.sh"
    secret_cmd.write_text(f'#!/bin/sh\n[ -e "{broken}" ] && exit 4\necho "{iam_user[1]}"\n')
    secret_cmd.chmod(0o700)
    aws_home.env["GWT_AKID"] = iam_user[0]
    aws_home.write_config(f"""
[profiles.deploy]
steps = [
  {{ use = "aws-keys", access_key_id = "env:GWT_AKID", secret_access_key = "cmd:{secret_cmd}" }},
  {{ use = "assume-role", role_arn = "{ROLE}" }},
]
""")
    proc, values = _serve(aws_home, "--min-ttl", "2h")  # a 1 h role never has 2 h left: every request fetches
    try:
        url, token = values["AWS_CONTAINER_CREDENTIALS_FULL_URI"], values["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
        assert requests.get(url, headers={"Authorization": token}, timeout=30).status_code == 200
        broken.touch()
        failed = requests.get(url, headers={"Authorization": token}, timeout=30)
        assert failed.status_code == 500
        assert failed.json()["message"] == "cmd: secret.sh exited with status 4 (run it yourself to see why)"
        broken.unlink()
        assert requests.get(url, headers={"Authorization": token}, timeout=30).status_code == 200  # recovers
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert err.splitlines() == ["gw: ECS endpoint: cmd: secret.sh exited with status 4 (run it yourself to see why)"]
    assert iam_user[1] not in err and token not in err


# -- issue 15.4: slow, half-open and hanging-up clients ------------------------------
def _dribble(host: str, port: int, stop, cut: list[float]) -> None:
    """A client without the token sending its request one byte every 0.4 s (each read is quick)."""
    import time

    started = time.monotonic()
    sock = socket.create_connection((host, port), timeout=10)
    try:
        for byte in b"GET /gw/credentials HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000:
            if stop.is_set():
                return
            sock.sendall(bytes([byte]))
            time.sleep(0.4)
    except OSError:
        cut.append(time.monotonic() - started)  # the endpoint cut it off
    finally:
        sock.close()


def test_slow_and_half_open_clients_do_not_keep_botocore_out(role_home):
    """Slow clients each hold a connection; the SDK's own provider (2 s timeout) still gets in every time."""
    import threading
    import time

    from botocore.credentials import ContainerProvider

    proc, values = _serve(role_home)
    stop = threading.Event()
    host, port = urlsplit(values["AWS_CONTAINER_CREDENTIALS_FULL_URI"]).hostname, \
        urlsplit(values["AWS_CONTAINER_CREDENTIALS_FULL_URI"]).port
    cut: list[float] = []
    dribblers = [threading.Thread(target=_dribble, args=(host, port, stop, cut)) for _ in range(8)]
    silent = [socket.create_connection((host, port), timeout=10) for _ in range(40)]  # half-open: never speak
    try:
        for thread in dribblers:
            thread.start()
        time.sleep(0.5)
        started = time.monotonic()
        loads = []
        while time.monotonic() - started < 7:
            t0 = time.monotonic()
            credentials = ContainerProvider(environ=values).load()  # raises if it times out 3 times
            loads.append(time.monotonic() - t0)
            assert credentials.get_frozen_credentials().access_key.startswith("ASIA")
            time.sleep(0.3)
        assert len(loads) >= 10 and max(loads) < 2, loads  # every load answered within botocore's first timeout
        for thread in dribblers:
            thread.join(timeout=10)
        assert len(cut) == 8 and max(cut) < 8, cut  # cut at the whole-request deadline, though each byte came in time
    finally:
        stop.set()
        for sock in silent:
            sock.close()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and err == ""


def test_resets_and_hang_ups_print_nothing(role_home):
    """Clients that reset mid-request, or hang up before reading the answer, leave stderr empty."""
    import struct

    proc, values = _serve(role_home)
    url, token = values["AWS_CONTAINER_CREDENTIALS_FULL_URI"], values["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
    address = (urlsplit(url).hostname, urlsplit(url).port)
    request = f"GET /gw/credentials HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n\r\n".encode()
    try:
        for i in range(10):
            sock = socket.create_connection(address, timeout=10)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
            sock.sendall(request if i % 2 else request[:20])  # a whole request, or half of one
            sock.close()
        sock = socket.create_connection(address, timeout=10)
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)  # hangs up its sending side, then goes away
        sock.close()
        good = requests.get(url, headers={"Authorization": token}, timeout=10)
        assert good.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert err == ""  # no traceback, not a line
