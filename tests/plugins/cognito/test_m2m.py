"""cognito-m2m end to end: the real gw executable, the user pool emulator over TLS, and an
API that verifies the token like an API Gateway JWT authorizer."""

from __future__ import annotations

import base64
import json
import sys
import time
import urllib.parse

import pytest

from gw_emulators.cognito import OAUTH_ERRORS
from gw_plugins.cognito import ERROR_HINTS
from tests.core.gw_test_support import (
    assert_clean_failure,
    imported_modules,
    read_cached,
    run_importtime,
)
from tests.plugins.cognito.conftest import READ, WRITE, write_m2m

# A child program that calls the API with the token gw put in its environment.
CALL_API = """
import json, os, ssl, sys, urllib.error, urllib.request
request = urllib.request.Request(sys.argv[1], headers={"Authorization": "Bearer " + os.environ[sys.argv[3]]})
context = ssl.create_default_context(cafile=sys.argv[2])
try:
    with urllib.request.urlopen(request, context=context) as reply:
        print(reply.status, reply.read().decode())
except urllib.error.HTTPError as error:
    print(error.code, error.read().decode())
"""


def env_json(home, profile: str = "m2m") -> dict[str, str]:
    result = home.run_in_process("env", "--profile", profile, "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_exec_hands_the_token_to_a_program_that_calls_the_api(gw_home, pool, api, ca):
    gw_home.vault_set("orders-secret", pool.clients["reader"].secret)
    write_m2m(gw_home, pool, secret_ref="vault:orders-secret")

    values = env_json(gw_home)
    assert list(values) == ["GW_BEARER_TOKEN"]
    assert values["GW_BEARER_TOKEN"] == pool.issued[-1].token

    result = gw_home.run("exec", "--profile", "m2m", "--", sys.executable, "-c", CALL_API,
                         f"{api.url}/orders", str(ca.ca_path), "GW_BEARER_TOKEN")
    assert result.returncode == 0, result.stderr
    status, _, body = result.stdout.strip().partition(" ")
    assert status == "200", result.stdout
    assert json.loads(body) == {"client_id": "reader", "scopes": [READ], "path": "/orders"}
    assert api.calls["verified"] == 1
    assert pool.calls["jwks"] == 1  # the API really fetched the pool's keys to check the signature
    assert pool.calls["token"] == 1  # exec was served from the cache


def test_a_route_needing_another_scope_is_forbidden(gw_home, pool, api, ca):
    write_m2m(gw_home, pool)
    result = gw_home.run("exec", "--profile", "m2m", "--", sys.executable, "-c", CALL_API,
                         f"{api.url}/orders/new", str(ca.ca_path), "GW_BEARER_TOKEN")
    assert result.stdout.split()[0] == "403", result.stdout
    assert api.rejections == [f"missing scope {WRITE}"]


def test_env_name_names_the_variable(gw_home, pool):
    write_m2m(gw_home, pool, env_name="ORDERS_TOKEN")
    values = env_json(gw_home)
    assert values == {"ORDERS_TOKEN": pool.issued[-1].token}


def test_second_call_is_a_cache_hit(gw_home, pool):
    write_m2m(gw_home, pool)
    first = env_json(gw_home)
    second = env_json(gw_home)
    assert first == second
    assert pool.calls["token"] == 1
    header, plaintext = read_cached(gw_home, "m2m")
    assert header.kind == "bearer-token"
    document = json.loads(plaintext.decode().split("\n", 1)[1])
    assert document["kind"] == "bearer-token"
    cached = document["data"]
    assert cached["access_token"] == first["GW_BEARER_TOKEN"]
    assert cached["env_name"] == "GW_BEARER_TOKEN"
    assert cached["scope"] == READ


def test_another_scope_list_is_another_cache_entry(gw_home, pool):
    pool.add_client("both", scopes=(READ, WRITE))
    write_m2m(gw_home, pool, pool.clients["both"], scopes=[READ])
    env_json(gw_home)
    write_m2m(gw_home, pool, pool.clients["both"], scopes=[READ, WRITE])
    env_json(gw_home)
    assert pool.calls["token"] == 2
    assert [t.scope for t in pool.issued] == [READ, f"{READ} {WRITE}"]


def test_without_scopes_cognito_grants_all_the_client_may_have(gw_home, pool):
    pool.add_client("both", scopes=(READ, WRITE))
    write_m2m(gw_home, pool, pool.clients["both"], scopes=None)
    env_json(gw_home)
    assert pool.issued[-1].scope == f"{READ} {WRITE}"


def test_a_scope_the_client_may_not_have_is_one_line(gw_home, pool):
    write_m2m(gw_home, pool, scopes=[READ, WRITE])
    result = gw_home.run_in_process("env", "--profile", "m2m")
    line = assert_clean_failure(result, contains="(invalid_scope)")
    assert "allowed custom scopes" in line
    assert pool.issued == [] and pool.calls["token"] == 1


def test_a_wrong_secret_is_invalid_client(gw_home, pool):
    write_m2m(gw_home, pool)
    gw_home.env["COGNITO_SECRET"] = "not-the-secret-" + "x" * 20
    result = gw_home.run_in_process("env", "--profile", "m2m")
    line = assert_clean_failure(result, contains="(invalid_client)")
    assert "check client_id and client_secret" in line
    assert "not-the-secret" not in result.stderr


def test_a_client_without_the_grant_is_unauthorized_client(gw_home, pool):
    pool.add_client("web", scopes=(READ,), flows=("authorization_code",))
    write_m2m(gw_home, pool, pool.clients["web"])
    assert_clean_failure(gw_home.run_in_process("env", "--profile", "m2m"), contains="enable the client credentials")


@pytest.mark.parametrize("error", OAUTH_ERRORS)
def test_every_oauth_error_is_one_line_saying_what_to_check(gw_home, pool, error):
    write_m2m(gw_home, pool)
    pool.refuse_next(error)
    line = assert_clean_failure(gw_home.run_in_process("env", "--profile", "m2m"))
    expected = f"gw: Cognito refused the token request ({error}): {ERROR_HINTS[error]}"
    if error == "invalid_client":  # the server may take only the other client authentication method
        expected += '; or the server takes only client_secret_post: try auth_method = "client_secret_post" ' \
                    "(now client_secret_basic)"
    assert line == expected
    assert pool.calls["token"] == 1  # a refusal is not retried


def test_an_unknown_error_code_is_still_one_line(gw_home, pool):
    write_m2m(gw_home, pool)
    pool.refuse_next("slow_down")
    assert_clean_failure(gw_home.run_in_process("env", "--profile", "m2m"), contains="(slow_down)")


def test_a_wrong_path_is_one_line(gw_home, pool):
    write_m2m(gw_home, pool, token_url=f"{pool.url}/oauth2/tokens")
    assert_clean_failure(gw_home.run_in_process("env", "--profile", "m2m"), contains="HTTP 404")


# -- retries ------------------------------------------------------------------------------------
def test_5xx_twice_then_success_is_three_posts(gw_home, pool):
    write_m2m(gw_home, pool)
    pool.inject("token", status=503, count=2)
    values = env_json(gw_home)
    assert values["GW_BEARER_TOKEN"] == pool.issued[-1].token
    assert pool.calls["token"] == 3


@pytest.mark.parametrize("retries", [3, 1])
def test_429_forever_is_retries_plus_one_posts_then_one_line(gw_home, pool, retries):
    options = {} if retries == 3 else {"retries": retries}  # 3 is the default
    write_m2m(gw_home, pool, **options)
    pool.inject("token", status=429, count=1000)
    line = assert_clean_failure(gw_home.run_in_process("env", "--profile", "m2m"))
    assert pool.calls["token"] == retries + 1
    assert f"answered HTTP 429 on all {retries + 1} attempts" in line
    assert f"(retries = {retries})" in line


def test_retries_zero_makes_one_attempt(gw_home, pool):
    write_m2m(gw_home, pool, retries=0)
    pool.inject("token", status=500, count=1)
    assert_clean_failure(gw_home.run_in_process("env", "--profile", "m2m"), contains="HTTP 500 on its only attempt")
    assert pool.calls["token"] == 1


def test_a_timeout_and_a_dropped_connection_are_retried(gw_home, pool):
    write_m2m(gw_home, pool, timeout=1)
    pool.inject("token", delay=1.6, count=1)
    pool.inject("token", drop=True, count=1)
    started = time.monotonic()
    values = env_json(gw_home)
    # The delayed request still gets its token once its delay is over (gw no longer waits for it).
    assert values["GW_BEARER_TOKEN"] in {issued.token for issued in pool.issued}
    assert pool.calls["token"] == 3
    assert time.monotonic() - started < 15


def test_mixed_failures_are_counted_in_the_line(gw_home, pool):
    write_m2m(gw_home, pool, retries=2)
    pool.inject("token", status=502, count=1)
    pool.inject("token", drop=True, count=2)
    line = assert_clean_failure(gw_home.run_in_process("env", "--profile", "m2m"))
    assert "failed all 3 attempts (1 x HTTP 502, 2 x connection failed)" in line
    assert pool.calls["token"] == 3


# -- expiry ---------------------------------------------------------------------------------------
def test_the_earlier_of_exp_and_expires_in_is_used_and_a_big_gap_is_reported(gw_home, pool):
    pool.add_client("skewed", scopes=(READ,), lifetime=3600, claim_lifetime=1800)
    write_m2m(gw_home, pool, pool.clients["skewed"])
    before = time.time()
    result = gw_home.run_in_process("env", "--profile", "m2m")
    assert result.returncode == 0, result.stderr
    assert "exp claim and expires_in disagree by 30 min; using the earlier" in result.stderr
    header, _ = read_cached(gw_home, "m2m")
    assert header.expires_at == pool.issued[-1].expires_at
    assert before + 1790 <= header.expires_at <= time.time() + 1800


def test_an_exp_later_than_expires_in_does_not_extend_the_token(gw_home, pool):
    pool.add_client("generous", scopes=(READ,), lifetime=3600, claim_lifetime=7200)
    write_m2m(gw_home, pool, pool.clients["generous"])
    before = time.time()
    result = gw_home.run_in_process("env", "--profile", "m2m")
    assert result.returncode == 0, result.stderr
    header, _ = read_cached(gw_home, "m2m")
    assert before + 3590 <= header.expires_at <= time.time() + 3600


def test_agreeing_expiries_say_nothing(gw_home, pool):
    write_m2m(gw_home, pool)
    result = gw_home.run_in_process("env", "--profile", "m2m")
    assert result.returncode == 0 and result.stderr == ""


def test_a_token_already_expired_by_its_claim_is_refused(gw_home, pool):
    write_m2m(gw_home, pool)
    pool.advance(-7200)  # the pool's clock is two hours behind: exp is in our past
    line = assert_clean_failure(gw_home.run_in_process("env", "--profile", "m2m"), contains="already past by this computer's clock")
    assert "this computer's clock is 2 h 0 min ahead of the Cognito token endpoint's (by its Date header)" in line


# -- secrets --------------------------------------------------------------------------------------
def _forms(value: str) -> set[str]:
    return {value, repr(value)[1:-1], urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value),
            json.dumps(value)[1:-1], value[:12], value[-12:]}


