"""``gw vault``, ``gw env`` in every format, and ``gw exec``'s child environment."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.core.core_helpers import parse_credential_process
from tests.core.gw_test_support import assert_clean_failure, keys_from_env, role_profile

# A value with every character shells treat specially: quoting must survive it.
AWKWARD = "it's a \"test\" $HOME `id` \\ ; & | * ? ~ !x\t# end"
PARENT = {
    "AWS_PROFILE": "parent-profile",
    "AWS_DEFAULT_PROFILE": "parent-default",
    "AWS_ACCESS_KEY_ID": "AKIAPARENTPARENT0000",
    "AWS_SECRET_ACCESS_KEY": "parent-secret",
    "AWS_SESSION_TOKEN": "parent-token",
    "AWS_SECURITY_TOKEN": "parent-security-token",
    "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/Parent",
    "AWS_WEB_IDENTITY_TOKEN_FILE": "/nonexistent/token",
    "SORACOM_API_KEY": "parent-soracom-key",
}
PRINT_ENV = [sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))"]


def test_vault_set_list_rm(gw_home):
    home = gw_home
    home.run_in_process("vault", "set", "zeta", input="z-value\n", check=True)
    stored = home.run_in_process("vault", "set", "alpha", input="a-value-1234")
    assert stored.returncode == 0 and stored.stdout.strip() == "stored alpha"
    assert home.run_in_process("vault", "list").stdout.splitlines() == ["alpha", "zeta"]
    vault = home.state / "vault"
    assert vault.stat().st_mode & 0o777 == 0o600
    assert b"a-value-1234" not in vault.read_bytes() and b"alpha" not in vault.read_bytes()
    # the stored value is what steps receive (trailing newline of the pipe dropped)
    home.write_config('[profiles.v]\nsteps = [{ use = "aws-keys", access_key_id = "vault:alpha", secret_access_key = "vault:zeta" }]\n')
    env = json.loads(home.run_in_process("env", "--profile", "v", "--format", "json", check=True).stdout)
    assert env == {"AWS_ACCESS_KEY_ID": "a-value-1234", "AWS_SECRET_ACCESS_KEY": "z-value"}
    removed = home.run_in_process("vault", "rm", "alpha")
    assert removed.returncode == 0 and removed.stdout.strip() == "removed alpha"
    assert home.run_in_process("vault", "list").stdout.splitlines() == ["zeta"]
    again = home.run_in_process("vault", "rm", "alpha")
    assert_clean_failure(again, contains="no secret named 'alpha'")
    assert_clean_failure(home.run_in_process("vault", "set", "empty", input=""), contains="empty secret")
    assert_clean_failure(home.run_in_process("vault", "set", "bad/name", input="x-value"), contains="vault names")
    assert home.run_in_process("vault", "list").stdout.splitlines() == ["zeta"]


@pytest.fixture
def keys_home(gw_home):
    """A profile of plain keys from env: references (one with awkward characters) and a region."""
    gw_home.env.update(GWT_AKID="AKIAPROFILEPROFILE00", GWT_SECRET=AWKWARD)
    gw_home.write_config(
        '[profiles.k]\nregion = "eu-central-1"\n'
        'steps = [{ use = "aws-keys", access_key_id = "env:GWT_AKID", secret_access_key = "env:GWT_SECRET" }]\n'
    )
    return gw_home


EXPECTED = {
    "AWS_ACCESS_KEY_ID": "AKIAPROFILEPROFILE00",
    "AWS_SECRET_ACCESS_KEY": AWKWARD,
    "AWS_REGION": "eu-central-1",
    "AWS_DEFAULT_REGION": "eu-central-1",
}


def test_exec_replaces_the_parents_credentials(keys_home):
    result = keys_home.run("exec", "--profile", "k", "--", *PRINT_ENV, env=PARENT)
    assert result.returncode == 0, result.stderr
    child = json.loads(result.stdout)
    for name, value in EXPECTED.items():
        assert child[name] == value
    assert child["GW_PROFILE"] == "k"
    leaked = {name for name in PARENT if name in child and name not in EXPECTED}
    assert leaked == set()
    assert child["HOME"] == keys_home.env["HOME"]  # the rest of the environment is kept


def test_exec_hands_over_a_session_token(aws_home, iam_user, moto):
    keys_from_env(aws_home, iam_user)
    aws_home.write_config(role_profile())
    result = aws_home.run("exec", "--profile", "role", *PRINT_ENV, env=PARENT)  # gw itself ignores them too
    assert result.returncode == 0, result.stderr
    child = json.loads(result.stdout)
    issued = moto.lookup(child["AWS_ACCESS_KEY_ID"])
    assert issued is not None and issued.kind == "assume-role"
    assert child["AWS_SECRET_ACCESS_KEY"] == issued.secret_access_key
    assert child["AWS_SESSION_TOKEN"] == issued.session_token
    assert child["AWS_CREDENTIAL_EXPIRATION"].endswith("Z")
    # and credential-process hands out the same (cached) credentials
    same = parse_credential_process(aws_home.run_in_process("credential-process", "--profile", "role").stdout)
    assert same["AccessKeyId"] == child["AWS_ACCESS_KEY_ID"]


def test_exec_passes_the_childs_exit_status(keys_home):
    result = keys_home.run("exec", "--profile", "k", "--", sys.executable, "-c", "raise SystemExit(3)")
    assert result.returncode == 3 and result.stderr == ""


def test_exec_gives_the_child_a_shells_signal_dispositions(keys_home):
    """Python ignores SIGPIPE, and an ignored signal stays ignored across exec: ``gw exec -- sh -c
    'yes | head -n 1'`` must end ``yes`` by SIGPIPE, not leave it writing into a closed pipe."""
    for _ in range(2):  # a cache miss, then a hit
        result = keys_home.run("exec", "--profile", "k", "--", "sh", "-c",
                               "grep SigIgn /proc/$$/status; yes | head -n 1")
        assert result.returncode == 0, result.stderr
        sig_ign, first = result.stdout.splitlines()
        assert not int(sig_ign.split()[1], 16) & (1 << (13 - 1)), "SIGPIPE ignored"
        assert first == "y" and "Broken pipe" not in result.stderr and "yes:" not in result.stderr


def test_exec_of_a_missing_command(keys_home):
    result = keys_home.run("exec", "--profile", "k", "--", "gw-no-such-command")
    assert_clean_failure(result, contains="command not found: gw-no-such-command")
    assert result.returncode == 127


def test_exec_of_a_file_that_is_not_executable(keys_home, tmp_path):
    script = tmp_path / "not-executable.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    result = keys_home.run("exec", "--profile", "k", "--", str(script))
    assert_clean_failure(result, contains="permission denied")
    assert result.returncode == 126


def test_env_sh_evaluates_to_the_credentials(keys_home, tmp_path):
    result = keys_home.run_in_process("env", "--profile", "k", "--format", "sh", env={"AWS_PROFILE": "stale", "AWS_SESSION_TOKEN": "stale"})
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.splitlines()[0].startswith("unset ")
    script = tmp_path / "env.sh"
    script.write_text(result.stdout)
    shell = subprocess.run(
        ["sh", "-c", f'. "{script}"; exec "$0" "$@"', *PRINT_ENV],
        env={"PATH": "/usr/bin:/bin", "AWS_PROFILE": "stale", "AWS_SESSION_TOKEN": "stale"},
        capture_output=True, text=True, timeout=30,
    )
    assert shell.returncode == 0, shell.stderr
    child = json.loads(shell.stdout)
    for name, value in EXPECTED.items():
        assert child[name] == value
    assert "AWS_PROFILE" not in child and "AWS_SESSION_TOKEN" not in child


def test_env_json(keys_home):
    result = keys_home.run_in_process("env", "--profile", "k", "--format", "json")
    assert result.returncode == 0 and result.stderr == ""
    assert json.loads(result.stdout) == EXPECTED


def test_env_fish(keys_home):
    result = keys_home.run_in_process("env", "--profile", "k", "--format", "fish", env={"AWS_PROFILE": "stale"})
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert "set -e AWS_PROFILE;" in lines
    assert "set -gx AWS_ACCESS_KEY_ID 'AKIAPROFILEPROFILE00';" in lines
    # fish single quotes: only \\ and \' are escapes
    quoted = AWKWARD.replace("\\", "\\\\").replace("'", "\\'")
    assert f"set -gx AWS_SECRET_ACCESS_KEY '{quoted}';" in lines


def test_env_powershell(keys_home):
    result = keys_home.run_in_process("env", "--profile", "k", "--format", "powershell", env={"AWS_PROFILE": "stale"})
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert "Remove-Item Env:AWS_PROFILE -ErrorAction SilentlyContinue" in lines
    assert "$Env:AWS_REGION = 'eu-central-1'" in lines
    assert "$Env:AWS_SECRET_ACCESS_KEY = '" + AWKWARD.replace("'", "''") + "'" in lines


def test_env_rejects_an_unknown_format(keys_home):
    result = keys_home.run_in_process("env", "--profile", "k", "--format", "cmd")
    assert result.returncode == 2 and result.stdout == "" and "invalid choice" in result.stderr
