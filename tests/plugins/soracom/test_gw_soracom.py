"""``gw soracom --profile P -- ARGS``: soracom-cli (the stand-in) with the cached session."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from gw.testing import gw_executable
from tests.plugins.soracom.conftest import SECRETS
from tests.plugins.soracom.soracom_testdata import IMSIS, ROOT

GW = gw_executable()


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
    assert run["argv"][1].startswith("gw-placeholder-") and run["argv"][3].startswith("gw-placeholder.")

    missing = _soracom(sora, "sora-session", "subscribers", "get", "--imsi", "440109999999999")
    assert missing.returncode == 1 and json.loads(missing.stdout)["code"]  # soracom-cli's own exit code
    assert sora.api.calls["auth"] == 1


def test_refresh_and_min_ttl_sign_in_again(sora):
    # issue 9: gw soracom hands soracom-cli a session, so it takes --refresh and --min-ttl
    # (before the --); after the -- they belong to soracom-cli, untouched.
    def key_of_last_run() -> str:  # the real key the API saw (soracom-cli sees placeholders only)
        return sora.api.seen_keys[-1]

    assert _soracom(sora, "sora-session", "subscribers", "list").returncode == 0
    first = key_of_last_run()
    proc = sora.run("soracom", "--profile", "sora-session", "--refresh", "--", "subscribers", "list")
    assert proc.returncode == 0, proc.stderr
    assert sora.api.calls["auth"] == 2 and key_of_last_run() != first
    second = key_of_last_run()
    proc = sora.run("soracom", "--profile", "sora-session", "--min-ttl", "5m", "--", "subscribers", "list")
    assert proc.returncode == 0 and sora.api.calls["auth"] == 2 and key_of_last_run() == second
    proc = sora.run("soracom", "--profile", "sora-session", "--min-ttl", "1h", "--", "subscribers", "list")
    assert proc.returncode == 0 and sora.api.calls["auth"] == 3 and key_of_last_run() != second
    third = key_of_last_run()
    proc = _soracom(sora, "sora-session", "subscribers", "list", "--refresh")
    assert sora.api.calls["auth"] == 3 and key_of_last_run() == third  # soracom-cli's own argument
    assert sora.cli_runs()[-1]["rest"] == ["subscribers", "list", "--refresh"]


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
    # soracom-cli talks to gw's forwarder on 127.0.0.1 (without /v1: soracom-cli appends it), whatever
    # the user set; the forwarder talks to the session's endpoint
    assert run["env_endpoint"] == run["endpoint"] and run["endpoint"].startswith("http://127.0.0.1:")
    assert sora.api.calls["subscribers"] == 1


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




def test_settings_soracom_cli_names_the_program(sora, tmp_path):
    """``[settings] soracom_cli`` (the soracom plugin's own setting) is used when neither
    GW_SORACOM_CLI nor the step's cli option says otherwise; a bad value is one line."""
    from tests.plugins.soracom import soracom_cli_standin
    from tests.plugins.soracom.conftest import sora_config

    elsewhere = soracom_cli_standin.install(tmp_path / "elsewhere")
    settings = f'[settings]\nca_bundle = "{sora.home.ca_path}"\nsoracom_cli = "{elsewhere}"\n'
    sora.home.write_config(settings + sora_config(sora.api.url))
    proc = _soracom(sora, "sora-session", "subscribers", "list", extra={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)) == len(IMSIS)
    assert sora.home.run_in_process("check").returncode == 0
    sora.home.write_config(settings.replace(str(elsewhere), "/nonexistent/soracom") + sora_config(sora.api.url))
    proc = _soracom(sora, "sora-session", "subscribers", "list", extra={"PATH": "/usr/bin:/bin"})
    lines = sora.errors(proc)
    assert proc.returncode == 2 and len(lines) == 1 and "(from settings.soracom_cli)" in lines[0], proc.stderr
    sora.home.write_config(settings.replace(f'"{elsewhere}"', "7") + sora_config(sora.api.url))
    proc = _soracom(sora, "sora-session", "subscribers", "list")
    lines = sora.errors(proc)
    assert proc.returncode == 2 and len(lines) == 1 and "settings.soracom_cli: must be a string" in lines[0]


# -- the cache-hit fast path (core/fastpath.py, from the recipe exec_with leaves) ------------------
def _verbose(sora, *args: str, extra: dict | None = None) -> tuple[subprocess.CompletedProcess, set[str]]:
    """``gw ARGS`` under ``python -v``: (the run, every module gw imported, importlib's too)."""
    proc = subprocess.run([sys.executable, "-v", GW, *args], env={**sora.env, **(extra or {})}, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL, start_new_session=True, cwd=sora.home.root)
    sora.stderr_seen.append(proc.stderr)
    return proc, {line.split("'")[1] for line in proc.stderr.splitlines() if line.startswith("import '")}


# The fast path loads the runner recipe's own modules (standard library only) and nothing else of a plugin.
# the forwarder itself (forwarder, upstream, daemon) runs in the daemon, not in gw
RUNNER_MODULES = {"gw_plugins", "gw_plugins.soracom", "gw_plugins.soracom.runner", "gw_plugins.soracom.control"}


def _plugins_loaded(modules: set[str]) -> list[str]:
    return sorted(m for m in modules - RUNNER_MODULES
                  if m.split(".")[0] in ("gw_plugins", "pluggy", "argparse", "tomllib", "requests"))


def _recipe(sora) -> Path:
    found = list(sora.home.cache_dir.glob("_exec.soracom.*.json"))
    assert len(found) == 1, found
    return found[0]


def test_a_cache_hit_runs_soracom_cli_without_loading_plugins(sora):
    first = _soracom(sora, "sora-mfa-session", "subscribers", "list")
    assert first.returncode == 0, first.stderr
    odd = ["subscribers", "list", "--limit", "2", "--note={api_key} {{token}} $HOME ; |", "--", "-x"]
    hit, modules = _verbose(sora, "soracom", "--profile", "sora-mfa-session", "--", *odd,
                            extra={"SORACOM_ENDPOINT": "https://wrong.invalid"})
    assert hit.returncode == 0, hit.stderr
    assert {"gw.fastpath", "gw.crypto"} <= modules and _plugins_loaded(modules) == []
    assert len(json.loads(hit.stdout)) == 2
    runs = sora.cli_runs()
    assert runs[-1]["rest"] == odd  # passed through untouched, placeholders in ARGS not filled
    assert runs[-1]["argv"][1] != runs[0]["argv"][1]  # fresh placeholders per call ...
    assert len(set(sora.api.seen_keys)) == 1  # ... for the same session
    assert runs[-1]["endpoint"].startswith("http://127.0.0.1:")  # the forwarder, whatever the user set
    assert sora.api.calls["auth"] == 1 and len(sora.api.accepted_codes) == 1
    # soracom-cli's exit status is gw's on the fast path too
    missing, modules = _verbose(sora, "soracom", "--profile", "sora-mfa-session", "--", "subscribers", "get",
                                "--imsi", "440109999999999")
    assert missing.returncode == 1 and json.loads(missing.stdout)["code"] and _plugins_loaded(modules) == []


def test_the_probe_sees_the_slow_path(sora):
    """Guards the test above: a first call (no recipe yet) does load the plugins."""
    proc, modules = _verbose(sora, "soracom", "--profile", "sora-session", "--", "subscribers", "list")
    assert proc.returncode == 0, proc.stderr
    assert {"gw_plugins.soracom.hooks", "pluggy", "argparse"} <= set(_plugins_loaded(modules))


def test_the_recipe_holds_no_secret(sora):
    assert _soracom(sora, "sora-mfa-session", "operator", "get").returncode == 0
    path = _recipe(sora)
    raw = path.read_text()
    assert path.stat().st_mode & 0o777 == 0o600
    session = sora.api.live_sessions()[0]
    for secret in [session.api_key, session.token, *SECRETS, *sora.api.accepted_codes]:
        assert secret not in raw and json.dumps(secret)[1:-1] not in raw
    recipe = json.loads(raw)["recipe"]
    assert recipe["argv"] == ["soracom"] and recipe["env"] == {}
    assert recipe["runner"] == "gw_plugins.soracom.runner:run"
    assert recipe["options"] == {"verify": str(sora.home.ca_path), "runtime_dir": str(sora.home.state / "run")}
    assert recipe["kind"] == "soracom-session" and recipe["command"] == "soracom"


def test_a_changed_cli_variable_or_edited_recipe_goes_the_slow_way(sora, tmp_path):
    from tests.plugins.soracom import soracom_cli_standin

    assert _soracom(sora, "sora-session", "subscribers", "list").returncode == 0
    elsewhere = soracom_cli_standin.install(tmp_path / "elsewhere")
    proc, modules = _verbose(sora, "soracom", "--profile", "sora-session", "--", "subscribers", "list",
                             extra={"GW_SORACOM_CLI": str(elsewhere)})
    assert proc.returncode == 0 and "gw_plugins.soracom.hooks" in modules  # GW_SORACOM_CLI changed: slow path
    # an edited recipe (another program) is never trusted: the slow path runs soracom-cli again
    evil_log = tmp_path / "evil.log"
    evil = tmp_path / "evil"
    evil.write_text(f"#!/bin/sh\necho \"$@\" >> {evil_log}\n")
    evil.chmod(0o755)
    path = _recipe(sora)
    path.write_text(path.read_text().replace(json.dumps(str(elsewhere)), json.dumps(str(evil))))
    proc, modules = _verbose(sora, "soracom", "--profile", "sora-session", "--", "subscribers", "list",
                             extra={"GW_SORACOM_CLI": str(elsewhere)})
    assert proc.returncode == 0 and "gw_plugins.soracom.hooks" in modules
    assert not evil_log.exists() and len(json.loads(proc.stdout)) == len(IMSIS)
    assert sora.api.calls["auth"] == 1
