"""soracom-cli (the stand-in, modelled on its published source) through a profile file
written by ``gw setup soracom``, and the session commands, against the SORACOM API emulator."""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import sys
import threading

import pytest
import requests

from gw.testing import gw_executable  # noqa: E402
from tests.plugins.soracom.conftest import sora_config
from tests.plugins.soracom.soracom_testdata import IMSIS, SAM

GW = gw_executable()


def _setup(sora, profile: str, *extra: str):
    proc = sora.run("setup", "soracom", "--profile", profile, *extra)
    assert proc.returncode == 0, proc.stderr
    return proc


def _list(sora, name: str):
    """``soracom --profile NAME subscribers list``: the IMSIs, or the failed process."""
    proc = sora.soracom("--profile", name, "subscribers", "list")
    if proc.returncode != 0:
        return proc
    return [row["imsi"] for row in json.loads(proc.stdout)]


@pytest.mark.parametrize(
    "profile,fields,coverage",
    [
        ("sora-root", {"email", "password", "mfaOTPCode"}, "jp"),
        ("sora-sam", {"operatorId", "userName", "password", "mfaOTPCode"}, "jp"),
        ("sora-key", {"authKeyId", "authKey"}, "g"),
    ],
)
def test_setup_profile_signs_soracom_cli_in(sora, profile, fields, coverage):
    other = sora.profile_dir
    other.mkdir(mode=0o700)
    (other / "other.json").write_text('{"coverageType": "jp", "authKeyId": "x", "authKey": "y"}')
    os.chmod(other / "other.json", 0o600)

    out = _setup(sora, profile, "--endpoint", sora.api.url).stdout
    assert f"soracom --profile {profile} subscribers list" in out
    path = sora.profile_dir / f"{profile}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    file_doc = json.loads(path.read_text())
    assert file_doc["coverageType"] == coverage
    # no --coverage: soracom-cli takes the coverage from this file, never from the command's output
    assert file_doc["profileCommand"] == f"{GW} soracom-profile --profile {profile}"
    assert (other / "other.json").read_text() == '{"coverageType": "jp", "authKeyId": "x", "authKey": "y"}'

    printed = json.loads(sora.run("soracom-profile", "--profile", profile).stdout)
    assert "coverageType" not in printed
    first, second = _list(sora, profile), _list(sora, profile)  # back to back: a fresh code each time
    assert first == second == sorted(IMSIS)
    assert [set(b["fields"]) for b in sora.api.auth_bodies[-2:]] == [fields, fields]
    expected_codes = 2 if "mfaOTPCode" in fields else 0
    assert len(sora.api.accepted_codes) == len(set(sora.api.accepted_codes)) == expected_codes
    assert sora.api.rejected_codes == []


def test_eight_parallel_soracom_cli_calls_get_distinct_codes(sora):
    _setup(sora, "sora-root", "--soracom-profile", "par", "--endpoint", sora.api.url)
    results: list = []

    def one() -> None:
        results.append(_list(sora, "par"))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert results == [sorted(IMSIS)] * 8
    assert len(set(sora.api.accepted_codes)) == 8 and sora.api.rejected_codes == []


def test_profile_command_failure_shows_only_exit_status(sora):
    # what the issue reported: soracom-cli hides the command's stderr
    _setup(sora, "sora-root", "--soracom-profile", "broken", "--endpoint", sora.api.url)
    proc = sora.soracom("--profile", "broken", "subscribers", "list", extra={"GW_CONFIG": "/nonexistent/config.toml"})
    assert proc.returncode == 1 and proc.stderr.strip() == "Error: exit status 2"


def test_old_profile_files_with_coverage_still_work(sora):
    _setup(sora, "sora-key", "--endpoint", sora.api.url)
    path = sora.profile_dir / "sora-key.json"
    doc = json.loads(path.read_text())
    doc["profileCommand"] += " --coverage g"  # written by an older gw
    path.write_text(json.dumps(doc))
    assert _list(sora, "sora-key") == sorted(IMSIS)


# -- sessions ------------------------------------------------------------------------------
def _subscribers(sora, api_key: str, token: str) -> int:
    return requests.get(sora.api.url + "/v1/subscribers", verify=str(sora.api.ca.ca_path), timeout=30,
                        headers={"X-Soracom-API-Key": api_key, "X-Soracom-Token": token}).status_code


