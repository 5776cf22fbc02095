"""``gw import aws``: plaintext keys of a ~/.aws profile move into gw's vault.

Real gw, real ~/.aws files, the real AWS CLI against moto, a pty for the question.
"""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
import uuid

import pytest

from gw.testing import gw_executable
from tests.conftest import AWS_CLI
from tests.core.gw_test_support import assert_clean_failure
from tests.core.test_tty_notices import Terminal

GW_CONFIG = """# my gw config: this comment must survive
[profiles.existing]  # and this one
steps = [{ use = "aws-keys", access_key_id = "env:X", secret_access_key = "env:Y" }]
"""


@pytest.fixture
def user_name() -> str:
    return f"import-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def user(moto, user_name):
    """(akid, secret) of a fresh IAM user in moto."""
    return moto.create_user(user_name)


@pytest.fixture
def home(aws_home, user):
    akid, secret = user
    aws_home.write_config(GW_CONFIG, settings=False)
    credentials = aws_home.home / ".aws" / "credentials"
    credentials.write_text(
        "# credentials; keep this comment\n"
        "[other]\naws_access_key_id = AKIAOTHEROTHEROTHER1\naws_secret_access_key = other-secret-stays-put\n\n"
        f"[work]\n# the work keys\naws_access_key_id = {akid}\naws_secret_access_key = {secret}\n"
        "region = eu-west-1\n"
    )
    credentials.chmod(0o600)
    aws_home.aws_config.write_text("# aws config comment\n[profile work]\nregion = eu-west-1\noutput = json\n")
    return aws_home


def _files(home) -> dict[str, str]:
    aws = home.home / ".aws"
    return {p.name: p.read_text() for p in aws.iterdir()}