def test_the_client_secret_never_reaches_stdout_stderr_or_files(gw_home, pool):
    client = pool.clients["reader"]
    write_m2m(gw_home, pool)
    basic = base64.b64encode(f"{client.client_id}:{client.secret}".encode()).decode()
    runs = []
    pool.refuse_next("invalid_client")
    runs.append(gw_home.run_in_process("env", "--profile", "m2m"))
    pool.inject("token", status=503, count=100)
    runs.append(gw_home.run_in_process("env", "--profile", "m2m", env={"GW_QUIET": ""}))
    pool.faults.clear()
    pool.inject("token", garbage=True, count=1)
    runs.append(gw_home.run_in_process("env", "--profile", "m2m"))
    runs.append(gw_home.run_in_process("env", "--profile", "m2m"))
    runs.append(gw_home.run_in_process("profiles"))
    runs.append(gw_home.run_in_process("check"))
    runs.append(gw_home.run_in_process("cache", "list"))
    assert runs[3].returncode == 0, runs[3].stderr
    for result in runs:
        for secret in (client.secret, basic):
            for form in _forms(secret):
                assert form not in result.stdout + result.stderr, "the client secret was printed"
    for path in gw_home.state.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert client.secret.encode() not in data and basic.encode() not in data, path
            assert path.stat().st_mode & 0o077 == 0, path


