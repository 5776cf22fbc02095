"""gw.commands.credentials: ``gw credential-process``, ``gw token``, ``gw env`` on the ordinary path (in-process)."""

from __future__ import annotations

import json

from tests.core.commands_helpers import KEYS_ENV, parse


def test_credential_process_prints_the_json_botocore_reads(keys_home):
    result = keys_home.run_in_process("credential-process", "--profile", "keys")
    assert (result.returncode, result.stderr) == (0, "")
    assert json.loads(result.stdout) == {"Version": 1, "AccessKeyId": KEYS_ENV["GWTEST_AK"],
                                         "SecretAccessKey": KEYS_ENV["GWTEST_SK"]}
    by_env = keys_home.run_in_process("credential-process", env={"GW_PROFILE": "keys"})
    assert by_env.stdout == result.stdout


def test_credential_process_without_a_profile_is_a_usage_error(keys_home):
    result = keys_home.run_in_process("credential-process")
    assert result.returncode == 2 and result.stdout == ""
    assert "the following arguments are required: --profile (or set GW_PROFILE)" in result.stderr


def test_token_refuses_a_profile_without_a_token(keys_home):
    result = keys_home.run_in_process("token", "--profile", "keys", "--format", "header")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "gw: profile 'keys' yields aws-credentials, not a bearer or OpenID token\n"


def test_env_exports_the_keys_and_the_profiles_region(keys_home):
    doc = json.loads(keys_home.run_in_process("env", "--profile", "keys", "--format", "json").stdout)
    assert doc == {"AWS_ACCESS_KEY_ID": KEYS_ENV["GWTEST_AK"], "AWS_SECRET_ACCESS_KEY": KEYS_ENV["GWTEST_SK"],
                   "AWS_REGION": "ap-northeast-1", "AWS_DEFAULT_REGION": "ap-northeast-1"}
    sh = keys_home.run_in_process("env", "--profile", "keys", "--region", "eu-west-1").stdout
    assert "export AWS_REGION=eu-west-1\n" in sh and f"export AWS_ACCESS_KEY_ID={KEYS_ENV['GWTEST_AK']}\n" in sh


def test_region_precedence(keys_home, monkeypatch):
    from gw.commands.credentials import region_values

    ns, app = parse(keys_home, monkeypatch, "env", "--profile", "other")
    keys = {"AWS_ACCESS_KEY_ID": "A", "AWS_REGION": "us-west-2"}
    assert region_values(ns, app, dict(keys), {})["AWS_REGION"] == "us-west-2"  # only the step's: used
    assert "AWS_REGION" not in region_values(ns, app, dict(keys), {"AWS_DEFAULT_REGION": "sa-east-1"})  # caller's kept
    ns.profile = "keys"
    assert region_values(ns, app, dict(keys), {"AWS_REGION": "sa-east-1"})["AWS_REGION"] == "ap-northeast-1"
    ns.region = "eu-west-1"
    assert region_values(ns, app, dict(keys), {})["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert region_values(ns, app, {"SORACOM_API_KEY": "k"}, {}) == {"SORACOM_API_KEY": "k"}  # not AWS: untouched