def _who(home, profile: str = "work") -> str:
    result = subprocess.run(check=False, args=[AWS_CLI, "sts", "get-caller-identity", "--profile", profile], env=home.env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["Arn"]


def test_import_moves_the_keys_and_removes_the_plaintext(home, user, user_name, moto):
    akid, secret = user
    result = home.run_in_process("import", "aws", "--aws-profile", "work", "--remove-plaintext")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and secret not in result.stdout
    # the vault holds them, the gw profile turns them into a session token (never the AKIA keys)
    values = json.loads(home.run_in_process("env", "--profile", "work", "--format", "json", check=True).stdout)
    assert values["AWS_ACCESS_KEY_ID"] != akid and values["AWS_SESSION_TOKEN"]
    assert moto.lookup(values["AWS_ACCESS_KEY_ID"]).kind == "session-token"
    assert "work.aws_secret_access_key" in home.run_in_process("vault", "list").stdout
    # the gw config: every original byte kept, the profile appended, a backup beside it
    config = home.config_path.read_text()
    assert config.startswith(GW_CONFIG)
    profile = tomllib.loads(config)["profiles"]["work"]
    assert profile["region"] == "eu-west-1" and [s["use"] for s in profile["steps"]] == ["aws-keys", "session-token"]
    assert (home.config_path.parent / "config.toml.gw-backup").read_text() == GW_CONFIG
    assert home.run_in_process("check").returncode == 0
    # ~/.aws: credential_process added, comments kept; the plaintext keys are gone everywhere
    files = _files(home)
    assert files["config"].startswith("# aws config comment\n[profile work]\nregion = eu-west-1\noutput = json\n")
    assert "credential_process = " in files["config"] and "credential-process --profile work" in files["config"]
    assert "# credentials; keep this comment" in files["credentials"] and "# the work keys" in files["credentials"]
    assert "other-secret-stays-put" in files["credentials"] and "region = eu-west-1" in files["credentials"]
    assert [name for name, text in files.items() if secret in text or akid in text] == []
    assert (home.home / ".aws" / "credentials").stat().st_mode & 0o777 == 0o600
    # the real AWS CLI now gets a session token made from the keys, through gw
    _session_through_cli(home, moto)


def _session_through_cli(home, moto) -> None:
    """The real AWS CLI works through gw, with a session token GetSessionToken made from the user's keys."""
    _who(home)
    key = json.loads(home.run_in_process("credential-process", "--profile", "work", check=True).stdout)["AccessKeyId"]
    issued = moto.lookup(key)
    assert (issued.kind, issued.source_kind) == ("session-token", "long-term")


def test_without_a_terminal_or_flag_the_plaintext_stays(home, user):
    result = home.run_in_process("import", "aws", "--aws-profile", "work", "--profile", "job")
    assert result.returncode == 0, result.stderr
    assert "plaintext keys of [work] are still in" in result.stderr and user[1] not in result.stderr
    assert user[1] in _files(home)["credentials"]  # never removed silently
    assert "credential-process --profile job" in _files(home)["config"]


@pytest.mark.parametrize("answer, removed", [("y", True), ("n", False)])
def test_the_question_is_asked_on_the_terminal(home, user, answer, removed):
    terminal = Terminal()
    try:
        env = {k: v for k, v in home.env.items() if k != "GW_QUIET"}
        proc = terminal.popen([gw_executable(), "import", "aws", "--aws-profile", "work"], env)
        terminal.wait_for("Remove the plaintext keys of [work]")
        os.write(terminal.master, f"{answer}\n".encode())
        out, err = proc.communicate(timeout=60)
    finally:
        terminal.close()
    assert proc.returncode == 0, err
    assert (user[1] not in _files(home)["credentials"]) is removed
    assert ("removed the plaintext keys" in out) is removed


def test_rerunning_after_a_partial_import_finishes_it(home, user):
    home.vault_set("work.aws_access_key_id", user[0])  # as if interrupted after the vault write
    home.vault_set("work.aws_secret_access_key", user[1])
    first = home.run_in_process("import", "aws", "--aws-profile", "work", "--keep-plaintext")
    assert first.returncode == 0, first.stderr
    again = home.run_in_process("import", "aws", "--aws-profile", "work", "--remove-plaintext")  # the profile is already there
    assert again.returncode == 0, again.stderr
    assert home.config_path.read_text().count("[profiles.work]") == 1
    assert user[1] not in _files(home)["credentials"]


def test_refusals_are_one_line_and_keep_secrets_out(home, user):
    missing = home.run_in_process("import", "aws", "--aws-profile", "nope")
    assert_clean_failure(missing, contains="no [nope] with aws_access_key_id and aws_secret_access_key")
    clash = home.run_in_process("import", "aws", "--aws-profile", "work", "--profile", "existing")
    assert_clean_failure(clash, contains="gw profile 'existing' already exists")
    home.vault_set("other.aws_access_key_id", "AKIADIFFERENTDIFFER1")
    different = home.run_in_process("import", "aws", "--aws-profile", "other")
    assert_clean_failure(different, contains="the vault already holds a different 'other.aws_access_key_id'")
    credentials = home.home / ".aws" / "credentials"
    credentials.write_text(credentials.read_text() + "\n[temp]\naws_access_key_id = ASIATEMP\n"
                           "aws_secret_access_key = temp-secret-value\naws_session_token = tok-tok-tok\n")
    temporary = home.run_in_process("import", "aws", "--aws-profile", "temp")
    assert_clean_failure(temporary, contains="holds temporary keys")
    for result in (missing, clash, different, temporary):
        assert user[1] not in result.stderr and "temp-secret-value" not in result.stderr
    assert home.config_path.read_text() == GW_CONFIG  # nothing half-written


def test_an_aws_config_botocore_reads_otherwise_is_refused_before_anything_moves(home, user):
    """Issue 15.7: ``[profile<TAB>work]`` is profile work to botocore too; gw refuses before the vault or configs
    change, with one line (awsconfig.load_checked, shared with gw setup aws)."""
    config = "[profile work]\nregion = eu-west-1\n\n[profile\twork]\noutput = json\n"
    home.aws_config.write_text(config)
    files = _files(home)
    state = sorted(str(p) for p in home.state.rglob("*")) if home.state.exists() else []
    result = home.run_in_process("import", "aws", "--aws-profile", "work", "--remove-plaintext")
    assert_clean_failure(result, contains="botocore also reads profile 'work' from section [profile\\twork]")
    assert _files(home) == files and home.config_path.read_text() == GW_CONFIG
    assert (sorted(str(p) for p in home.state.rglob("*")) if home.state.exists() else []) == state  # no vault


def test_remove_plaintext_takes_continuation_lines_with_the_key(home, user):
    """A key's value continued on an indented line (botocore reads both) goes with it."""
    import botocore.configloader

    credentials = home.home / ".aws" / "credentials"
    credentials.write_text(credentials.read_text() + "[cont]\naws_access_key_id = AKIACONTCONTCONT0001\naws_secret_access_key = part-one\n"
                           "# a comment inside the value\n  part-two-of-the-secret\noutput = json\n")
    result = home.run_in_process("import", "aws", "--aws-profile", "cont", "--remove-plaintext")
    assert result.returncode == 0, result.stderr
    text = credentials.read_text()
    assert "part-two-of-the-secret" not in text and "part-one" not in text
    assert botocore.configloader.raw_config_parse(str(credentials))["cont"] == {"output": "json"}


def test_no_session_keeps_the_long_term_keys(home, user):
    assert home.run_in_process("import", "aws", "--aws-profile", "work", "--no-session", "--keep-plaintext").returncode == 0
    values = json.loads(home.run_in_process("env", "--profile", "work", "--format", "json", check=True).stdout)
    assert (values["AWS_ACCESS_KEY_ID"], values["AWS_SECRET_ACCESS_KEY"]) == user


def test_the_imported_profile_serves_gw_exec_server_and_keeps_mfa(home, user, user_name, moto):
    home.aws_config.write_text("[profile work]\nregion = eu-west-1\nmfa_serial = arn:aws:iam::123456789012:mfa/me\n")
    assert home.run_in_process("import", "aws", "--aws-profile", "work", "--keep-plaintext").returncode == 0
    steps = tomllib.loads(home.config_path.read_text())["profiles"]["work"]["steps"]
    assert steps[1] == {"use": "session-token", "mfa_serial": "arn:aws:iam::123456789012:mfa/me", "mfa_code": "prompt"}
    home.config_path.write_text(home.config_path.read_text().replace(', mfa_serial = "arn:aws:iam::123456789012:mfa/me"'
                                                                     ', mfa_code = "prompt"', ""))
    # gw exec --server refused long-term keys; the imported profile's session works (the real AWS CLI reads it)
    done = home.run("exec", "--server", "--profile", "work", "--", AWS_CLI, "sts", "get-caller-identity")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["Account"] == "123456789012"
    _session_through_cli(home, moto)


def test_all_imports_every_profile_with_keys(home, user, user_name, moto):
    credentials = home.home / ".aws" / "credentials"
    credentials.write_text(credentials.read_text() + "\n[temp]\naws_access_key_id = ASIATEMPTEMPTEMP0001\n"
                           "aws_secret_access_key = t\naws_session_token = tok\n")
    result = home.run_in_process("import", "aws", "--all", "--keep-plaintext")
    assert result.returncode == 0, result.stderr
    assert "imported 2 of 2 profile(s)" in result.stdout
    profiles = tomllib.loads(home.config_path.read_text())["profiles"]
    assert {"work", "other"} <= set(profiles) and "temp" not in profiles
    assert "other.aws_secret_access_key" in home.run_in_process("vault", "list").stdout
    cp = json.loads(home.run_in_process("credential-process", "--profile", "work", check=True).stdout)
    assert moto.lookup(cp["AccessKeyId"]).kind == "session-token"
    assert "credential-process --profile other" in _files(home)["config"]
    _session_through_cli(home, moto)
    assert_clean_failure(home.run_in_process("import", "aws", "--all", "--aws-profile", "work"), contains="--all")
