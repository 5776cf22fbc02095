"""``gw soracom``'s forwarder (plugins/soracom/forwarder.py, runner.py): hardening finding 1.

soracom-cli gets per-call placeholders and ``SORACOM_ENDPOINT`` pointing at gw's forwarder on
127.0.0.1; the real key and token stay in gw. Checked through real parts: the soracom-cli
stand-in (modelled on soracom-cli's source), the SORACOM API emulator over real TLS, another
local user (``nobody``, via setpriv) reading /proc and connecting to the forwarder.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse

import pytest

from gw_emulators.httpserver import EmulatorServer, Response
from gw_plugins.soracom import forwarder as fwd_module
from gw_plugins.soracom.forwarder import Forwarder, peer_uid
from tests.plugins.soracom.soracom_testdata import IMSIS

SETPRIV = shutil.which("setpriv")
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
needs_nobody = pytest.mark.skipif(SETPRIV is None or os.geteuid() != 0,
                                  reason="needs root and setpriv to act as another user (nobody)")


def _soracom(sora, profile: str, *args: str, extra: dict | None = None):
    return sora.run("soracom", "--profile", profile, "--", *args, extra=extra)


def _encodings(secret: str) -> list[str]:
    """``secret`` raw and as the encodings a process might hold it in."""
    raw = secret.encode()
    return [secret, raw.hex(), raw.hex().upper(), base64.b64encode(raw).decode().rstrip("="),
            base64.urlsafe_b64encode(raw).decode().rstrip("="), urllib.parse.quote(secret, safe=""),
            json.dumps(secret)[1:-1], secret[: len(secret) // 2 + 4], secret[-(len(secret) // 2 + 4):]]


# -- the acceptance test: another local user sees neither value --------------------------------
SNOOP = r"""
import os, select, sys
seen = set()
while not select.select([sys.stdin], [], [], 0)[0]:  # until the test closes our stdin
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        for what in ("cmdline", "environ"):
            try:
                with open(f"/proc/{pid}/{what}", "rb") as f:
                    seen.add(f.read())
            except OSError:
                pass
