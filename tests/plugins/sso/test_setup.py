"""``gw setup aws --sso SESSION``: a gw profile and an ~/.aws/config entry per account and role."""

from __future__ import annotations

import json
import tomllib

from tests.conftest import AWS_CLI
from tests.core.gw_test_support import assert_clean_failure
from tests.plugins.sso.conftest import session_config, sso_profile

NAMES = ["work.development.AdministratorAccess", "work.development.ReadOnly", "work.production.ReadOnly",
         "work.sandbox.AdministratorAccess", "work.sandbox.PowerUser", "work.sandbox.ViewOnly"]


def test_dry_run_changes_nothing(sso_home):
    config, aws_config = sso_home.config_path.read_bytes(), b"[default]\nregion = eu-west-1\n"
    sso_home.aws_config.write_bytes(aws_config)
    result = sso_home.run_in_process("setup", "aws", "--sso", "work", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert [line.split(";")[0].split()[-1] for line in result.stdout.splitlines()] == NAMES
    assert all(line.startswith("would add gw profile") for line in result.stdout.splitlines())
    assert sso_home.config_path.read_bytes() == config and sso_home.aws_config.read_bytes() == aws_config


def test_setup_writes_every_pair_is_idempotent_and_the_profiles_work(sso_home, sso, moto):
    sso_home.aws_config.write_text("# mine\n[default]\nregion = eu-west-1\n")
    assert sso_home.run_in_process("setup", "aws", "--sso", "work").returncode == 0
    config = tomllib.loads(sso_home.config_path.read_text())
    assert set(NAMES) <= set(config["profiles"])
    assert config["profiles"]["work.sandbox.PowerUser"]["steps"] == [
        {"use": "aws-sso", "session": "work", "account_id": "123456789012", "role_name": "PowerUser"}]
    aws_text = sso_home.aws_config.read_text()
    assert aws_text.startswith("# mine\n[default]\nregion = eu-west-1\n")
    assert all(f"[profile {name}]" in aws_text for name in NAMES)
    before = (sso_home.config_path.read_bytes(), sso_home.aws_config.read_bytes())
    again = sso_home.run_in_process("setup", "aws", "--sso", "work")
    assert again.returncode == 0 and all(line.startswith("unchanged gw profile") for line in again.stdout.splitlines())
    assert (sso_home.config_path.read_bytes(), sso_home.aws_config.read_bytes()) == before
    if AWS_CLI:
        import subprocess

        sso_home.env["AWS_ENDPOINT_URL_STS"] = moto.url
        out = subprocess.run([AWS_CLI, "sts", "get-caller-identity", "--profile", "work.production.ReadOnly"],
                             env=sso_home.env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["Account"] == "222222222222"


def test_setup_never_touches_a_profile_it_did_not_write(sso_home):
    sso_home.write_config(session_config(sso_profile("work.development.ReadOnly", "111111111111", "ReadOnly")))
    sso_home.aws_config.write_text("[profile work.production.ReadOnly]\nregion = eu-west-1\n")
    config, aws_before = sso_home.config_path.read_text(), sso_home.aws_config.read_text()
    result = sso_home.run_in_process("setup", "aws", "--sso", "work")
    assert result.returncode == 0, result.stderr
    assert "gw profile 'work.development.ReadOnly' exists and was not written by gw setup aws --sso" in result.stderr
    assert "AWS profile 'work.production.ReadOnly'" in result.stderr
    assert sso_home.config_path.read_text().startswith(config)
    assert sso_home.aws_config.read_text().startswith(aws_before)
    assert "[profile work.development.ReadOnly]" not in sso_home.aws_config.read_text()
    assert sso_home.config_path.read_text().count("[profiles.\"work.production.ReadOnly\"]") == 0


def test_plain_setup_aws_still_needs_a_profile_and_still_works(sso_home):
    assert_clean_failure(sso_home.run_in_process("setup", "aws"), contains="--profile")
    assert_clean_failure(sso_home.run_in_process("setup", "aws", "--profile", "dev", "--sso", "work"), contains="not both")
    result = sso_home.run_in_process("setup", "aws", "--profile", "dev")
    assert result.returncode == 0 and "credential_process" in result.stdout


def test_the_extension_shows_in_setup_aws_help(sso_home):
    result = sso_home.run_in_process("setup", "aws", "--help")
    assert result.returncode == 0
    assert "--sso SESSION" in result.stdout and "gw setup aws --sso work --dry-run" in result.stdout
    assert "gw setup aws --profile admin" in result.stdout  # the aws plugin's own help stays
