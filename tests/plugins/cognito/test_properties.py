"""Property-based runs of the real ``gw`` over whatever a Cognito token endpoint answers.

A scripted HTTPS server on 127.0.0.1 (tests/core/hardening_upstream.py's ScriptedUpstream)
plays the ``/oauth2/token`` endpoint byte for byte: any status, any JSON document (OAuth error
bodies, token answers with odd fields, JWTs whose ``exp`` is in the past), garbage bytes, or a
dropped connection. For every answer, ``gw token --profile m2m`` must:
- write only ``gw: ...`` lines on stderr, never a traceback nor ``gw: internal error``;
- exit non-zero with at least one line unless the answer really was a usable token, and then
  print exactly that token;
- never show the client secret (nor its Basic-auth form) on stdout or stderr in any form,
  even when the endpoint echoes it back.
Bounded: retries = 0 (no backoff sleeps), about 40 runs of the real executable.
"""

from __future__ import annotations

import base64
import json
import tempfile
import time
from pathlib import Path
from urllib.parse import quote, unquote_plus

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gw.testing import GwHome
from tests.core.hardening_upstream import ScriptedUpstream
from tests.core.test_properties import assert_clean, secrets_strategy

BOUNDED = settings(max_examples=40, deadline=None, database=None, derandomize=True,
                   suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
CLIENT_ID = "1example23456789abcdefghij"
OAUTH_ERRORS = ["invalid_client", "invalid_grant", "invalid_scope", "unauthorized_client",
                "unsupported_grant_type", "invalid_request", "", "not an error code", "<>&\"'"]

JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=False), st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(["access_token", "expires_in", "error", "x"]), inner,
                                            max_size=3)),
    max_leaves=5)


@pytest.fixture
def upstream(ca):
    with ScriptedUpstream(ca) as server:
        yield server


def _jwt(exp_offset: int | None, claims: dict) -> str:
    import jwt

    body = dict(claims, client_id=CLIENT_ID, token_use="access")
    if exp_offset is not None:
        body["exp"] = int(time.time()) + exp_offset
    return jwt.encode(body, "not-the-pool-key-but-long-enough-for-hs256", algorithm="HS256")


TOKEN = st.one_of(
    st.text(min_size=1, max_size=40),
    st.builds(_jwt, st.one_of(st.none(), st.integers(-86400, 86400)),
              st.dictionaries(st.sampled_from(["scope", "iss", "sub"]), st.text(max_size=20), max_size=2)),
)
TOKEN_ANSWER = st.fixed_dictionaries(
    {"access_token": TOKEN},
    optional={"expires_in": st.one_of(st.integers(-10, 86400), st.just("3600"), st.just("soon"), JSONISH),
              "token_type": st.one_of(st.just("Bearer"), JSONISH)})
GOOD_ANSWER = st.fixed_dictionaries({"access_token": TOKEN, "expires_in": st.integers(1, 86400),
                                     "token_type": st.just("Bearer")})
ERROR_ANSWER = st.fixed_dictionaries(
    {"error": st.one_of(st.sampled_from(OAUTH_ERRORS), JSONISH)},
    optional={"error_description": st.text(max_size=30)})