sys.stdout.buffer.write(b"\n".join(seen))
"""


@needs_nobody
def test_another_user_reading_proc_sees_neither_key_nor_token(sora, tmp_path):
    # soracom-cli that takes its time, so the snooper surely sees it running (and records its environment)
    env_dump = tmp_path / "child-environ"
    slow = tmp_path / "slow-soracom"
    slow.write_text(f"#!/bin/sh\ncat /proc/$$/environ > {env_dump}\nsleep 0.5\nexec soracom \"$@\"\n")
    slow.chmod(0o755)
    snooper = subprocess.Popen([*NOBODY, "/usr/bin/python3", "-c", SNOOP], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/")
    try:
        time.sleep(0.5)
        first = _soracom(sora, "sora-mfa-session", "subscribers", "list", extra={"GW_SORACOM_CLI": str(slow)})
        assert first.returncode == 0, first.stderr
        hit = _soracom(sora, "sora-mfa-session", "operator", "get", extra={"GW_SORACOM_CLI": str(slow)})  # fast path
        assert hit.returncode == 0, hit.stderr
    finally:
        seen, _ = snooper.communicate(timeout=60)
    (session,) = sora.api.live_sessions()
    placeholders = [run["argv"][1] for run in sora.cli_runs()]
    assert len(placeholders) == 2 and all(p.encode() in seen for p in placeholders)  # it did see soracom-cli's argv
    child_env = env_dump.read_bytes()
    for secret in (session.api_key, session.token):
        for form in _encodings(secret):
            assert form.encode() not in seen, "another user saw the SORACOM session"
            assert form.encode() not in child_env, "soracom-cli's environment holds the session"


# -- the forwarder on its own, against the emulator over real TLS ---------------------------------
@pytest.fixture
def session(soracom_api):
    from tests.plugins.soracom.soracom_testdata import READER_PW, SAM

    answer = http_post_json(soracom_api, "/v1/auth", {"operatorId": SAM[0], "userName": "reader", "password": READER_PW})
    return answer


def http_post_json(emulator, path: str, body: dict) -> dict:
    import ssl

    conn = http.client.HTTPSConnection("127.0.0.1", emulator.port,
                                       context=ssl.create_default_context(cafile=str(emulator.ca.ca_path)))
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    response = conn.getresponse()
    assert response.status == 200
    return json.loads(response.read())


class One:
    """A forwarder with one call registered: what soracom-cli sees (its port and placeholders)."""

    def __init__(self, endpoint: str, api_key: str, token: str, cafile: str, operator_id: str = "") -> None:
        self.server = Forwarder()
        self.session = self.server.register(endpoint, api_key, token, cafile, operator_id)
        self.port = self.server.port
        self.key_placeholder, self.token_placeholder = self.session.key_placeholder, self.session.token_placeholder
        self.notes = self.session.notes

    def start(self) -> One:
        self.server.start()
        return self

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def forwarder(soracom_api, session):
    f = One(soracom_api.url, session["apiKey"], session["token"], str(soracom_api.ca.ca_path), session["operatorId"])
    f.start()
    yield f
    f.close()


def ask(f: One, path: str = "/v1/subscribers", *, key: str | None = None, token: str | None = None,
        method: str = "GET") -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", f.port, timeout=30)
    headers = {"X-Soracom-Lang": "en"}
    if key is not None:
        headers["X-Soracom-API-Key"] = key
    if token is not None:
        headers["X-Soracom-Token"] = token
    conn.request(method, path, headers=headers)
    response = conn.getresponse()
    data = response.read()
    return response.status, (json.loads(data) if data else {})


def test_the_right_placeholders_are_forwarded(forwarder, soracom_api, session):
    status, doc = ask(forwarder, key=forwarder.key_placeholder, token=forwarder.token_placeholder)
    assert status == 200 and sorted(row["imsi"] for row in doc) == sorted(IMSIS)
    assert soracom_api.seen_keys == [session["apiKey"]]  # the real key reached the API
    # the token placeholder carries the operator ID where soracom-cli reads it, and nothing secret
    payload = forwarder.token_placeholder.split(".")[1]
    assert json.loads(base64.urlsafe_b64decode(payload + "==")) == {"operator": {"operatorId": session["operatorId"]}}


@pytest.mark.parametrize("case", ["wrong key", "wrong token", "no token", "nothing", "swapped", "outside /v1"])
def test_anything_but_the_placeholders_is_refused(forwarder, soracom_api, session, case):
    key, token, path = forwarder.key_placeholder, forwarder.token_placeholder, "/v1/subscribers"
    if case == "wrong key":
        key = key[:-1] + ("0" if key[-1] != "0" else "1")
    elif case == "wrong token":
        token = token[:-1] + ("0" if token[-1] != "0" else "1")
    elif case == "no token":
        token = None
    elif case == "nothing":
        key = token = None
    elif case == "swapped":
        key, token = session["apiKey"], session["token"]  # the real ones are no placeholders either
    else:
        path = "/subscribers"
    status, doc = ask(forwarder, path, key=key, token=token)
    assert status == 403 and doc["code"].startswith("GW-FWD")
    assert soracom_api.calls["subscribers"] == 0 and soracom_api.seen_keys == []  # nothing forwarded


CLIENT = r"""
import http.client, json, sys
conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=30)
conn.request("GET", "/v1/subscribers", headers={"X-Soracom-API-Key": sys.argv[2], "X-Soracom-Token": sys.argv[3]})
r = conn.getresponse()
print(r.status, r.read().decode())
"""


@needs_nobody
def test_a_connection_from_another_user_is_refused(forwarder, soracom_api):
    proc = subprocess.run([*NOBODY, "/usr/bin/python3", "-c", CLIENT, str(forwarder.port), forwarder.key_placeholder,
                           forwarder.token_placeholder], capture_output=True, text=True, timeout=60, cwd="/")
    status, _, body = proc.stdout.partition(" ")
    assert status == "403" and json.loads(body)["code"] == "GW-FWD-PEER", proc.stdout + proc.stderr
    assert soracom_api.calls["subscribers"] == 0 and soracom_api.seen_keys == []
    # the same request from this user goes through: the uid made the difference
    assert ask(forwarder, key=forwarder.key_placeholder, token=forwarder.token_placeholder)[0] == 200


@pytest.mark.parametrize("lookup", [peer_uid, fwd_module.diag_uid, fwd_module.proc_uid])
def test_the_peer_socket_owner_is_found_by_netlink_and_by_proc_net_tcp(forwarder, lookup):
    import socket

    with socket.create_connection(("127.0.0.1", forwarder.port)) as client:
        port = client.getsockname()[1]
        assert lookup(port, forwarder.port) == os.getuid()
        assert lookup(port, forwarder.port + 1 if forwarder.port < 65535 else 1) is None


@needs_nobody
@pytest.mark.parametrize("lookup", [fwd_module.diag_uid, fwd_module.proc_uid])
def test_another_users_socket_is_seen_as_theirs(lookup, tmp_path):
    """Both lookups name the uid of the CONNECTING socket, not the accepting one (which is ours)."""
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        code = ("import socket, sys, time; s = socket.create_connection(('127.0.0.1', int(sys.argv[1]))); "
                "print(s.getsockname()[1], flush=True); time.sleep(5)")
        client = subprocess.Popen([*NOBODY, "/usr/bin/python3", "-c", code, str(listener.getsockname()[1])],
                                  stdout=subprocess.PIPE, text=True, cwd="/")
        try:
            port = int(client.stdout.readline())
            accepted, _ = listener.accept()
            assert lookup(port, listener.getsockname()[1]) == 65534
            accepted.close()
        finally:
            client.kill()
            client.wait()


def test_a_redirect_is_never_followed(ca, session):
    target = EmulatorServer(ca)
    target.route("GET", r"/v1/.*", lambda request: Response(200, b"[]", {}), "target")
    target.start()
    where = f"127.0.0.1:{target.port}"
    redirector = EmulatorServer(ca)
    redirector.route("GET", r"/v1/.*", lambda request: Response(307, b"", {"Location": f"{target.url}/v1/subscribers"}),
                     "redirect")
    redirector.start()
    f = One(redirector.url, session["apiKey"], session["token"], str(ca.ca_path)).start()
    try:
        status, doc = ask(f, key=f.key_placeholder, token=f.token_placeholder)
    finally:
        f.close()
        redirector.stop()
        target.stop()
    assert status == 421 and doc["code"] == "GW-FWD-REDIRECT" and where in doc["message"]
    assert redirector.calls["redirect"] == 1 and target.calls["target"] == 0
    assert any("not followed" in note for note in f.notes)


def test_tls_is_verified(soracom_api, session, tmp_path):
    from gw_emulators.tls import LocalCA

    other = LocalCA(tmp_path / "other-ca")
    f = One(soracom_api.url, session["apiKey"], session["token"], str(other.ca_path)).start()
    try:
        status, doc = ask(f, key=f.key_placeholder, token=f.token_placeholder)
    finally:
        f.close()
    assert status == 502 and "TLS failure" in doc["message"]
    assert soracom_api.seen_keys == []


def test_slow_and_excess_clients_are_bounded_and_quiet(forwarder, soracom_api, monkeypatch, capfd):
    import socket

    monkeypatch.setattr(fwd_module, "REQUEST_DEADLINE", 1.5)
    stalled = []
    for _ in range(fwd_module.MAX_CONNECTIONS):
        s = socket.create_connection(("127.0.0.1", forwarder.port))
        s.sendall(b"GET /v1/subscribers HTTP/1.1\r\nHost: x\r\n")  # never finished
        stalled.append(s)
    time.sleep(0.3)
    # every slot taken: the next connection is told to come back, not queued forever
    status, doc = ask(forwarder, key=forwarder.key_placeholder, token=forwarder.token_placeholder)
    assert status == 503
    start = time.monotonic()
    for s in stalled:  # each stalled one is closed at its deadline, with no answer forwarded
        s.settimeout(5)
        assert s.recv(100) == b""
        s.close()
    assert time.monotonic() - start < 3
    garbage = socket.create_connection(("127.0.0.1", forwarder.port))
    garbage.sendall(b"\x00\xff garbage\r\n\r\n")
    assert b" 400 " in garbage.recv(1000)
    garbage.close()
    reset = socket.create_connection(("127.0.0.1", forwarder.port))
    reset.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    reset.close()  # a hang-up by RST
    time.sleep(0.2)
    assert ask(forwarder, key=forwarder.key_placeholder, token=forwarder.token_placeholder)[0] == 200
    assert soracom_api.calls["subscribers"] == 1
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # no traceback, nothing at all


# -- what gw learns from the API's answers ---------------------------------------------------------------
def test_logout_drops_the_cached_session(sora):
    assert _soracom(sora, "sora-session", "subscribers", "list").returncode == 0
    proc = _soracom(sora, "sora-session", "logout")
    assert proc.returncode == 0 and proc.stdout == "" and sora.errors(proc) == [], proc.stderr
    assert len(sora.api.logged_out) == 1 and sora.api.calls["auth"] == 1
    proc = _soracom(sora, "sora-session", "subscribers", "list")  # was AUM0004 until --refresh
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sora.api.calls["auth"] == 2 and sora.api.seen_keys[-1] != sora.api.logged_out[0]


@pytest.mark.parametrize("path", ["fast", "slow"])
def test_a_refused_session_is_dropped_and_the_call_runs_once_more(sora, tmp_path, path):
    from tests.plugins.soracom import soracom_cli_standin

    extra = None
    if path == "slow":  # another soracom-cli: the recipe does not fit, the ordinary path runs
        extra = {"GW_SORACOM_CLI": str(soracom_cli_standin.install(tmp_path / "other"))}
    assert _soracom(sora, "sora-session", "subscribers", "list").returncode == 0
    time.sleep(1.05 - time.time() % 1)  # sessions are stamped to the second: the next call starts in a later one
    for live in sora.api.live_sessions():  # revoked behind gw's back (a logout elsewhere)
        live.revoked = True
    proc = _soracom(sora, "sora-session", "subscribers", "list", extra=extra)
    assert proc.returncode == 0 and sora.errors(proc) == [], proc.stderr
    assert [row["imsi"] for row in json.loads(proc.stdout)] == sorted(IMSIS)  # one output: the refused run printed nothing
    assert sora.api.calls["auth"] == 2  # one fresh sign-in
    assert sora.api.calls["subscribers"] == 3  # the first call, the refused one, the retried one
    again = _soracom(sora, "sora-session", "subscribers", "list")
    assert again.returncode == 0 and sora.api.calls["auth"] == 2  # the fresh session was cached


def test_a_second_refusal_is_one_line(sora):
    assert _soracom(sora, "sora-session", "subscribers", "list").returncode == 0
    sora.api.inject("subscribers", status=401, count=2)  # the cached session and the fresh one both refused
    proc = _soracom(sora, "sora-session", "subscribers", "list")
    lines = sora.errors(proc)
    assert proc.returncode != 0 and proc.stdout == "" and len(lines) == 1, (proc.stderr, dict(sora.api.calls))
    assert "refused a freshly signed-in session" in lines[0] and "Traceback" not in proc.stderr
    assert sora.api.calls["auth"] == 2 and sora.api.calls["subscribers"] == 3
    # neither refused session stays cached: the next call signs in again
    assert _soracom(sora, "sora-session", "subscribers", "list").returncode == 0 and sora.api.calls["auth"] == 3


def test_a_refusal_after_a_request_ran_is_passed_on_not_retried(sora, tmp_path):
    """Re-running soracom-cli is safe only when nothing ran: a session refused on a later request
    reaches soracom-cli as it is, and gw drops the session with one line."""
    two = tmp_path / "two-calls"
    two.write_text("#!/bin/sh\nsoracom \"$@\" subscribers list > /dev/null && exec soracom \"$@\" operator get\n")
    two.chmod(0o755)
    assert _soracom(sora, "sora-session", "subscribers", "list").returncode == 0
    sora.api.inject("operator", status=401)
    proc = _soracom(sora, "sora-session", extra={"GW_SORACOM_CLI": str(two)})
    assert proc.returncode == 1 and json.loads(proc.stdout)["code"] == "FAULT401"
    lines = sora.errors(proc)
    assert len(lines) == 1 and "dropped it" in lines[0], proc.stderr
    assert sora.api.calls["auth"] == 1 and sora.api.calls["subscribers"] == 2  # not run again
    assert _soracom(sora, "sora-session", "subscribers", "list").returncode == 0 and sora.api.calls["auth"] == 2


def test_the_forwarder_modules_import_only_the_standard_library():
    """The fast path imports the runner without gw.plugin, pluggy or typing (tests the claim in runner.py),
    and without what runs in the daemon only (threading, ssl, socket, the forwarder)."""
    code = ("import sys; before = set(sys.modules); import gw_plugins.soracom.runner; "
            "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in "
            "('gw', 'pluggy', 'typing', 'requests', 'json', 're', 'threading', 'ssl', 'socket') "
            "or m.endswith(('.forwarder', '.upstream', '.daemon'))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_ctrl_c_is_left_to_soracom_cli(sora, tmp_path):
    """gw ignores SIGINT while soracom-cli runs (as system(3) does); soracom-cli decides."""
    script = tmp_path / "trap"
    # SIGINT to gw (the parent, when it is gw soracom) and to itself, as a terminal's Ctrl-C does
    script.write_text("#!/bin/sh\ntrap 'echo caught; exit 3' INT\n"
                      "if tr '\\0' ' ' < /proc/$PPID/cmdline | grep -q -- ' soracom --profile '; then kill -INT $PPID; fi\n"
                      "kill -INT $$\nsleep 5\n")
    script.chmod(0o755)
    proc = _soracom(sora, "sora-session", "x", extra={"GW_SORACOM_CLI": str(script)})
    assert proc.returncode == 3 and proc.stdout == "caught\n", proc.stderr
    assert "Traceback" not in proc.stderr


def test_threads_do_not_outlive_the_call(forwarder):
    forwarder.close()
    time.sleep(0.2)
    assert not [t for t in threading.enumerate() if t.name.startswith("gw-forwarder") and t.is_alive()]


# -- TLS of the upstream side: both ways of making it verify the chain and the name ------------------
def _serve_tls_once(cert_path: str, key_path: str) -> tuple[int, threading.Thread]:
    import socket
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        conn, _ = listener.accept()
        listener.close()
        try:
            with context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(100)
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        except (ssl.SSLError, OSError):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread


def _cert_for(ca, tmp_path, names: list[str]) -> tuple[str, str]:
    """A server certificate from the test CA for ``names`` only (not 127.0.0.1)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca.certificate.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(ca._key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "other.pem", tmp_path / "other.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def test_upstream_tls_checks_the_name_and_the_chain(ca, tmp_path):
    from gw_emulators.tls import LocalCA
    from gw_plugins.soracom import upstream

    tls_class = upstream.StdTLS
    good = ca.issue("upstream-good")
    port, thread = _serve_tls_once(str(good.cert_path), str(good.key_path))
    conn = upstream.Connection("127.0.0.1", port, tls_class(str(ca.ca_path)), 10)
    assert conn.request("GET", "/", [], b"", 100)[0] == 200  # the positive control
    conn.close()
    thread.join(5)

    wrong_name = _cert_for(ca, tmp_path, ["api.example.invalid"])
    port, thread = _serve_tls_once(*wrong_name)
    with pytest.raises(Exception, match="(?i)certificate verify failed|hostname|IP address mismatch"):
        upstream.Connection("127.0.0.1", port, tls_class(str(ca.ca_path)), 10)
    thread.join(5)

    port, thread = _serve_tls_once(str(good.cert_path), str(good.key_path))
    with pytest.raises(Exception, match="(?i)certificate verify failed"):  # a CA the client does not trust
        upstream.Connection("127.0.0.1", port, tls_class(str(LocalCA(tmp_path / "other-ca").ca_path)), 10)
    thread.join(5)


# -- warm upstream connections: reused while alive, replaced when the server ended them ------------------
class ScriptedTLS:
    """A TLS server on 127.0.0.1 playing one script per connection: each a list of ("answer" |
    "close-after-request" | "close") steps, recording the requests it read."""

    def __init__(self, ca, scripts: list[list[str]]) -> None:
        import socket
        import ssl

        issued = ca.issue("scripted-upstream")
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(issued.cert_path, issued.key_path)
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.port = self.listener.getsockname()[1]
        self.scripts = scripts
        self.requests: list[str] = []
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        for script in self.scripts:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._play, args=(conn, script), daemon=True).start()

    def _play(self, conn, script: list[str]) -> None:
        import ssl

        try:
            tls = self.context.wrap_socket(conn, server_side=True)
            for step in script:
                if step == "close":
                    break
                data = b""
                while b"\r\n\r\n" not in data:
                    data += tls.recv(65536)
                self.requests.append(data.split(b" ", 2)[0].decode() + " " + data.split(b" ", 2)[1].decode())
                if step == "close-after-request":
                    break
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]")
            tls.close()
        except (ssl.SSLError, OSError):
            conn.close()

    def close(self) -> None:
        self.listener.close()


