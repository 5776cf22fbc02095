"""A skewed clock against AWS STS (issue 18). moto's STS stamps its answers (and their Date
header) with the real clock; gw alone runs in the future under libfaketime. gw must say the
clock is off and by how much, and never hand the AWS CLI credentials already expired."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.core.gw_test_support import GW, ROLE
from tests.core.test_shared_steps import _faketime

AWS_CLI = shutil.which("aws", path=str(Path(sys.executable).parent))
KEYS = '{ use = "aws-keys", access_key_id = "env:GWT_AKID", secret_access_key = "env:GWT_SECRET" }'


def _home(aws_home, iam_user, offset: str):
    aws_home.env["GWT_AKID"], aws_home.env["GWT_SECRET"] = iam_user
    aws_home.write_config(f'[profiles.r]\nsteps = [{KEYS}, {{ use = "assume-role", role_arn = "{ROLE}" }}]\n')
    aws_home.aws_config.write_text(
        f"[profile r]\nregion = us-east-1\ncredential_process = {_faketime()} -f {offset} {GW} credential-process --profile r\n")
    return aws_home


def _aws(home) -> subprocess.CompletedProcess:
    return subprocess.run([AWS_CLI, "sts", "get-caller-identity", "--profile", "r"], env=home.env, capture_output=True,
                          text=True, timeout=120, start_new_session=True, stdin=subprocess.DEVNULL)


def test_two_hours_fast_is_named_and_no_expired_credentials_are_emitted(aws_home, iam_user):
    home = _home(aws_home, iam_user, "+2h")
    direct = subprocess.run([_faketime(), "-f", "+2h", GW, "credential-process", "--profile", "r"], env=home.env,
                            capture_output=True, text=True, timeout=120, start_new_session=True, stdin=subprocess.DEVNULL)
    assert direct.returncode == 1 and direct.stdout == ""
    line, = direct.stderr.splitlines()
    assert "already past by this computer's clock" in line
    assert "this computer's clock is 2 h 0 min ahead of AWS STS's (by its Date header)" in line
    assert not home.cache_file("r").exists()
    cli = _aws(home)
    assert cli.returncode != 0
    assert "2 h 0 min ahead of AWS STS's" in cli.stderr and "still expired" not in cli.stderr


def test_a_few_minutes_off_still_works_and_says_so(aws_home, iam_user):
    home = _home(aws_home, iam_user, "+10m")
    cli = _aws(home)
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["Arn"].endswith(":assumed-role/Admin/gw-r")
    warned = subprocess.run([_faketime(), "-f", "+10m", GW, "credential-process", "--profile", "r", "--refresh"],
                            env=home.env, capture_output=True, text=True, timeout=120, start_new_session=True,
                            stdin=subprocess.DEVNULL)
    assert warned.returncode == 0 and json.loads(warned.stdout)["AccessKeyId"]
    assert "this computer's clock is 10 min ahead of AWS STS's" in warned.stderr
