"""Full CLI tests: gw subprocesses against the SORACOM API emulator and the op emulator.

The soracom-cli side is emulated the way soracom-cli treats a profile file: the file
must be 0600 in a 0700 directory, ``profileCommand`` is split into argv (no shell),
run with stdin /dev/null, and its stdout is the profile JSON used for ``POST /v1/auth``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from tests.plugins.soracom.soracom_testdata import AUTHKEY, PERIOD, ROOT, SAM, SEED

GW = str(Path(sys.executable).parent / "gw")  # as tests/conftest.py
READER_PW = "reader-Pa55word!z"
SECRETS = [ROOT[1], SAM[2], AUTHKEY[1], SEED, READER_PW, "emuSecretKey/abcdefghijklmnopqrstuvwxyz0"]


def _noise(line: str) -> bool:
    """Lines from other, unfinished plugins that are not this suite's business."""
    return line.startswith("gw: warning: plugin ") and "failed to load" in line


@dataclass
class Sora:
    """The root conftest's isolated gw home, plus the SORACOM emulator and a record of all stderr."""

    home: object  # tests/conftest.py Sora
    api: object
    stderr_seen: list[str] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return self.home.env

    def run(self, *args: str, input: str | None = None, extra: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
        proc = self.home.run(*args, input=input, env=extra, timeout=timeout)
        self.stderr_seen.append(proc.stderr)
        return proc

    def errors(self, proc: subprocess.CompletedProcess) -> list[str]:
        return [line for line in proc.stderr.splitlines() if line.strip() and not _noise(line)]

    @property
    def profile_dir(self) -> Path:
        return self.home.home / ".soracom"


def _config(api_url: str) -> str:
    mfa = '{ totp = "vault:seed", period = %d }' % PERIOD
    return f'''
[profiles.sora-root]
steps = [{{ use = "soracom-keys", email = "{ROOT[0]}", password = "vault:root-pw", mfa_code = {mfa} }}]

[profiles.sora-sam]
steps = [{{ use = "soracom-keys", operator_id = "{SAM[0]}", username = "{SAM[1]}", password = "vault:sam-pw", mfa_code = {mfa} }}]

[profiles.sora-key]
steps = [{{ use = "soracom-keys", auth_key_id = "{AUTHKEY[0]}", auth_key = "vault:auth-key", mfa_code = {mfa}, coverage = "g" }}]

[profiles.sora-op]
steps = [{{ use = "soracom-keys", email = "{ROOT[0]}", password = "op://Private/SORACOM root/password", mfa_code = "op-otp://Private/SORACOM root" }}]

[profiles.sora-op-item]
steps = [{{ use = "onepassword", item = "SORACOM SAM deploy", vault = "Private", otp = true, fields = {{ operator_id = "operator id", username = "username", password = "password" }} }}]

[profiles.sora-session]
steps = [
  {{ use = "soracom-keys", operator_id = "{SAM[0]}", username = "reader", password = "vault:reader-pw" }},
  {{ use = "soracom-auth", endpoint = "{api_url}", token_timeout = 900 }},
]

[profiles.sora-switch]
steps = [
  {{ use = "soracom-keys", email = "{ROOT[0]}", password = "vault:root-pw", mfa_code = {mfa} }},
  {{ use = "soracom-auth", endpoint = "{api_url}/v1/", switch_to = {{ operator_id = "{SAM[0]}", username = "reader" }} }},
]

[profiles.sora-nomfa]
steps = [
  {{ use = "soracom-keys", email = "{ROOT[0]}", password = "vault:root-pw" }},
  {{ use = "soracom-auth", endpoint = "{api_url}" }},
]

[profiles.sora-badpw]
steps = [
  {{ use = "soracom-keys", operator_id = "{SAM[0]}", username = "reader", password = "vault:sam-pw" }},
  {{ use = "soracom-auth", endpoint = "{api_url}" }},
]

[profiles.aws-op]
steps = [{{ use = "onepassword", item = "AWS ci", vault = "Work", produces = "aws-credentials", fields = {{ access_key_id = "access key id", secret_access_key = "k2" }} }}]

[profiles.op-missing-item]
steps = [{{ use = "onepassword", item = "nope", vault = "Private", fields = {{ email = "username", password = "password" }} }}]

[profiles.op-missing-field]
steps = [{{ use = "onepassword", item = "SORACOM root", vault = "Private", fields = {{ email = "e-mail", password = "password" }} }}]

[profiles.op-slow]
steps = [{{ use = "onepassword", item = "SORACOM root", vault = "Private", timeout = 1, fields = {{ email = "username", password = "password" }} }}]
'''


@pytest.fixture
def sora(gw_home, soracom_api, op_shim) -> Sora:
    bindir, fixture = op_shim
    gw_home.write_config(_config(soracom_api.url))
    gw_home.env["PATH"] = f"{bindir}{os.pathsep}{gw_home.env['PATH']}"
    gw_home.env["GW_OP_FIXTURE"] = str(fixture)
    sora = Sora(gw_home, soracom_api)
    for name, value in (("root-pw", ROOT[1]), ("sam-pw", SAM[2]), ("auth-key", AUTHKEY[1]),
                        ("reader-pw", READER_PW), ("seed", SEED)):
        proc = sora.run("vault", "set", name, input=value + "\n")
        assert proc.returncode == 0, proc.stderr
    yield sora
    for text in sora.stderr_seen:  # no secret on any path
        for secret in SECRETS + soracom_api.accepted_codes + soracom_api.rejected_codes:
            assert secret not in text, "a secret reached stderr"


# -- soracom-cli, emulated -----------------------------------------------------------------
@dataclass
class CliResult:
    status: int
    profile: dict
    code: str | None
    stderr: str


def soracom_cli(home: Sora, name: str, *, endpoint: str | None = None) -> CliResult:
    """Authenticate like ``soracom --profile NAME subscribers list`` does, then list SIMs."""
    directory = home.profile_dir
    path = directory / f"{name}.json"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    file_doc = json.loads(path.read_text())
    argv = shlex.split(file_doc["profileCommand"])
    assert os.path.isabs(argv[0])
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          env=home.env, timeout=120)
    home.stderr_seen.append(proc.stderr)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # exactly one JSON object, nothing else
    keys = {k.lower(): v for k, v in doc.items()}
    if keys.get("authkeyid"):
        body = {"authKeyId": keys["authkeyid"], "authKey": keys["authkey"]}
    elif keys.get("email"):
        body = {"email": keys["email"], "password": keys["password"]}
    else:
        body = {"operatorId": keys["operatorid"], "userName": keys["username"], "password": keys["password"]}
    if keys.get("mfaotpcode"):
        body["mfaOTPCode"] = keys["mfaotpcode"]
    base = endpoint or file_doc.get("endpoint") or home.api.url
    verify = str(home.api.ca.ca_path)
    auth = requests.post(f"{base}/v1/auth", json=body, verify=verify, timeout=30)
    if auth.status_code != 200:
        return CliResult(auth.status_code, doc, keys.get("mfaotpcode"), proc.stderr)
    session = auth.json()
    subs = requests.get(f"{base}/v1/subscribers", verify=verify, timeout=30,
                        headers={"X-Soracom-API-Key": session["apiKey"], "X-Soracom-Token": session["token"]})
    assert subs.status_code == 200 and subs.json()[0]["imsi"]
    return CliResult(200, doc, keys.get("mfaotpcode"), proc.stderr)