def test_a_garbage_200_answer_is_one_line(gw_home, pool):
    write_m2m(gw_home, pool)
    pool.inject("token", garbage=True, status=200, count=1)
    assert_clean_failure(gw_home.run_in_process("env", "--profile", "m2m"), contains="answered 200 without a JSON object")


# -- concurrency and the hot path -------------------------------------------------------------------
def test_parallel_calls_make_one_token_request(gw_home, pool):
    write_m2m(gw_home, pool)
    pool.inject("token", delay=0.5, count=1)  # hold the first fetch so the others must wait for it
    runs = [gw_home.popen("env", "--profile", "m2m", "--format", "json") for _ in range(4)]
    outputs = [run.communicate(timeout=60) for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0, 0], outputs
    assert {json.loads(out)["GW_BEARER_TOKEN"] for out, _ in outputs} == {pool.issued[0].token}
    assert pool.calls["token"] == 1


def test_a_cached_token_is_read_back_without_loading_the_plugin(gw_home, pool):
    write_m2m(gw_home, pool, env_name="ORDERS_TOKEN")
    env_json(gw_home)
    result = run_importtime(gw_home, "env", "--profile", "m2m", "--format", "json")
    assert result.returncode == 0
    assert json.loads(result.stdout) == {"ORDERS_TOKEN": pool.issued[0].token}
    modules = imported_modules(result.stderr)
    assert not any(m.startswith("gw_plugins") or m.split(".")[0] in {"requests", "jwt"} for m in modules)
    assert pool.calls["token"] == 1


