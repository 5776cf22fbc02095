"""``gw soracom --profile P -- ARGS``: soracom-cli (the stand-in) with the cached session."""

from __future__ import annotations

import json
import time

from tests.plugins.soracom.soracom_testdata import IMSIS, ROOT


def _soracom(sora, profile: str, *args: str, extra: dict | None = None):
    return sora.run("soracom", "--profile", profile, "--", *args, extra=extra)


def test_ten_sequential_calls_sign_in_once_without_waiting(sora):
    start = time.monotonic()
    for _ in range(10):
        proc = _soracom(sora, "sora-mfa-session", "subscribers", "list")
        assert proc.returncode == 0, proc.stderr
        assert [row["imsi"] for row in json.loads(proc.stdout)] == sorted(IMSIS)
    assert sora.api.calls["auth"] == 1 and len(sora.api.accepted_codes) == 1  # one code, so no wait for a step
    assert sora.api.calls["subscribers"] == 10
    runs = sora.cli_runs()
    assert len(runs) == 10 and {r["auth"] for r in runs} == {"api-key"}  # soracom-cli never signed in itself
    assert time.monotonic() - start < 30


def test_ten_parallel_cold_calls_sign_in_once(sora):
    procs = [sora.home.popen("soracom", "--profile", "sora-mfa-session", "--", "subscribers", "list")
             for _ in range(10)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 10, [err for _, err in outs]
    assert all([row["imsi"] for row in json.loads(out)] == sorted(IMSIS) for out, _ in outs)
    assert sora.api.calls["auth"] == 1 and len(sora.api.accepted_codes) == 1


def test_argv_passed_through_untouched_and_exit_code_returned(sora):
    odd = ["subscribers", "list", "--limit", "2", "--note=a b 'c' \"d\" $HOME ; | &", "--", "-x"]
    proc = _soracom(sora, "sora-session", *odd)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)) == 2
    run = sora.cli_runs()[-1]
    assert run["rest"] == odd  # everything after gw's -- reaches soracom-cli as it was
    assert run["argv"][:4] == ["--api-key", run["argv"][1], "--api-token", run["argv"][3]]

    missing = _soracom(sora, "sora-session", "subscribers", "get", "--imsi", "440109999999999")
    assert missing.returncode == 1 and json.loads(missing.stdout)["code"]  # soracom-cli's own exit code
    assert sora.api.calls["auth"] == 1


def test_operator_get_reads_the_operator_id_from_the_token(sora):
    proc = _soracom(sora, "sora-mfa-session", "operator", "get")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["operatorId"] == ROOT[2] and doc["email"] == ROOT[0]


def test_endpoint_pinned_to_the_session(sora):
    # the user's own SORACOM_ENDPOINT and a default profile pointing elsewhere are overridden
    sora.profile_dir.mkdir(mode=0o700)
    default = sora.profile_dir / "default.json"
    default.write_text(json.dumps({"coverageType": "g", "endpoint": "https://elsewhere.invalid"}))
    default.chmod(0o600)
    proc = _soracom(sora, "sora-mfa-session", "subscribers", "list",
                    extra={"SORACOM_ENDPOINT": "https://wrong.invalid"})
    assert proc.returncode == 0, proc.stderr
    run = sora.cli_runs()[-1]
    # the step's endpoint ends in /v1; soracom-cli appends /v1 itself, so gw pins it without
    assert run["env_endpoint"] == run["endpoint"] == sora.api.url


def test_stdin_is_inherited(sora, tmp_path):
    script = tmp_path / "soracom-stdin"
    script.write_text("#!/bin/sh\ncat\n")
    script.chmod(0o755)
    proc = sora.run("soracom", "--profile", "sora-session", "--", "x", input="from stdin\n",
                    extra={"GW_SORACOM_CLI": str(script)})
    assert proc.returncode == 0 and proc.stdout == "from stdin\n"


def test_profile_without_soracom_auth_is_refused(sora):
    proc = _soracom(sora, "sora-root", "subscribers", "list")
    lines = sora.errors(proc)
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "ends in soracom-credentials" in lines[0] and 'add { use = "soracom-auth" }' in lines[0]
    proc = _soracom(sora, "aws-op", "subscribers", "list")
    assert proc.returncode == 2 and "chain ending in soracom-auth" in proc.stderr
    assert sora.api.calls["auth"] == 0 and sora.cli_runs() == [] and sora.api.accepted_codes == []


def test_soracom_cli_not_found(sora):
    proc = _soracom(sora, "sora-session", "subscribers", "list", extra={"GW_SORACOM_CLI": "/nonexistent/soracom"})
    lines = sora.errors(proc)
    assert proc.returncode == 2 and len(lines) == 1
    assert "soracom-cli not found" in lines[0] and "GW_SORACOM_CLI" in lines[0]


def test_cli_option_of_the_step(sora, tmp_path):
    from tests.plugins.soracom import soracom_cli_standin
    from tests.plugins.soracom.conftest import sora_config

    elsewhere = soracom_cli_standin.install(tmp_path / "elsewhere")
    sora.home.write_config(sora_config(sora.api.url).replace(
        f'endpoint = "{sora.api.url}", token_timeout = 900 }}',
        f'endpoint = "{sora.api.url}", token_timeout = 900, cli = "{elsewhere}" }}'))
    proc = _soracom(sora, "sora-session", "subscribers", "list", extra={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)) == len(IMSIS)