def test_session_token_formats_cache_and_logout(sora):
    first = sora.run("soracom-token", "--profile", "sora-session")
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    assert doc["operatorId"] == SAM[0] and doc["userName"] == "reader"
    assert doc["endpoint"] == sora.api.url and doc["expiration"].endswith("Z")
    assert _subscribers(sora, doc["apiKey"], doc["token"]) == 200

    args = sora.run("soracom-token", "--profile", "sora-session", "--format", "args").stdout
    assert shlex.split(args) == ["--api-key", doc["apiKey"], "--api-token", doc["token"]]
    env = sora.run("soracom-token", "--profile", "sora-session", "--format", "env").stdout  # for scripts
    assert f"export SORACOM_API_KEY={doc['apiKey']}" in env
    assert sora.api.calls["auth"] == 1  # cached like AWS credentials

    child = sora.run("exec", "--profile", "sora-session", "--", sys.executable, "-c",
                     "import os; print(os.environ['SORACOM_API_KEY'], os.environ['SORACOM_ENDPOINT'])")
    assert child.stdout.split() == [doc["apiKey"], sora.api.url]

    cleared = sora.run("cache", "clear", "--profile", "sora-session")
    assert cleared.returncode == 0, cleared.stderr
    assert sora.api.logged_out == [doc["apiKey"]]  # the emulator answers 204, as SORACOM does
    assert _subscribers(sora, doc["apiKey"], doc["token"]) == 401


def test_soracom_token_refresh_and_min_ttl(sora):
    # issue 9: --refresh signs in now; --min-ttl signs in again when the cached session
    # (token_timeout = 900 s) has less than that left; otherwise the cache answers.
    def token(*extra: str) -> dict:
        proc = sora.run("soracom-token", "--profile", "sora-session", *extra)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    first = token()
    assert token()["apiKey"] == first["apiKey"] and sora.api.calls["auth"] == 1
    refreshed = token("--refresh")
    assert sora.api.calls["auth"] == 2 and refreshed["apiKey"] != first["apiKey"]
    assert _subscribers(sora, refreshed["apiKey"], refreshed["token"]) == 200
    assert token("--min-ttl", "10m")["apiKey"] == refreshed["apiKey"]  # about 900 s left: enough
    assert token("--min-ttl", "300")["apiKey"] == refreshed["apiKey"]
    assert sora.api.calls["auth"] == 2
    longer = token("--min-ttl", "15m")  # less than 900 s left: a new session
    assert sora.api.calls["auth"] == 3 and longer["apiKey"] != refreshed["apiKey"]
    assert token()["apiKey"] == longer["apiKey"]  # the new session is the cached one
    args = sora.run("soracom-token", "--profile", "sora-session", "--format", "args", "--min-ttl", "1h").stdout
    assert sora.api.calls["auth"] == 4 and shlex.split(args)[1] not in (first["apiKey"], longer["apiKey"])

    bad = sora.run("soracom-token", "--profile", "sora-session", "--min-ttl", "soon")
    assert bad.returncode == 2 and "'soon' is not a duration" in bad.stderr and bad.stdout == ""
    assert "Traceback" not in bad.stderr and sora.api.calls["auth"] == 4


def test_exec_clears_stale_soracom_variables(sora):
    # core/envvars.py takes the names from the credential kinds' ENV_VARS
    stale = {"SORACOM_API_KEY": "stale-key", "SORACOM_TOKEN": "stale-token", "SORACOM_PROFILE": "stale"}
    child = sora.run("exec", "--profile", "aws-op", "--", sys.executable, "-c",
                     "import os, json; print(json.dumps({k: os.environ.get(k) for k in "
                     "('SORACOM_API_KEY', 'SORACOM_TOKEN', 'SORACOM_PROFILE', 'AWS_ACCESS_KEY_ID')}))", extra=stale)
    assert child.returncode == 0, child.stderr
    assert json.loads(child.stdout) == {"SORACOM_API_KEY": None, "SORACOM_TOKEN": None, "SORACOM_PROFILE": None,
                                        "AWS_ACCESS_KEY_ID": "AKIAEMULATOR00000001"}


