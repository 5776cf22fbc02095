"""Secret references everywhere, and one-time codes that are never reused for an account.

- Every string option of every step accepts a reference (``role_arn = "env:ROLE"``): it is
  resolved before the step runs; a non-secret value may appear in messages.
- An MFA code is keyed on the account it is for (``mfa_serial``), not on where it came from:
  two profiles with different seed references for the same MFA device never send the same code.
"""

from __future__ import annotations

import itertools
import json
import sys

import boto3
import pyotp

from tests.core.gw_test_support import ROLE, assert_clean_failure, keys_from_env

SERIAL = "arn:aws:iam::123456789012:mfa/shared-device"
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
OTHER_SEED = "KRUGKIDROVUWG2ZAMJZG653OEBTG66BA"


def _caller_arn(moto, env_json: str) -> str:
    creds = json.loads(env_json)
    sts = boto3.client("sts", endpoint_url=moto.url, region_name="us-east-1",
                       aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
                       aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
                       aws_session_token=creds["AWS_SESSION_TOKEN"])
    return sts.get_caller_identity()["Arn"]


def test_plain_string_options_take_references(aws_home, iam_user, moto):
    keys_from_env(aws_home, iam_user)
    aws_home.env["GWT_ROLE"] = ROLE
    aws_home.write_config("""
[profiles.ref]
steps = [
  { use = "aws-keys", access_key_id = "env:GWT_AKID", secret_access_key = "env:GWT_SECRET" },
  { use = "assume-role", role_arn = "env:GWT_ROLE", session_name = "vault:session-name" },
]
""")
    aws_home.vault_set("session-name", "from-the-vault")
    result = aws_home.run_in_process("env", "--profile", "ref", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert _caller_arn(moto, result.stdout).endswith(":assumed-role/Admin/from-the-vault")


def test_a_broken_reference_in_a_plain_option_is_one_clear_line(aws_home, iam_user):
    keys_from_env(aws_home, iam_user)
    aws_home.write_config("""
[profiles.ref]
steps = [
  { use = "aws-keys", access_key_id = "env:GWT_AKID", secret_access_key = "env:GWT_SECRET" },
  { use = "assume-role", role_arn = "env:GWT_UNSET_ROLE" },
]
""")
    assert_clean_failure(aws_home.run_in_process("env", "--profile", "ref"), contains="environment variable GWT_UNSET_ROLE is not set")
    aws_home.write_config("""
[profiles.ref]
steps = [
  { use = "aws-keys", access_key_id = "env:GWT_AKID", secret_access_key = "env:GWT_SECRET" },
  { use = "assume-role", role_arn = "vault:" },
]
""")
    checked = aws_home.run_in_process("check")
    assert checked.returncode != 0 and "role_arn: vault: needs a name after it" in checked.stderr


def test_one_time_codes_are_keyed_on_the_account_not_the_source(aws_home, iam_user, moto):
    keys_from_env(aws_home, iam_user)
    aws_home.env["GWT_SEED"] = OTHER_SEED  # another source (even another seed) for the same device
    aws_home.vault_set("seed", SEED)
    aws_home.write_config(f"""
[profiles.one]
steps = [
  {{ use = "aws-keys", access_key_id = "env:GWT_AKID", secret_access_key = "env:GWT_SECRET" }},
  {{ use = "assume-role", role_arn = "{ROLE}", mfa_serial = "{SERIAL}", mfa_code = {{ totp = "vault:seed", period = 2 }} }},
]
[profiles.two]
steps = [
  {{ use = "aws-keys", access_key_id = "env:GWT_AKID", secret_access_key = "env:GWT_SECRET" }},
  {{ use = "session-token", mfa_serial = "{SERIAL}", mfa_code = {{ totp = "env:GWT_SEED", period = 2 }} }},
]
""")
    moto.mfa_codes.clear()
    for profile in ("one", "two", "one"):
        aws_home.run_in_process("cache", "clear", check=True)
        result = aws_home.run_in_process("env", "--profile", profile, "--format", "json")
        assert result.returncode == 0, result.stderr
    sent = [(code, at) for serial, code, at in moto.mfa_codes if serial == SERIAL]
    assert len(sent) == 3
    steps = []
    for (code, at), seed in zip(sent, (SEED, OTHER_SEED, SEED), strict=True):
        totp = pyotp.TOTP(seed, interval=2)
        steps.append(next(k for k in range(int(at // 2) - 5, int(at // 2) + 2) if totp.at(k * 2) == code))
    assert len(set(steps)) == 3, steps  # one time step per code for the device, whatever the source


def test_a_code_from_a_command_is_never_reused_either(aws_home, iam_user, moto, tmp_path):
    """``cmd:ykman oath accounts code ...`` is a source like any other: a code a vault seed
    already gave for the device is not handed out again from the command (gw waits for the
    next step, then runs it). The stand-in prints the device's current code, as ykman does."""
    keys_from_env(aws_home, iam_user)
    aws_home.vault_set("seed", SEED)
    device = tmp_path / "device-code"
    device.write_text(f"#!{sys.executable}\nimport pyotp\nprint(pyotp.TOTP({SEED!r}, interval=2).now())\n")
    device.chmod(0o700)
    aws_home.write_config(f"""
[profiles.seed]
steps = [
  {{ use = "aws-keys", access_key_id = "env:GWT_AKID", secret_access_key = "env:GWT_SECRET" }},
  {{ use = "session-token", mfa_serial = "{SERIAL}", mfa_code = {{ totp = "vault:seed", period = 2 }} }},
]
[profiles.device]
steps = [
  {{ use = "aws-keys", access_key_id = "env:GWT_AKID", secret_access_key = "env:GWT_SECRET" }},
  {{ use = "session-token", mfa_serial = "{SERIAL}", mfa_code = {{ cmd = "{device}", period = 2 }} }},
]
""")
    moto.mfa_codes.clear()
    for profile in ("seed", "device", "device", "seed"):
        aws_home.run_in_process("cache", "clear", check=True)
        result = aws_home.run_in_process("env", "--profile", profile, "--format", "json")
        assert result.returncode == 0, result.stderr
    codes = [code for serial, code, _ in moto.mfa_codes if serial == SERIAL]
    assert len(codes) == 4
    assert all(a != b for a, b in itertools.pairwise(codes)), codes  # consecutive codes never repeat