def test_retries_are_shown_on_a_terminal_and_stdout_keeps_only_the_result(gw_home, pool, tmp_path):
    from tests.core.test_terminal_output import GW, run_in_terminal

    write_m2m(gw_home, pool)
    pool.inject("token", status=503, count=2)
    out = tmp_path / "token.json"
    screen = run_in_terminal(f"{GW} env --profile m2m --format json > {out}", gw_home.env)
    assert "HTTP 503; retry 1 of 3" in screen and "HTTP 503; retry 2 of 3" in screen
    token = json.loads(out.read_text())["GW_BEARER_TOKEN"]
    assert token == pool.issued[-1].token and token not in screen
    assert pool.clients["reader"].secret not in screen


#: what a cache miss must not import when the standard library or an already-loaded module serves (issue 20);
#: http.client (and with it email.message) is allowed: gw's HttpClient runs on it
HEAVY_ON_A_MISS = {"requests", "urllib3", "jwt", "boto3", "botocore", "importlib.metadata"}


def test_a_cache_miss_imports_no_http_library_and_no_other_plugin(gw_home, pool):
    """Issue 20, target 2: the token request goes out through gw's client on http.client
    (no requests, urllib3 or PyJWT), entry points are read without importlib.metadata, and of
    the plugins only cognito loads."""
    write_m2m(gw_home, pool)
    result = run_importtime(gw_home, "token", "--profile", "m2m")
    assert result.returncode == 0, result.stderr
    assert pool.calls["token"] == 1  # a miss that reached the upstream
    modules = imported_modules(result.stderr)
    assert not modules & HEAVY_ON_A_MISS, sorted(modules & HEAVY_ON_A_MISS)
    assert "http.client" in modules  # guards the probe: the request did go out through it
    assert {m for m in modules if m.startswith("gw_plugins.")} == {"gw_plugins.cognito"}
    assert "argparse" not in modules  # a plain miss reads its options without it (cli._plain_miss)