def _warmed(f: One) -> None:
    """Wait until the connection opened at registration (while the child starts) is parked."""
    deadline = time.monotonic() + 10
    while not any(f.server._idle.values()) and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_warm_connection_is_reused_and_one_the_server_ended_is_replaced(ca):
    server = ScriptedTLS(ca, [["answer", "answer", "close"], ["answer"]])
    f = One(f"https://127.0.0.1:{server.port}", "k", "t", str(ca.ca_path)).start()
    _warmed(f)
    try:
        assert ask(f, key=f.key_placeholder, token=f.token_placeholder)[0] == 200
        assert ask(f, key=f.key_placeholder, token=f.token_placeholder)[0] == 200  # the same connection
        assert server.connections == 1
        time.sleep(0.3)  # the server has ended that connection meanwhile (a keep-alive timeout)
        assert ask(f, key=f.key_placeholder, token=f.token_placeholder)[0] == 200
    finally:
        f.close()
        server.close()
    assert server.connections == 2 and server.requests == ["GET /v1/subscribers"] * 3


def test_a_post_that_may_have_arrived_is_not_sent_twice(ca):
    """A warm connection that dies after taking a whole POST: the POST may have run, so it is not
    repeated on a new connection (a GET would be); soracom-cli gets a 502."""
    server = ScriptedTLS(ca, [["answer", "close-after-request"], ["answer"]])
    f = One(f"https://127.0.0.1:{server.port}", "k", "t", str(ca.ca_path)).start()
    _warmed(f)
    try:
        assert ask(f, key=f.key_placeholder, token=f.token_placeholder)[0] == 200
        status, doc = ask(f, "/v1/subscribers/440100000000000/activate", key=f.key_placeholder,
                          token=f.token_placeholder, method="POST")
    finally:
        f.close()
        server.close()
    assert status == 502 and doc["code"] == "GW-FWD-UPSTREAM"
    assert server.requests == ["GET /v1/subscribers", "POST /v1/subscribers/440100000000000/activate"]
