"""The Lambda front door: API Gateway REST (v1) and HTTP API (v2) proxy events, settings from
GW_ENDORSE_* variables, against the Endorse emulator's key bucket and moto's STS."""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

import pytest

from gw_plugins.endorse import lambda_handler
from gw_plugins.endorse.settings import SettingsError, load_env


@pytest.fixture
def lambda_env(monkeypatch, endorse, moto, device_role, ca):
    for key in list(__import__("os").environ):
        if key.startswith(("GW_ENDORSE_", "AWS_")):
            monkeypatch.delenv(key)
    env = {
        "GW_ENDORSE_KEY_STORE_URL": endorse.key_store_url,
        "GW_ENDORSE_ALLOWED_IMSIS": f"{endorse.default_imsi}, 440109999999999",
        "GW_ENDORSE_ROLE_ARN": device_role,
        "GW_ENDORSE_STS_ENDPOINT": moto.url,
        "GW_ENDORSE_REGION": "us-east-1",
        "GW_ENDORSE_DURATION": "1800",
        "GW_ENDORSE_CA_BUNDLE": str(ca.ca_path),
        "GW_ENDORSE_ALLOWED_ORIGINS": "https://app.example.com",
        "AWS_ACCESS_KEY_ID": "AKIALAMBDAROLE000001",
        "AWS_SECRET_ACCESS_KEY": "lambda-role-secret",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(lambda_handler, "_service", None)
    return env


def v1_event(method: str, *, query: dict | None = None, body: str | None = None, headers: dict | None = None,
             b64: bool = False) -> dict:
    return {
        "resource": "/exchange", "path": "/exchange", "httpMethod": method,
        "headers": headers or {}, "multiValueHeaders": {k: [v] for k, v in (headers or {}).items()},
        "queryStringParameters": query, "multiValueQueryStringParameters": {k: [v] for k, v in (query or {}).items()} or None,
        "requestContext": {"identity": {"sourceIp": "203.0.113.7"}, "httpMethod": method, "path": "/prod/exchange"},
        "body": base64.b64encode(body.encode()).decode() if (b64 and body) else body, "isBase64Encoded": b64,
    }


def v2_event(method: str, *, query: dict | None = None, body: str | None = None, headers: dict | None = None,
             b64: bool = False) -> dict:
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": "/exchange", "rawQueryString": urlencode(query or {}),
        "headers": {k.lower(): v for k, v in (headers or {}).items()}, "queryStringParameters": query,
        "requestContext": {"http": {"method": method, "path": "/exchange", "sourceIp": "203.0.113.8"}},
        "body": base64.b64encode(body.encode()).decode() if (b64 and body) else body, "isBase64Encoded": b64,
    }


@pytest.mark.parametrize("make", [v1_event, v2_event], ids=["rest-v1", "http-v2"])
def test_lambda_exchanges_a_token_from_query_body_and_header(make, lambda_env, endorse, moto, capsys):
    token = endorse.mint()
    answer = lambda_handler.handler(make("GET", query={"soracom_endorse_token": token}), None)
    assert answer["statusCode"] == 200, answer["body"]
    doc = json.loads(answer["body"])
    assert doc["Imsi"] == endorse.default_imsi
    issued = moto.lookup(doc["AccessKeyId"])
    assert issued is not None and issued.arn.endswith(f"endorse-{endorse.default_imsi}")
    form = lambda_handler.handler(make("POST", body=urlencode({"token": endorse.mint()}), b64=True,
                                       headers={"Content-Type": "application/x-www-form-urlencoded"}), None)
    assert form["statusCode"] == 200, form["body"]
    bearer = lambda_handler.handler(make("POST", headers={"Authorization": f"Bearer {endorse.mint()}",
                                                          "Origin": "https://app.example.com"}), None)
    assert bearer["statusCode"] == 200 and bearer["headers"]["Access-Control-Allow-Origin"] == "https://app.example.com"
    replay = lambda_handler.handler(make("GET", query={"soracom_endorse_token": token}), None)
    assert replay["statusCode"] == 401 and json.loads(replay["body"])["code"] == "token_replayed"
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert [r["status"] for r in logged] == [200, 200, 200, 401]
    assert logged[0]["source"].startswith("203.0.113.")
    assert all(token not in json.dumps(r) for r in logged)


def test_lambda_refuses_garbage_events(lambda_env):
    for event in (None, [], {"httpMethod": 5}, {"version": "2.0", "requestContext": {"http": {}}},
                  v1_event("POST", body="%%%", b64=True), {"httpMethod": "POST", "body": {"token": 1}}):
        answer = lambda_handler.handler(event, None)
        assert answer["statusCode"] == 400 and set(json.loads(answer["body"])) == {"code", "message"}


def test_env_settings_checked_like_the_file(monkeypatch):
    base = {"GW_ENDORSE_ROLE_ARN": "arn:aws:iam::123456789012:role/D", "GW_ENDORSE_ALLOWED_IMSIS": "440101234567890"}
    assert load_env(base).allowed_imsis == ("440101234567890",)
    with pytest.raises(SettingsError, match=r"unknown variable GW_ENDORSE_ROLEARN \(did you mean 'role_arn'\?\)"):
        load_env({**base, "GW_ENDORSE_ROLEARN": "x"})
    with pytest.raises(SettingsError, match="GW_ENDORSE_LEEWAY must be an integer"):
        load_env({**base, "GW_ENDORSE_LEEWAY": "lots"})
    settings = load_env({**base, "GW_ENDORSE_ALLOWED_ORIGINS": "https://a.example, https://b.example",
                         "GW_ENDORSE_REPLAY_STORE": "dynamodb:jti-table"})
    assert settings.allowed_origins == ("https://a.example", "https://b.example")
    assert settings.replay_table == "jti-table"
