"""cognito-m2m options: every misconfiguration is one line from ``gw check`` and ``gw env``,
and the endpoint is built the way the Cognito docs spell the user pool domain."""

from __future__ import annotations

import pytest
import tomli_w

from gw_plugins.cognito import token_endpoint
from tests.core.gw_test_support import assert_clean_failure

BASE = {"use": "cognito-m2m", "client_id": "abc123", "client_secret": "env:COGNITO_SECRET"}
DOMAIN = {"domain": "my-app", "region": "eu-west-1"}

BAD = {
    "both-endpoints": ({"token_url": "https://a.example/oauth2/token", **DOMAIN}, "give either token_url or domain"),
    "no-endpoint": ({}, "give either token_url or domain"),
    "prefix-without-region": ({"domain": "my-app"}, "a domain prefix needs region"),
    "bad-prefix": ({"domain": "My_App", "region": "eu-west-1"}, "is not a Cognito domain prefix"),
    "bad-region": ({"domain": "my-app", "region": "Europe"}, "is not an AWS region name"),
    "region-with-url": ({"token_url": "https://a.example/oauth2/token", "region": "eu-west-1"}, "region goes with domain"),
    "http-url": ({"token_url": "http://a.example/oauth2/token"}, "token_url must be an https URL"),
    "url-with-query": ({"token_url": "https://a.example/oauth2/token?x=1"}, "token_url must be an https URL"),
    "scope-with-space": ({**DOMAIN, "scopes": ["a b"]}, "scopes must be a list of scope names"),
    "scope-not-text": ({**DOMAIN, "scopes": [1]}, "scopes must be a list of scope names"),
    "scopes-not-list": ({**DOMAIN, "scopes": "orders/read"}, "scopes must be"),
    "env-name": ({**DOMAIN, "env_name": "MY-TOKEN"}, "env_name must be an environment variable name"),
    "retries-high": ({**DOMAIN, "retries": 11}, "retries must be an integer from 0 to 10"),
    "retries-negative": ({**DOMAIN, "retries": -1}, "retries must be an integer from 0 to 10"),
    "timeout-zero": ({**DOMAIN, "timeout": 0}, "timeout must be a number of seconds"),
    "empty-client-id": ({**DOMAIN, "client_id": " "}, "client_id must not be empty"),
    "plain-secret": ({**DOMAIN, "client_secret": "s3cr3t-in-the-config"}, "not a secret reference"),
    "unknown-option": ({**DOMAIN, "scope": "orders/read"}, "scope"),
    "auth-method": ({**DOMAIN, "auth_method": "client_secret_jwt"},
                    "auth_method must be 'client_secret_basic' or 'client_secret_post'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_option_is_one_line(gw_home, case):
    options, message = BAD[case]
    gw_home.write_config(tomli_w.dumps({"profiles": {"m2m": {"steps": [{**BASE, **options}]}}}))
    gw_home.env["COGNITO_SECRET"] = "never-used-secret"
    line = assert_clean_failure(gw_home.run_in_process("env", "--profile", "m2m"), contains=message)
    assert "profiles.m2m.steps[0] (cognito-m2m)" in line
    assert "s3cr3t-in-the-config" not in line
    check = gw_home.run_in_process("check")
    assert check.returncode != 0 and message in check.stderr and "Traceback" not in check.stderr


def test_a_good_profile_checks_clean(gw_home):
    gw_home.write_config(tomli_w.dumps({"profiles": {"m2m": {"steps": [{**BASE, **DOMAIN, "scopes": ["a/b"]}]}}}))
    gw_home.env["COGNITO_SECRET"] = "x"
    result = gw_home.run_in_process("check")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("options", "url"),
    [
        (DOMAIN, "https://my-app.auth.eu-west-1.amazoncognito.com/oauth2/token"),
        ({"domain": "auth.example.com"}, "https://auth.example.com/oauth2/token"),
        ({"token_url": "https://x.example/oauth2/token"}, "https://x.example/oauth2/token"),
    ],
)
def test_the_token_endpoint(options, url):
    assert token_endpoint(options) == url
