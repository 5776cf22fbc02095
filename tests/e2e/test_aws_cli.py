"""The real AWS CLI and boto3 read ~/.aws/config with gw as credential_process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.core.core_helpers import ROLE, admin_profile, parse_credential_process, store_user

AWS_CLI = shutil.which("aws", path=str(Path(sys.executable).parent))


def setup_admin(home, iam_user, askpass, moto):
    home.extra_settings["askpass"] = askpass[0]
    home.write_config(admin_profile())
    store_user(home, iam_user)
    result = home.run_in_process("setup", "aws", "--profile", "admin", "--region", "us-east-1")
    assert result.returncode == 0, result.stderr
    return home


def test_aws_cli_get_caller_identity_through_credential_process(aws_home, iam_user, askpass, moto):
    home = setup_admin(aws_home, iam_user, askpass, moto)
    config = home.aws_config.read_text()
    assert "[profile admin]" in config and "credential_process = /" in config and "credential-process --profile admin" in config
    before = moto.count("AssumeRole")
    result = subprocess.run(
        [AWS_CLI, "sts", "get-caller-identity", "--profile", "admin", "--output", "json"],
        env=home.env, capture_output=True, text=True, timeout=120, start_new_session=True,
    )
    assert result.returncode == 0, result.stderr
    identity = json.loads(result.stdout)
    assert identity["Arn"] == "arn:aws:sts::123456789012:assumed-role/Admin/gw-admin"
    assert moto.count("AssumeRole") == before + 1
    # A second CLI run is served from gw's cache: no new AssumeRole, no new prompt.
    result = subprocess.run(
        [AWS_CLI, "sts", "get-caller-identity", "--profile", "admin"],
        env=home.env, capture_output=True, text=True, timeout=120, start_new_session=True,
    )
    assert result.returncode == 0, result.stderr
    assert moto.count("AssumeRole") == before + 1
    assert len(askpass[1].read_text().splitlines()) == 1


def test_boto3_through_credential_process(aws_home, iam_user, askpass, moto):
    home = setup_admin(aws_home, iam_user, askpass, moto)
    script = (
        "import boto3, json; s = boto3.session.Session(profile_name='admin');"
        "print(json.dumps(s.client('sts').get_caller_identity()['Arn']))"
    )
    import sys

    result = subprocess.run([sys.executable, "-c", script], env=home.env, capture_output=True, text=True,
                            timeout=120, start_new_session=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == "arn:aws:sts::123456789012:assumed-role/Admin/gw-admin"


def test_credential_process_output_is_only_the_json(aws_home, iam_user, askpass, moto):
    home = setup_admin(aws_home, iam_user, askpass, moto)
    first = home.run_in_process("credential-process", "--profile", "admin")
    assert first.returncode == 0, first.stderr
    doc = parse_credential_process(first.stdout)
    issued = moto.lookup(doc["AccessKeyId"])
    assert issued is not None and issued.arn.endswith(":assumed-role/Admin/gw-admin")
    second = home.run_in_process("credential-process", "--profile", "admin")
    assert second.stdout == first.stdout and second.stderr == ""


def test_setup_aws_keeps_the_rest_of_the_file(aws_home, iam_user, askpass, moto):
    home = aws_home
    home.write_config(admin_profile())
    original = "# my settings\n[default]\nregion = eu-west-1\n\n[profile admin]\n# keep me\nregion = us-west-2\noutput = json\n\n[profile other]\nregion = ap-northeast-1\n"
    home.aws_config.write_text(original)
    result = home.run_in_process("setup", "aws", "--profile", "admin")
    assert result.returncode == 0, result.stderr
    text = home.aws_config.read_text()
    assert text.startswith("# my settings\n[default]\nregion = eu-west-1\n\n[profile admin]\n# keep me\nregion = us-west-2\noutput = json\ncredential_process = ")
    assert text.endswith("\n\n[profile other]\nregion = ap-northeast-1\n")
    assert (home.aws_config.parent / "config.gw-backup").read_text() == original
    again = home.run_in_process("setup", "aws", "--profile", "admin")
    assert again.returncode == 0 and "updated" in again.stdout
    assert home.aws_config.read_text() == text


def test_setup_aws_refuses_a_profile_that_is_not_aws(aws_home):
    aws_home.write_config('[profiles.x]\nsteps = [{ use = "assume-role", role_arn = "' + ROLE + '" }]\n')
    result = aws_home.run_in_process("setup", "aws", "--profile", "x")
    assert result.returncode == 2 and "cannot come first" in result.stderr
    assert not aws_home.aws_config.exists()
