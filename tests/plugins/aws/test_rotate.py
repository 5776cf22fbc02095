"""``gw rotate``: a new IAM access key replaces the vault's, and no interruption loses a working key.

Real gw against moto's IAM and STS; interruptions end the gw process abruptly at each
point of the rotation (``GW_TEST_ROTATE_FAIL_AT``, read only by the rotate code).
"""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest

from tests.conftest import AWS_CLI
from tests.core.gw_test_support import ROLE, assert_clean_failure

KEYS = '{ use = "aws-keys", access_key_id = "vault:p.akid", secret_access_key = "vault:p.secret" }'
ACCOUNT = "123456789012"


@pytest.fixture
def user(moto):
    name = f"rotate-{uuid.uuid4().hex[:8]}"
    akid, secret = moto.create_user(name)
    return name, akid, secret


@pytest.fixture
def home(aws_home, user):
    _, akid, secret = user
    aws_home.vault_set("p.akid", akid)
    aws_home.vault_set("p.secret", secret)
    aws_home.write_config(f"[profiles.p]\nsteps = [{KEYS}]\n")
    return aws_home


def _iam_keys(moto, name: str) -> list[str]:
    return [k["AccessKeyId"] for k in moto.client("iam").list_access_keys(UserName=name)["AccessKeyMetadata"]]


def _vault_pair(home) -> tuple[str, str]:
    values = json.loads(home.run_in_process("env", "--profile", "p", "--format", "json", check=True).stdout)
    return values["AWS_ACCESS_KEY_ID"], values["AWS_SECRET_ACCESS_KEY"]


def assert_working_key(home, moto, name: str, *, aws_cli: bool = False) -> str:
    """The vault's pair is a live key of the user (moto knows that id with that secret), and what
    gw's credential-process hands out signs STS in as that user: through the real AWS CLI when
    ``aws_cli`` (once, in test_rotate_replaces_the_key), else gw in-process and botocore."""
    akid, secret = _vault_pair(home)
    assert akid in _iam_keys(moto, name)
    issued = moto.lookup(akid)
    assert issued is not None and issued.secret_access_key == secret
    home.aws_config.write_text("[profile p]\ncredential_process = gw credential-process --profile p\n")
    if aws_cli:
        who = subprocess.run(check=False, args=[AWS_CLI, "sts", "get-caller-identity", "--profile", "p"],
                             env=home.env, capture_output=True, text=True, timeout=60)
        assert who.returncode == 0, who.stderr
        arn = json.loads(who.stdout)["Arn"]
    else:
        who = home.run_in_process("credential-process", "--profile", "p")
        assert who.returncode == 0, who.stderr
        doc = json.loads(who.stdout)
        arn = moto.client("sts", doc["AccessKeyId"], doc["SecretAccessKey"], doc.get("SessionToken")) \
            .get_caller_identity()["Arn"]
    assert arn == f"arn:aws:iam::{ACCOUNT}:user/{name}"
    return akid


def test_rotate_replaces_the_key(home, moto, user):
    name, old_akid, old_secret = user
    result = home.run_in_process("rotate", "--profile", "p")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and old_secret not in result.stdout
    new_akid = assert_working_key(home, moto, name, aws_cli=True)
    assert new_akid != old_akid and _iam_keys(moto, name) == [new_akid]
    assert moto.lookup(old_akid) is None  # deleted upstream
    assert "p.gw-rotation" not in home.run_in_process("vault", "list").stdout
    assert new_akid in result.stdout and "the old key is deleted" in result.stdout


def test_rotate_goes_through_the_mfa_session(home, moto, user, askpass):
    script, log = askpass
    home.extra_settings["askpass"] = script
    home.write_config(f'[profiles.p]\nsteps = [\n  {KEYS},\n'
                      f'  {{ use = "session-token", mfa_serial = "arn:aws:iam::{ACCOUNT}:mfa/dev", mfa_code = "prompt" }},\n'
                      f'  {{ use = "assume-role", role_arn = "{ROLE}" }},\n]\n')
    before = moto.count("GetSessionToken")
    result = home.run_in_process("rotate", "--profile", "p")
    assert result.returncode == 0, result.stderr
    assert moto.count("GetSessionToken") == before + 1
    assert len(log.read_text().splitlines()) == 1  # one MFA prompt
    keys = _iam_keys(moto, user[0])
    assert len(keys) == 1 and keys[0] != user[1] and moto.lookup(keys[0]) is not None


@pytest.mark.parametrize("point", ["created", "recorded", "verified", "stored", "deleted"])
def test_every_interruption_leaves_a_working_key_and_a_rerun_finishes(home, moto, user, point):
    name, old_akid, _ = user
    crashed = home.run("rotate", "--profile", "p", env={"GW_TEST_ROTATE_FAIL_AT": point})  # a process ended abruptly
    assert crashed.returncode == 99, crashed.stderr
    assert_working_key(home, moto, name)  # right after the crash
    if point == "created":
        # the new key was never recorded: gw cannot know its secret and says what to do
        again = home.run_in_process("rotate", "--profile", "p")
        extra = next(k for k in _iam_keys(moto, name) if k != old_akid)
        assert_clean_failure(again, contains=f"already has another access key ({extra})")
        assert f"aws iam delete-access-key --user-name {name} --access-key-id {extra}" in again.stderr
        moto.client("iam").delete_access_key(UserName=name, AccessKeyId=extra)  # as the message says
    finished = home.run_in_process("rotate", "--profile", "p")
    assert finished.returncode == 0, finished.stderr
    new_akid = assert_working_key(home, moto, name)
    assert new_akid != old_akid and _iam_keys(moto, name) == [new_akid]
    assert "p.gw-rotation" not in home.run_in_process("vault", "list").stdout


def test_only_vault_held_user_keys_are_rotated(aws_home, user):
    aws_home.env.update(GWT_AKID=user[1], GWT_SECRET=user[2])
    aws_home.write_config('[profiles.p]\nsteps = [{ use = "aws-keys", access_key_id = "env:GWT_AKID", '
                          'secret_access_key = "env:GWT_SECRET" }]\n')
    result = aws_home.run_in_process("rotate", "--profile", "p")
    assert_clean_failure(result, contains="both keys in gw's vault")
    assert user[2] not in result.stderr
