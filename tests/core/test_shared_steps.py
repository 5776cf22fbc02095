"""One MFA for many roles: every step's temporary result is cached under its chain prefix.

Two profiles sharing ``aws-keys -> session-token (MFA)`` with different roles ask for one code
in all; a 1-hour role under a 12-hour MFA session asks once per 12 hours (time moved with
libfaketime, so gw itself sees the future); parallel callers of different profiles make one
GetSessionToken and one prompt.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.core.core_helpers import parse_credential_process, store_user
from tests.core.gw_test_support import OTHER_ROLE, ROLE

SERIAL = "arn:aws:iam::123456789012:mfa/me"
IN_CI = os.environ.get("CI", "").lower() == "true"


def shared_profiles() -> str:
    keys = '{ use = "aws-keys", access_key_id = "vault:akid", secret_access_key = "vault:secret" }'
    session = f'{{ use = "session-token", duration = 43200, mfa_serial = "{SERIAL}", mfa_code = "prompt" }}'
    return f"""
[profiles.admin]
steps = [ {keys}, {session}, {{ use = "assume-role", role_arn = "{ROLE}" }} ]

[profiles.readonly]
steps = [ {keys}, {session}, {{ use = "assume-role", role_arn = "{OTHER_ROLE}" }} ]
"""


@pytest.fixture
def home(aws_home, iam_user, askpass, moto):
    path, log = askpass
    aws_home.extra_settings["askpass"] = path
    aws_home.write_config(shared_profiles())
    store_user(aws_home, iam_user)
    moto.reset_counts()
    aws_home.askpass_log = log
    return aws_home


def prompts(home) -> int:
    return len(home.askpass_log.read_text().splitlines()) if home.askpass_log.exists() else 0


def test_two_profiles_sharing_an_mfa_session_ask_once(home, moto):
    for profile in ("admin", "readonly", "admin", "readonly"):
        result = home.run_in_process("credential-process", "--profile", profile)
        assert result.returncode == 0, result.stderr
        parse_credential_process(result.stdout)
    assert prompts(home) == 1
    assert moto.calls["GetSessionToken"] == 1 and moto.calls["AssumeRole"] == 2
    listed = home.run_in_process("cache", "list", env={"COLUMNS": "250"})
    assert "shared: aws-keys -> session-token (profiles admin, readonly)" in listed.stdout, listed.stdout
    profiles = home.run_in_process("profiles", "--json")
    assert [p["shared_steps_cached"][0]["step"] for p in json.loads(profiles.stdout)] == ["session-token"] * 2


def test_parallel_callers_of_different_profiles_make_one_fetch_and_one_prompt(home, moto):
    procs = [home.popen("credential-process", "--profile", p) for p in ("admin", "readonly") * 4]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        parse_credential_process(out)
    assert prompts(home) == 1
    assert moto.calls["GetSessionToken"] == 1 and moto.calls["AssumeRole"] == 2


def test_clearing_a_profile_drops_its_shared_steps_too(home, moto):
    assert home.run_in_process("credential-process", "--profile", "admin").returncode == 0
    cleared = home.run_in_process("cache", "clear", "--profile", "readonly")
    assert cleared.stdout.strip() == "cleared 0 cached profile(s) and 1 shared chain step(s)"
    assert home.run_in_process("credential-process", "--profile", "readonly").returncode == 0
    assert prompts(home) == 2


def _faketime() -> str:
    found = shutil.which("faketime")
    if found is None:
        if IN_CI:
            pytest.fail("faketime is not installed (tests/install-tools.sh installs it) and CI=true")
        pytest.skip("faketime is not installed (apt-get install faketime)")
    return found


def test_a_one_hour_role_under_a_twelve_hour_session_asks_once_per_session(home, moto):
    faketime = _faketime()

    def at(offset: str) -> subprocess.CompletedProcess:
        return subprocess.run([faketime, "-f", offset, home_gw(), "credential-process", "--profile", "admin"],
                              env=home.env, capture_output=True, text=True, timeout=120, start_new_session=True,
                              stdin=subprocess.DEVNULL)

    # moto stamps expiries with the real clock, so only gw lives in the future here: the session
    # fetched at +13h already looks expired to it, hence no +14h step.
    for offset, expected_prompts in (("+0", 1), ("+30m", 1), ("+2h", 1), ("+11h", 1), ("+13h", 2)):
        result = at(offset)
        assert result.returncode == 0, (offset, result.stderr)
        assert prompts(home) == expected_prompts, offset
    assert moto.calls["GetSessionToken"] == 2


def home_gw() -> str:
    from gw.testing import gw_executable

    return gw_executable()
