"""The device side through the real gw executable: endorse -> endorse-exchange profiles,
the real AWS CLI through credential_process, gw env, the iot-wss-url kind and gw iot-url."""

from __future__ import annotations

import json
import subprocess
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import AWS_CLI


def device_profile(endorse, server, *, verify: bool = True, output: str = "aws", name: str = "device") -> str:
    return f"""
    [profiles.{name}]
    region = "us-east-1"
    steps = [
      {{ use = "endorse", endpoint = "{endorse.url}", verify = {str(verify).lower()}, key_store_url = "{endorse.key_store_url}" }},
      {{ use = "endorse-exchange", url = "{server.exchange_url}", output = "{output}" }},
    ]
    """


@pytest.fixture
def server(base_settings, exchange_server):
    return exchange_server(base_settings)


def test_aws_cli_through_credential_process_gets_the_imsi_session(aws_home, endorse, server, moto):
    home = aws_home
    home.write_config(device_profile(endorse, server))
    assert home.run_in_process("check").returncode == 0
    home.aws_config.write_text(
        f"[profile device]\ncredential_process = {home.env['PATH'].split(':')[0]}/gw credential-process --profile device\n"
        "region = us-east-1\n"
    )
    assert AWS_CLI, "the AWS CLI (awscli, test extra) is not installed"
    result = subprocess.run(check=False, args=[AWS_CLI, "sts", "get-caller-identity", "--profile", "device", "--output", "json"],
                            env=home.env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    arn = json.loads(result.stdout)["Arn"]
    assert arn.endswith(f":assumed-role/endorse-device/endorse-{endorse.default_imsi}")
    # the second call is a cache hit: no new token, no new exchange
    tokens = len(endorse.issued)
    again = subprocess.run(check=False, args=[AWS_CLI, "sts", "get-caller-identity", "--profile", "device", "--output", "json"],
                           env=home.env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and json.loads(again.stdout)["Arn"] == arn
    assert len(endorse.issued) == tokens


def test_env_exports_the_exchanged_credentials(aws_home, endorse, server, moto):
    home = aws_home
    home.write_config(device_profile(endorse, server, verify=False))
    result = home.run_in_process("env", "--profile", "device")
    assert result.returncode == 0, result.stderr
    assert "AWS_SESSION_TOKEN" in result.stdout and "AWS_REGION" in result.stdout
    akid = next(line for line in result.stdout.splitlines() if "AWS_ACCESS_KEY_ID" in line).split("=", 1)[1].strip("'\"")
    issued = moto.lookup(akid)
    assert issued is not None and issued.arn.endswith(f"endorse-{endorse.default_imsi}")


def test_verify_refuses_a_token_without_the_nonce(gw_home, endorse, server, monkeypatch):
    # the emulator drops request parameters, as SORACOM does when the group does not allow them
    original = endorse.mint
    monkeypatch.setattr(endorse, "mint", lambda imsi=None, **kw: original(imsi, **{**kw, "request_parameters": {}}))
    gw_home.write_config(device_profile(endorse, server))
    result = gw_home.run_in_process("credential-process", "--profile", "device")
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr.startswith("gw: ") and "nonce" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_verify_refuses_an_expired_token_before_the_exchange(gw_home, endorse, server):
    endorse.mode = "expired"
    gw_home.write_config(device_profile(endorse, server))
    result = gw_home.run_in_process("credential-process", "--profile", "device")
    assert result.returncode != 0 and "expired" in result.stderr and "Traceback" not in result.stderr
    assert not [r for r in server.records() if r.get("path") == "/exchange"]


def test_exchange_refusal_is_one_line(gw_home, endorse, server):
    endorse.mode = "wrong-audience"
    gw_home.write_config(device_profile(endorse, server, verify=False))
    result = gw_home.run_in_process("credential-process", "--profile", "device")
    assert result.returncode != 0
    line = result.stderr.strip()
    assert line.startswith("gw: ") and "401" in line and "wrong_audience" in line and "\n" not in line


def test_iot_wss_kind_cached_and_printed_by_iot_url(gw_home, endorse, server):
    gw_home.write_config(device_profile(endorse, server, verify=False, output="iot-wss", name="mqtt"))
    assert gw_home.run_in_process("check").returncode == 0
    first = gw_home.run_in_process("iot-url", "--profile", "mqtt")
    assert first.returncode == 0, first.stderr
    url = first.stdout.strip()
    assert url.startswith("wss://example-ats.iot.us-east-1.amazonaws.com/mqtt?X-Amz-Algorithm=AWS4-HMAC-SHA256")
    assert "X-Amz-Security-Token" in parse_qs(urlsplit(url).query)
    tokens = len(endorse.issued)
    # read back from the encrypted cache as the plugin's own kind: same URL, no new token
    second = gw_home.run_in_process("iot-url", "--profile", "mqtt")
    assert second.returncode == 0 and second.stdout.strip() == url and len(endorse.issued) == tokens
    # --refresh fetches anew; --min-ttl longer than the URL's life does too
    for flags in (["--refresh"], ["--min-ttl", "24h"]):
        again = gw_home.run_in_process("iot-url", "--profile", "mqtt", *flags)
        assert again.returncode == 0 and len(endorse.issued) == tokens + 1, again.stderr
        tokens += 1
    entries = list(gw_home.cache_dir.iterdir())
    assert entries and all(url.encode() not in p.read_bytes() for p in entries if p.is_file())
    env = gw_home.run_in_process("env", "--profile", "mqtt")
    assert env.returncode == 0 and "GW_IOT_WSS_URL" in env.stdout and "GW_IOT_CLIENT_ID" in env.stdout


def test_iot_url_presigns_with_aws_credentials(gw_home, endorse, server):
    gw_home.write_config(device_profile(endorse, server, verify=False))
    missing = gw_home.run_in_process("iot-url", "--profile", "device")
    assert missing.returncode != 0 and "--endpoint" in missing.stderr
    result = gw_home.run_in_process("iot-url", "--profile", "device", "--endpoint", "abc-ats.iot.eu-west-1.amazonaws.com",
                         "--region", "eu-west-1")
    assert result.returncode == 0, result.stderr
    query = parse_qs(urlsplit(result.stdout.strip()).query)
    assert query["X-Amz-Credential"][0].split("/")[2:4] == ["eu-west-1", "iotdevicegateway"]


def test_iot_url_takes_the_region_from_the_aws_environment(gw_home, endorse, server):
    """Without --region: AWS_REGION, then AWS_DEFAULT_REGION, then the profile's region, as the AWS CLI does."""
    gw_home.write_config(device_profile(endorse, server, verify=False).replace('region = "us-east-1"\n', ""))
    endpoint = ["iot-url", "--profile", "device", "--endpoint", "abc-ats.iot.ap-northeast-1.amazonaws.com"]
    for env, region in (({"AWS_DEFAULT_REGION": "ap-northeast-1"}, "ap-northeast-1"),
                        ({"AWS_REGION": "eu-central-1", "AWS_DEFAULT_REGION": "ap-northeast-1"}, "eu-central-1")):
        result = gw_home.run_in_process(*endpoint, env=env)
        assert result.returncode == 0, result.stderr
        query = parse_qs(urlsplit(result.stdout.strip()).query)
        assert query["X-Amz-Credential"][0].split("/")[2] == region
    missing = gw_home.run_in_process(*endpoint)
    assert missing.returncode == 2 and "AWS_REGION" in missing.stderr


def test_bad_step_options_are_one_line(gw_home, endorse):
    gw_home.write_config("""
    [profiles.device]
    steps = [ { use = "endorse", endpoint = "ftp://x" }, { use = "endorse-exchange", url = "https://x/exchange", output = "mqtt" } ]
    """)
    result = gw_home.run_in_process("check")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "endpoint" in result.stderr or "output" in result.stderr


def test_exec_runs_a_program_with_the_exchanged_credentials(aws_home, endorse, server, moto):
    import sys

    home = aws_home
    home.write_config(device_profile(endorse, server))
    script = ("import boto3; print(boto3.client('sts', region_name='us-east-1')"
              ".get_caller_identity()['Arn'])")
    result = home.run("exec", "--profile", "device", "--", sys.executable, "-c", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(f":assumed-role/endorse-device/endorse-{endorse.default_imsi}")


def test_login_turns_the_exchanged_credentials_into_a_console_session(aws_home, endorse, server, federation, ca):  # noqa: F811
    import requests

    home = aws_home
    home.write_config(device_profile(endorse, server)
                      + f'login = {{ endpoint = "{federation.federation_url}", destination = "{federation.console_url}" }}\n')
    result = home.run_in_process("login", "--profile", "device", "--print")
    assert result.returncode == 0, result.stderr
    response = requests.get(result.stdout.strip(), verify=str(ca.ca_path), allow_redirects=False, timeout=30)
    assert response.status_code == 302 and response.headers["Location"] == federation.console_url
    session = federation.last_session
    assert session.logged_in and session.arn.endswith(f":assumed-role/endorse-device/endorse-{endorse.default_imsi}")


def test_a_service_echoing_the_token_does_not_leak_it(gw_home, endorse, ca):
    """An exchange URL that answers 400 with the token in its message: gw's line shows no token."""
    from gw_emulators.httpserver import EmulatorServer, Request, Response, json_response

    class Echo(EmulatorServer):
        name = "echo"

        def __init__(self) -> None:
            super().__init__(ca)
            self.route("POST", r"/exchange", self._echo)

        def _echo(self, request: Request) -> Response:
            token = (request.header("authorization") or "").partition(" ")[2]
            return json_response(400, {"code": "echo", "message": f"bad token {token}"})

    with Echo() as echo:
        gw_home.write_config(f"""
        [profiles.device]
        steps = [ {{ use = "endorse", endpoint = "{endorse.url}" }},
                  {{ use = "endorse-exchange", url = "{echo.url}/exchange" }} ]
        """)
        result = gw_home.run_in_process("credential-process", "--profile", "device")
    assert result.returncode != 0 and "HTTP 400" in result.stderr
    assert "eyJ" not in result.stderr and "[redacted]" in result.stderr  # not even a shortened token
