"""Issue 8, ``gw setup aws`` on hostile or unusual ``~/.aws/config`` files.

Each test runs the real ``gw setup aws`` and then reads the file with botocore (the
parser every AWS SDK for Python uses) and the real AWS CLI where it matters.
"""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from tests.core.gw_test_support import assert_clean_failure, keys_from_env, role_profile


@pytest.fixture
def setup_home(aws_home, iam_user):
    keys_from_env(aws_home, iam_user)
    aws_home.write_config(role_profile("p"))
    return aws_home


def _setup(home, *extra: str):
    return home.invoke("setup", "aws", "--profile", "p", *extra)


def _botocore_profile(home, name: str = "p") -> dict:
    import botocore.session

    session = botocore.session.Session(session_vars={"config_file": (None, None, str(home.aws_config), None)})
    return session.full_config["profiles"][name]


def test_a_key_spelled_in_another_case_is_replaced_not_duplicated(setup_home):
    home = setup_home
    home.aws_config.write_text("[profile p]\nCredential_Process = /old/tool --x\nREGION = us-west-2\n")
    result = _setup(home, "--region", "eu-west-1")
    assert result.returncode == 0, result.stderr
    text = home.aws_config.read_text()
    assert text.lower().count("credential_process") == 1 and text.lower().count("region") == 1
    profile = _botocore_profile(home)  # botocore parses it (a duplicate key would make it refuse)
    assert "credential-process --profile p" in profile["credential_process"]
    assert profile["region"] == "eu-west-1"


def test_continuation_lines_of_the_old_value_go_with_it(setup_home):
    home = setup_home
    home.aws_config.write_text(
        "[profile p]\ncredential_process = /old/tool\n    --flag one\n\n    --flag two\nregion = us-west-2\n"
        "\n[profile q]\nregion = ap-northeast-1\n")
    assert _setup(home).returncode == 0
    profile = _botocore_profile(home)
    assert "--flag" not in profile["credential_process"] and profile["credential_process"].endswith("--profile p")
    assert profile["region"] == "us-west-2"
    assert _botocore_profile(home, "q") == {"region": "ap-northeast-1"}


def test_crlf_endings_and_everything_else_stay_byte_for_byte(setup_home):
    home = setup_home
    before = (b"# my config\r\n[default]\r\nregion = us-east-1\r\n\r\n[profile p]\r\nregion = us-west-2\r\n"
              b"credential_process = /old\r\n\r\n[profile z]\r\noutput = json ; keep\r\n\xe2\x80\xa8 odd line\r\n")
    home.aws_config.write_bytes(before)
    assert _setup(home).returncode == 0
    after = home.aws_config.read_bytes()
    old_line = b"credential_process = /old\r\n"
    new_start = after.index(b"credential_process = ")
    new_line = after[new_start: after.index(b"\r\n", new_start) + 2]
    assert after == before.replace(old_line, new_line)
    assert b"\n" not in after.replace(b"\r\n", b"")  # only CRLF endings
    assert (home.aws_config.parent / "config.gw-backup").read_bytes() == before


def test_a_new_profile_in_a_crlf_file_uses_crlf(setup_home):
    home = setup_home
    home.aws_config.write_bytes(b"[default]\r\nregion = us-east-1")
    assert _setup(home).returncode == 0
    after = home.aws_config.read_bytes()
    assert after.startswith(b"[default]\r\nregion = us-east-1\r\n\r\n[profile p]\r\ncredential_process = ")
    assert b"\n" not in after.replace(b"\r\n", b"")


def test_a_symlinked_config_is_written_through_the_link(setup_home, tmp_path):
    home = setup_home
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    real = dotfiles / "aws-config"
    real.write_text("[profile other]\nregion = us-east-1\n")
    real.chmod(0o640)
    home.aws_config.symlink_to(real)
    assert _setup(home).returncode == 0
    assert home.aws_config.is_symlink() and os.readlink(home.aws_config) == str(real)
    assert "credential-process --profile p" in _botocore_profile(home)["credential_process"]
    assert stat.S_IMODE(real.stat().st_mode) == 0o640  # its mode is kept


@pytest.mark.parametrize("region", ["eu-west-1\n[profile evil]\ncredential_process = /bin/evil", "eu west 1",
                                    "", "EU-WEST-1", "eu-west-1\r"])
def test_a_region_that_is_not_a_region_name_is_refused(setup_home, region):
    home = setup_home
    home.aws_config.write_text("[profile other]\nregion = us-east-1\n")
    before = home.aws_config.read_bytes()
    result = _setup(home, "--region", region) if region else _setup(home, f"--region={region}")
    if region == "":
        assert result.returncode == 0  # an empty --region means no region line, as before
        return
    assert_clean_failure(result, contains="region")
    assert home.aws_config.read_bytes() == before


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_a_directory_or_fifo_at_the_path_is_one_clear_line(setup_home, kind):
    home = setup_home
    home.aws_config.mkdir() if kind == "directory" else os.mkfifo(home.aws_config, 0o600)
    result = home.invoke("setup", "aws", "--profile", "p", timeout=30)
    line = assert_clean_failure(result)
    assert str(home.aws_config) in line and "internal error" not in line


def test_the_aws_cli_uses_the_written_profile(setup_home, moto):
    from tests.conftest import AWS_CLI

    if AWS_CLI is None:
        pytest.skip("the AWS CLI is not installed")
    home = setup_home
    home.aws_config.write_bytes(b"[profile p]\r\nCredential_Process = /old\r\n    --cont\r\n")
    assert _setup(home, "--region", "us-east-1").returncode == 0
    result = subprocess.run([AWS_CLI, "sts", "get-caller-identity", "--profile", "p", "--endpoint-url", moto.url], check=False,
                            env=home.env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert ":assumed-role/Admin/" in result.stdout