def test_logout_failure_only_warns(sora):
    assert sora.run("soracom-token", "--profile", "sora-session").returncode == 0
    sora.api.stop()
    cleared = sora.run("cache", "clear")
    assert cleared.returncode == 0
    lines = sora.errors(cleared)
    assert len(lines) == 1 and "could not log out the SORACOM session" in lines[0]


def test_switch_user_and_lang_header_on_every_call(sora):
    proc = sora.run("soracom-token", "--profile", "sora-switch")  # endpoint ends in /v1/
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["userName"] == "reader" and doc["endpoint"] == sora.api.url
    assert sora.api.calls["auth"] == 1 and sora.api.calls["switch_user"] == 1
    assert sora.run("cache", "clear", "--profile", "sora-switch").returncode == 0
    assert sora.api.calls["logout"] == 1
    assert sora.api.langs == ["en", "en", "en"]  # auth, switch_user, logout: X-Soracom-Lang as soracom-cli


@pytest.mark.parametrize(
    "profile,pattern",
    [
        ("sora-nomfa", r"SORACOM MFA code required \(AUM0063\): add mfa_code .* soracom-keys"),
        # lang = "ja" and another mfa_required_code: recognised by the Japanese message
        ("sora-nomfa-ja", r"SORACOM MFA code required \(AUM0063\): add mfa_code"),
        ("sora-badpw", r"SORACOM rejected the credentials \(AUM0002\)"),
    ],
)
def test_auth_errors(sora, profile, pattern):
    proc = sora.run("soracom-token", "--profile", profile)
    assert proc.returncode == 1
    lines = sora.errors(proc)
    assert len(lines) == 1 and re.search(pattern, lines[0]), proc.stderr
    if profile == "sora-nomfa-ja":
        assert sora.api.langs[-1] == "ja"


def test_soracom_profile_needs_credentials_chain(sora):
    proc = sora.run("soracom-profile", "--profile", "sora-session")
    assert proc.returncode != 0 and proc.stdout == ""
    assert "soracom-credentials" in sora.errors(proc)[0]
    proc = sora.run("soracom-token", "--profile", "sora-root")
    assert proc.returncode != 0 and "soracom-session" in sora.errors(proc)[0]


# -- gw setup soracom ------------------------------------------------------------------------
@pytest.mark.parametrize("bad,suggestion", [("my_work", "my-work"), ("a.b", "a-b"), ("x y", "x-y"),
                                            ("../evil", "evil"), ("a;b", "ab"), ("a--b", "a-b")])
def test_setup_refuses_names_soracom_cli_would_rewrite(sora, bad, suggestion):
    from tests.plugins.soracom.soracom_cli_standin import sanitize_base_name

    assert sanitize_base_name(bad) != bad  # what soracom-cli would open instead
    proc = sora.run("setup", "soracom", "--profile", "sora-root", "--soracom-profile", bad)
    lines = sora.errors(proc)
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("gw: ") and f"--soracom-profile {suggestion}" in lines[0]
    assert sanitize_base_name(suggestion) == suggestion
    assert not sora.profile_dir.exists() or not list(sora.profile_dir.iterdir())


def test_setup_refuses_a_gw_profile_name_soracom_cli_would_rewrite(sora):
    sora.home.write_config(sora_config(sora.api.url) + '''
[profiles.my_work]
steps = [{ use = "soracom-keys", auth_key_id = "keyId-x", auth_key = "vault:auth-key" }]
''')
    proc = sora.run("setup", "soracom", "--profile", "my_work")
    assert proc.returncode == 2 and "gw profile name" in proc.stderr and "--soracom-profile my-work" in proc.stderr
    ok = sora.run("setup", "soracom", "--profile", "my_work", "--soracom-profile", "my-work")
    assert ok.returncode == 0, ok.stderr
    assert "soracom --profile my-work " in ok.stdout