def _echo(secret: str, how: str) -> str:
    return {"raw": secret, "repr": repr(secret), "json": json.dumps(secret), "url": quote(secret, safe=""),
            "cut": secret[: len(secret) // 2 + 4], "basic": base64.b64encode(f"{CLIENT_ID}:{secret}".encode()).decode(),
            "none": ""}[how]


def _usable(status: int, junk: bool, drop: bool, doc: object) -> bool:
    """True when gw may accept the answer: a 200 JSON object with a token and a positive expires_in."""
    if status != 200 or junk or drop or not isinstance(doc, dict):
        return False
    expires = doc.get("expires_in")
    if isinstance(expires, str) and expires.isdigit():
        expires = int(expires)
    return (isinstance(doc.get("access_token"), str) and bool(doc["access_token"])
            and isinstance(expires, int) and not isinstance(expires, bool) and expires > 0)


@BOUNDED
@given(status=st.sampled_from([200] * 6 + [400, 401, 403, 404, 429, 500, 503]),
       doc=st.one_of(GOOD_ANSWER, TOKEN_ANSWER, ERROR_ANSWER, JSONISH), junk=st.sampled_from([False] * 3 + [True]),
       raw=st.binary(max_size=40), drop=st.sampled_from([False] * 5 + [True]), secret=secrets_strategy(),
       how=st.sampled_from(["raw", "repr", "json", "url", "cut", "basic", "none"]),
       where=st.sampled_from(["error_description", "error", "x"]))
def test_any_token_endpoint_answer_gives_gw_lines_only(tmp_path, ca, upstream, status, doc, junk, raw, drop, secret,
                                                       how, where):
    home = GwHome.create(Path(tempfile.mkdtemp(dir=tmp_path)), ca_path=str(ca.ca_path))
    home.env["GWT_CLIENT_SECRET"] = secret
    home.write_config(f"""
[profiles.m2m]
steps = [{{ use = "cognito-m2m", token_url = "{upstream.url}/oauth2/token", client_id = "{CLIENT_ID}", \
client_secret = "env:GWT_CLIENT_SECRET", scopes = ["orders/read"], retries = 0, timeout = 5 }}]
""")
    if how != "none" and isinstance(doc, dict):  # the endpoint echoes the client secret back
        doc = dict(doc, **{where: f"client secret {_echo(secret, how)} is wrong"})
    body = raw if junk else json.dumps(doc).encode()
    upstream.answer(status, body, {"Content-Type": "application/json"}, drop=drop)
    before = len(upstream.requests)
    result = home.run_in_process("token", "--profile", "m2m", "--format", "raw", timeout=60)
    code, out, err = result.returncode, result.stdout, result.stderr
    # one request, no retry (retries = 0); any secret can be sent (RFC 6749 form-encoding)
    assert len(upstream.requests) == before + 1, err
    assert all(line.startswith("gw: ") for line in err.splitlines()), err
    assert_clean(code, out, err, [secret], emits=False)
    event("token printed" if code == 0 else "one gw line")
    if code == 0:
        assert _usable(status, junk, drop, doc), (status, doc, out)
        assert out == doc["access_token"] + "\n"  # type: ignore[index]
    else:
        assert [line for line in err.splitlines() if not line.startswith("gw: warning: ")], err
        assert out == ""


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
def test_a_non_latin1_secret_is_sent_rfc6749_encoded(tmp_path, ca, upstream, auth_method):
    """Was refused before sending ("not Latin-1"): RFC 6749 form-encodes id and secret as UTF-8."""
    from urllib.parse import parse_qs

    secret = "S3cr0000000000000000\u2019%+:\u00e9"
    home = GwHome.create(tmp_path, ca_path=str(ca.ca_path))
    home.env["GWT_CLIENT_SECRET"] = secret
    home.write_config(f'[profiles.m2m]\nsteps = [{{ use = "cognito-m2m", token_url = "{upstream.url}/oauth2/token", '
                      f'client_id = "{CLIENT_ID}", client_secret = "env:GWT_CLIENT_SECRET", retries = 0, '
                      f'auth_method = "{auth_method}" }}]\n')
    upstream.answer(400, b'{"error":"invalid_client"}', {"Content-Type": "application/json"})
    result = home.run_in_process("token", "--profile", "m2m")
    assert result.returncode != 0 and result.stdout == ""
    assert_clean(result.returncode, result.stdout, result.stderr, [secret], emits=False)
    (request,) = upstream.requests
    form = parse_qs(request.body.decode("ascii"), strict_parsing=True)
    if auth_method == "client_secret_basic":
        scheme, _, value = request.headers["authorization"].partition(" ")
        assert scheme == "Basic"
        encoded_id, _, encoded_secret = base64.b64decode(value).decode("ascii").partition(":")
        assert (unquote_plus(encoded_id), unquote_plus(encoded_secret)) == (CLIENT_ID, secret)
        assert "client_secret" not in form
    else:
        assert "authorization" not in {k.lower() for k in request.headers}
        assert form["client_id"] == [CLIENT_ID] and form["client_secret"] == [secret]