def _setup(home: Sora, profile: str, *extra: str) -> subprocess.CompletedProcess:
    proc = home.run("setup", "soracom", "--profile", profile, *extra)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.mark.parametrize(
    "profile,keys,coverage",
    [
        ("sora-root", {"email", "password"}, "jp"),
        ("sora-sam", {"operatorId", "username", "password"}, "jp"),
        ("sora-key", {"authKeyId", "authKey"}, "g"),
    ],
)
def test_setup_profile_authenticates_with_mfa(sora, profile, keys, coverage):
    other = sora.profile_dir
    other.mkdir(mode=0o700)
    (other / "other.json").write_text('{"coverageType": "jp", "authKeyId": "x", "authKey": "y"}')
    os.chmod(other / "other.json", 0o600)

    _setup(sora, profile)
    file_doc = json.loads((sora.profile_dir / f"{profile}.json").read_text())
    assert file_doc["coverageType"] == coverage
    assert file_doc["profileCommand"] == f"{GW} soracom-profile --profile {profile}"
    assert (other / "other.json").read_text() == '{"coverageType": "jp", "authKeyId": "x", "authKey": "y"}'

    first = soracom_cli(sora, profile)
    second = soracom_cli(sora, profile)  # back to back: a fresh code each time
    assert first.status == second.status == 200
    assert set(first.profile) == keys | {"mfaOTPCode", "coverageType"}
    assert first.profile["coverageType"] == coverage
    assert first.code != second.code
    assert sora.api.accepted_codes == [first.code, second.code]
    assert not [line for line in (first.stderr + second.stderr).splitlines() if not _noise(line)]