def test_setup_refusals_endpoint_and_sandbox(sora):
    sora.profile_dir.mkdir(mode=0o755)
    mine = sora.profile_dir / "handmade.json"
    mine.write_text('{"email": "me@example.com"}')
    proc = sora.run("setup", "soracom", "--profile", "sora-root", "--soracom-profile", "handmade")
    assert proc.returncode == 2 and "--force" in proc.stderr
    assert mine.read_text() == '{"email": "me@example.com"}'
    proc = sora.run("setup", "soracom", "--profile", "aws-op")
    assert proc.returncode == 2 and "soracom-credentials" in proc.stderr

    # an endpoint given with /v1 is normalised: soracom-cli appends /v1 itself
    _setup(sora, "sora-root", "--soracom-profile", "withurl", "--endpoint", sora.api.url + "/v1/")
    assert stat.S_IMODE(sora.profile_dir.stat().st_mode) == 0o700
    doc = json.loads((sora.profile_dir / "withurl.json").read_text())
    assert doc["endpoint"] == sora.api.url
    assert _list(sora, "withurl") == sorted(IMSIS)
    _setup(sora, "sora-root", "--soracom-profile", "withurl", "--coverage", "g")  # gw's own file: replaced
    assert json.loads((sora.profile_dir / "withurl.json").read_text())["coverageType"] == "g"

    _setup(sora, "sora-key", "--soracom-profile", "sandbox", "--sandbox")
    doc = json.loads((sora.profile_dir / "sandbox.json").read_text())
    assert doc["sandbox"] is True and doc["endpoint"] == "https://g.api-sandbox.soracom.io"


def test_setup_creates_every_missing_profile_dir_level_0700(sora, tmp_path):
    # SORACOM_PROFILE_DIR three levels below an existing directory: each level gw creates
    # is 0700 (pathlib's mkdir(parents=True) made the parents 0755), whatever the umask.
    base = tmp_path / "existing"
    base.mkdir(mode=0o755)
    base.chmod(0o755)
    target = base / "a" / "b" / "soracom"
    extra = {"SORACOM_PROFILE_DIR": str(target)}
    proc = sora.run("setup", "soracom", "--profile", "sora-key", "--soracom-profile", "nested",
                    "--endpoint", sora.api.url, extra=extra)
    assert proc.returncode == 0, proc.stderr
    for level in (base / "a", base / "a" / "b", target):
        assert stat.S_IMODE(level.stat().st_mode) == 0o700, level
    assert stat.S_IMODE(base.stat().st_mode) == 0o755  # not gw's: left as it was
    path = target / "nested.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and str(path) in proc.stdout
    assert _list_with(sora, "nested", extra) == sorted(IMSIS)

    # a dangling symlink where the directory should be: one line, nothing created behind it
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "nowhere" / "deeper")
    proc = sora.run("setup", "soracom", "--profile", "sora-key", extra={"SORACOM_PROFILE_DIR": str(link)})
    assert proc.returncode != 0 and proc.stdout == "" and "Traceback" not in proc.stderr
    assert len(sora.errors(proc)) == 1 and "symlink" in proc.stderr
    assert not (tmp_path / "nowhere").exists()


def _list_with(sora, name: str, extra: dict):
    proc = sora.soracom("--profile", name, "subscribers", "list", extra=extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [row["imsi"] for row in json.loads(proc.stdout)]


def test_setup_offers_gw_soracom(sora):
    out = _setup(sora, "sora-root", "--endpoint", sora.api.url).stdout
    assert "sora-mfa-session" in out and "gw soracom --profile sora-mfa-session -- subscribers list" in out
    assert re.search(r"alias sora-sora-mfa-session='.*gw soracom --profile sora-mfa-session --'", out)
    assert "placeholders" in out and "never in an argv" in out  # no longer "visible in the process list"
    session = sora.run("setup", "soracom", "--profile", "sora-session")
    assert session.returncode == 0 and "gw soracom --profile sora-session --" in session.stdout
    assert not (sora.profile_dir / "sora-session.json").exists()


@pytest.mark.parametrize("command", [("soracom",), ("soracom-profile",), ("soracom-token",), ("setup", "soracom")])
def test_every_soracom_command_has_a_description_and_examples(gw_home, command):
    # issue 9: every subcommand's --help has a description and examples of that very command
    proc = gw_home.run_in_process(*command, "--help")
    assert proc.returncode == 0, proc.stderr
    description = proc.stdout.split("\n\n")[1]  # usage, then the description paragraph
    assert not description.startswith(("positional arguments", "options")) and len(description.split()) >= 20
    examples = [line for line in proc.stdout.split("\nexamples:\n", 1)[1].splitlines()
                if not line.startswith("      ")]  # a wrapped example's further lines (gw.helpfmt)
    assert any(line.startswith("  gw " + " ".join(command) + " ") for line in examples), examples
    assert all(line.startswith(("  gw ", "  alias ", "  soracom ")) for line in examples), examples
