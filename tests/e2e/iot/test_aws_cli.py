"""The real AWS CLI reads ~/.aws/config with gw as credential_process for an iot-certificate
profile; moto checks the credentials the IoT credentials provider emulator minted."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import AWS_CLI
from tests.plugins.iot.conftest import THING, iot_profile


def test_aws_cli_get_caller_identity(aws_home, iot, device, moto):
    if AWS_CLI is None:
        pytest.fail("the AWS CLI is not installed (it comes with the test extras)")
    aws_home.write_config(iot_profile("device", iot.endpoint, device, thing_name=THING))
    setup = aws_home.run("setup", "aws", "--profile", "device", "--region", "us-east-1")
    assert setup.returncode == 0, setup.stderr
    assert "credential-process --profile device" in aws_home.aws_config.read_text()
    for _ in range(2):  # the second run is served by gw's cache
        result = subprocess.run([AWS_CLI, "sts", "get-caller-identity", "--profile", "device", "--output", "json"],
                                env=aws_home.env, capture_output=True, text=True, timeout=120,
                                start_new_session=True, check=False)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["Arn"] == f"arn:aws:sts::{moto.account_id}:assumed-role/IotDevice/{THING}"
    assert iot.calls["credentials"] == 1


def test_endpoint_looked_up_with_describe_endpoint(aws_home, iam_user, monkeypatch, step_context):
    """DescribeEndpoint(iot:CredentialProvider) through boto3 with a named AWS profile (moto),
    remembered in the step's private state."""
    from gw_plugins.iot import discover_endpoint

    akid, secret = iam_user
    aws_home.aws_config.write_text("[profile lookup]\nregion = us-east-1\n")
    (aws_home.home / ".aws" / "credentials").write_text(
        f"[lookup]\naws_access_key_id = {akid}\naws_secret_access_key = {secret}\n")
    for key, value in aws_home.env.items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)

    ctx = step_context
    address = discover_endpoint(ctx, "lookup", None)
    assert address.endswith(".credentials.iot.us-east-1.amazonaws.com")
    assert [data for data, _ in ctx.state.values()] == [{"address": address}]
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing there: must come from state
    assert discover_endpoint(ctx, "lookup", None) == address
    from gw.plugin import StepError

    with pytest.raises(StepError, match="aws_profile 'nope' is not in the AWS config"):
        discover_endpoint(ctx, "nope", "us-east-1")