def test_eight_parallel_profile_commands_get_distinct_codes(sora):
    _setup(sora, "sora-root", "--soracom-profile", "par")
    results: list[CliResult] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            results.append(soracom_cli(sora, "par"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not errors, errors
    assert [r.status for r in results] == [200] * 8
    codes = [r.code for r in results]
    assert len(set(codes)) == 8
    assert sorted(sora.api.accepted_codes) == sorted(codes)
    assert sora.api.rejected_codes == []


def test_op_schemes_and_item_step(sora):
    # op:// and op-otp:// references; two calls in a row never reuse the item's code
    _setup(sora, "sora-op")
    _setup(sora, "sora-op-item", "--coverage", "g")
    a = soracom_cli(sora, "sora-op")
    b = soracom_cli(sora, "sora-op")
    c = soracom_cli(sora, "sora-op-item")
    d = soracom_cli(sora, "sora-op-item")
    assert [a.status, b.status, c.status, d.status] == [200] * 4
    assert a.code != b.code and c.code != d.code
    assert c.profile["operatorId"] == SAM[0] and c.profile["username"] == SAM[1]
    assert c.profile["coverageType"] == "g"


def test_onepassword_aws_credentials(sora):
    proc = sora.run("env", "--profile", "aws-op", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    env = json.loads(proc.stdout)
    assert env["AWS_ACCESS_KEY_ID"] == "AKIAEMULATOR00000001"
    assert env["AWS_SECRET_ACCESS_KEY"] == "emuSecretKey/abcdefghijklmnopqrstuvwxyz0"


@pytest.mark.parametrize(
    "profile,extra,pattern",
    [
        ("sora-op-item", {"GW_OP_SIGNED_OUT": "1"}, r"1Password CLI is signed out"),
        ("op-missing-item", {}, r"1Password item not found"),
        ("op-missing-field", {}, r"1Password field missing.*'e-mail'"),
        ("op-slow", {"GW_OP_DELAY": "4"}, r"1Password CLI timed out after 1 s"),
        ("sora-op", {"GW_OP_PATH": "/nonexistent/op"}, r"1Password CLI not found"),
    ],
)
def test_op_failures_are_one_clear_line(sora, profile, extra, pattern):
    start = time.monotonic()
    proc = sora.run("soracom-profile", "--profile", profile, extra=extra)
    assert proc.returncode != 0 and proc.stdout == ""
    lines = sora.errors(proc)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("gw: ") and re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in proc.stderr
    assert time.monotonic() - start < 30


# -- sessions ------------------------------------------------------------------------------
def _subscribers(home: Sora, api_key: str, token: str) -> int:
    return requests.get(home.api.url + "/v1/subscribers", verify=str(home.api.ca.ca_path), timeout=30,
                        headers={"X-Soracom-API-Key": api_key, "X-Soracom-Token": token}).status_code


def test_session_token_formats_cache_and_logout(sora):
    first = sora.run("soracom-token", "--profile", "sora-session")
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    assert doc["operatorId"] == SAM[0] and doc["userName"] == "reader"
    assert doc["endpoint"] == sora.api.url and doc["expiration"].endswith("Z")
    assert _subscribers(sora, doc["apiKey"], doc["token"]) == 200

    env = sora.run("soracom-token", "--profile", "sora-session", "--format", "env").stdout
    assert f"export SORACOM_API_KEY={doc['apiKey']}" in env
    assert f"SORACOM_TOKEN={shlex.quote(doc['token'])}" in env
    args = sora.run("soracom-token", "--profile", "sora-session", "--format", "args").stdout
    assert shlex.split(args) == ["--api-key", doc["apiKey"], "--api-token", doc["token"]]
    assert sora.api.calls["auth"] == 1  # cached like AWS credentials

    child = sora.run("exec", "--profile", "sora-session", "--", sys.executable, "-c",
                        "import os; print(os.environ['SORACOM_API_KEY'])")
    assert child.stdout.strip() == doc["apiKey"]

    cleared = sora.run("cache", "clear", "--profile", "sora-session")
    assert cleared.returncode == 0, cleared.stderr
    assert sora.api.logged_out == [doc["apiKey"]]
    assert _subscribers(sora, doc["apiKey"], doc["token"]) == 401


def test_logout_failure_only_warns(sora):
    assert sora.run("soracom-token", "--profile", "sora-session").returncode == 0
    sora.api.stop()
    cleared = sora.run("cache", "clear")
    assert cleared.returncode == 0
    lines = sora.errors(cleared)
    assert len(lines) == 1 and "could not log out the SORACOM session" in lines[0]


def test_switch_user(sora):
    proc = sora.run("soracom-token", "--profile", "sora-switch")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["userName"] == "reader"
    assert sora.api.calls["auth"] == 1 and sora.api.calls["switch_user"] == 1
    assert _subscribers(sora, doc["apiKey"], doc["token"]) == 200


@pytest.mark.parametrize(
    "profile,pattern",
    [("sora-nomfa", r"SORACOM MFA code required"), ("sora-badpw", r"SORACOM rejected the credentials \(AUM0002\)")],
)
def test_auth_errors(sora, profile, pattern):
    proc = sora.run("soracom-token", "--profile", profile)
    assert proc.returncode == 1
    lines = sora.errors(proc)
    assert len(lines) == 1 and re.search(pattern, lines[0]), proc.stderr


def test_soracom_profile_needs_credentials_chain(sora):
    proc = sora.run("soracom-profile", "--profile", "sora-session")
    assert proc.returncode != 0 and proc.stdout == ""
    assert "soracom-credentials" in sora.errors(proc)[0]
    proc = sora.run("soracom-token", "--profile", "sora-root")
    assert proc.returncode != 0 and "soracom-session" in sora.errors(proc)[0]


def test_setup_refusals_and_endpoint(sora):
    for bad in ("../evil", "a;b", "x y"):
        proc = sora.run("setup", "soracom", "--profile", "sora-root", "--soracom-profile", bad)
        assert proc.returncode == 2 and "unusable SORACOM profile name" in proc.stderr
    sora.profile_dir.mkdir(mode=0o755)
    mine = sora.profile_dir / "handmade.json"
    mine.write_text('{"email": "me@example.com"}')
    proc = sora.run("setup", "soracom", "--profile", "sora-root", "--soracom-profile", "handmade")
    assert proc.returncode == 2 and "--force" in proc.stderr
    assert mine.read_text() == '{"email": "me@example.com"}'
    proc = sora.run("setup", "soracom", "--profile", "sora-session")
    assert proc.returncode == 2 and "soracom-credentials" in proc.stderr

    _setup(sora, "sora-root", "--soracom-profile", "withurl", "--endpoint", sora.api.url + "/")
    assert stat.S_IMODE(sora.profile_dir.stat().st_mode) == 0o700
    doc = json.loads((sora.profile_dir / "withurl.json").read_text())
    assert doc["endpoint"] == sora.api.url
    assert soracom_cli(sora, "withurl").status == 200
    _setup(sora, "sora-root", "--soracom-profile", "withurl", "--coverage", "g")  # gw's own file: replaced
    assert json.loads((sora.profile_dir / "withurl.json").read_text())["coverageType"] == "g"
