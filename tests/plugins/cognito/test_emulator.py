"""The Cognito emulators speak the wire protocol of protocols.md section 7 (checked with plain
requests and PyJWT, not with gw), and the protected API verifies tokens like an authorizer."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
import requests

from gw_emulators.cognito import CognitoEmulator
from tests.plugins.cognito.conftest import READ, WRITE

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def post(pool, body: str, headers: dict[str, str] | None = None, ca=None) -> requests.Response:
    return requests.post(pool.token_url, data=body, headers={**FORM, **(headers or {})}, verify=str(ca.ca_path),
                         timeout=10)


def reader_auth(pool) -> dict[str, str]:
    client = pool.clients["reader"]
    return basic(client.client_id, client.secret)


def test_client_credentials_token_is_a_signed_cognito_access_token(pool, ca):
    reply = post(pool, f"grant_type=client_credentials&scope={READ}", reader_auth(pool), ca)
    assert reply.status_code == 200
    assert reply.headers["Cache-Control"] == "no-store"
    body = reply.json()
    assert set(body) == {"access_token", "expires_in", "token_type"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600

    jwks = requests.get(f"{pool.issuer}/.well-known/jwks.json", verify=str(ca.ca_path), timeout=10).json()
    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "RS256" and header["kid"] == jwks["keys"][0]["kid"]
    key = jwt.PyJWK(jwks["keys"][0]).key
    claims = jwt.decode(body["access_token"], key, algorithms=["RS256"], issuer=pool.issuer)
    assert claims["token_use"] == "access"
    assert claims["client_id"] == claims["sub"] == "reader"
    assert claims["scope"] == READ
    assert claims["exp"] - claims["iat"] == 3600 and claims["version"] == 2


def test_discovery_names_the_jwks_and_token_endpoint(pool, ca):
    doc = requests.get(f"{pool.issuer}/.well-known/openid-configuration", verify=str(ca.ca_path), timeout=10).json()
    assert doc["jwks_uri"] == pool.jwks_url and doc["token_endpoint"] == pool.token_url


def test_client_secret_post_is_accepted_too(pool, ca):
    client = pool.clients["reader"]
    reply = post(pool, f"grant_type=client_credentials&client_id=reader&client_secret={client.secret}", None, ca)
    assert reply.status_code == 200, reply.text


def rfc_basic(client_id: str, secret: str) -> dict[str, str]:
    """client_secret_basic as RFC 6749 section 2.3.1 spells it: form-encode, then join."""
    from urllib.parse import quote_plus

    return basic(quote_plus(client_id), quote_plus(secret))


@pytest.mark.parametrize("secret", ["Ab+cd%41:e f\u00e9" + "x" * 20, "plain0secret1with2letters3and4digits"])
@pytest.mark.parametrize("encode", [basic, rfc_basic], ids=["raw", "rfc6749"])
def test_basic_is_read_raw_or_form_decoded(pool, ca, secret, encode):
    """Cognito does not document whether it form-decodes Basic; the emulator takes both readings."""
    pool.add_client("odd", secret=secret, scopes=(READ,))
    reply = post(pool, "grant_type=client_credentials", encode("odd", secret), ca)
    assert reply.status_code == 200, reply.text
    assert pool.issued[-1].client_id == "odd"


def test_a_form_decoded_reading_does_not_widen_the_secret(pool, ca):
    """'a+b' sent raw is not also 'a b': a client whose secret is 'a b' needs 'a b' or 'a+b' encoded."""
    pool.add_client("spacey", secret="a b" + "c" * 24, scopes=(READ,))
    assert post(pool, "grant_type=client_credentials", basic("spacey", "a%2Bb" + "c" * 24), ca).json() == {
        "error": "invalid_client"}


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ("client_id=reader", None),  # the same client named twice: accepted
        ("client_id=reader&client_secret={secret}", None),
        ("client_id=other", "invalid_request"),
        ("client_secret=not-the-secret", "invalid_request"),
        ("client_id=reader&client_secret=not-the-secret", "invalid_request"),
    ],
)
def test_basic_and_form_credentials_that_disagree_are_refused(pool, ca, form, error):
    """RFC 6749 section 5.2: more than one mechanism that do not agree is invalid_request."""
    client = pool.clients["reader"]
    body = "grant_type=client_credentials&" + form.format(secret=client.secret)
    reply = post(pool, body, reader_auth(pool), ca)
    if error is None:
        assert reply.status_code == 200, reply.text
    else:
        assert (reply.status_code, reply.json()) == (400, {"error": error})


def test_a_wrong_basic_with_form_credentials_is_refused(pool, ca):
    client = pool.clients["reader"]
    body = f"grant_type=client_credentials&client_id=reader&client_secret={client.secret}"
    reply = post(pool, body, basic("reader", "wrong"), ca)
    assert (reply.status_code, reply.json()) == (400, {"error": "invalid_request"})


@pytest.mark.parametrize(
    ("body", "auth", "headers", "error"),
    [
        ("grant_type=client_credentials", "reader", {"Content-Type": "application/json"}, "invalid_request"),
        ("scope=orders/read", "reader", {}, "invalid_request"),
        ("grant_type=client_credentials", None, {}, "invalid_client"),
        ("grant_type=client_credentials", "wrong", {}, "invalid_client"),
        ("grant_type=client_credentials", "bearer", {}, "invalid_client"),
        ("grant_type=password", "reader", {}, "unsupported_grant_type"),
        ("grant_type=refresh_token&refresh_token=x", "reader", {}, "unauthorized_client"),
        ("grant_type=client_credentials&scope=orders/write", "reader", {}, "invalid_scope"),
        ("grant_type=client_credentials&scope=other/read", "reader", {}, "invalid_scope"),
    ],
)
def test_refusals_are_400_with_an_oauth_error(pool, ca, body, auth, headers, error):
    client = pool.clients["reader"]
    auth_header = {
        None: {},
        "reader": basic(client.client_id, client.secret),
        "wrong": basic(client.client_id, client.secret + "x"),
        "bearer": {"Authorization": "Bearer " + client.secret},
    }[auth]
    reply = post(pool, body, {**auth_header, **headers}, ca)
    assert (reply.status_code, reply.json()) == (400, {"error": error})


def test_an_unknown_code_or_refresh_token_is_invalid_grant_for_a_client_with_that_flow(pool, ca):
    client = pool.add_client("web", scopes=(READ,), flows=("authorization_code", "refresh_token", "client_credentials"))
    reply = post(pool, "grant_type=authorization_code&code=nope", basic("web", client.secret), ca)
    assert (reply.status_code, reply.json()) == (400, {"error": "invalid_grant"})


def test_a_client_without_scopes_cannot_get_a_token(pool, ca):
    client = pool.add_client("bare", scopes=())
    reply = post(pool, "grant_type=client_credentials", basic("bare", client.secret), ca)
    assert reply.json() == {"error": "invalid_scope"}


def test_a_public_client_cannot_use_client_credentials(pool, ca):
    pool.add_client("public", secret=None, scopes=(READ,))
    reply = post(pool, "grant_type=client_credentials&client_id=public", None, ca)
    assert reply.json() == {"error": "invalid_client"}


def test_faults_and_refusals_are_counted_and_run_out(pool, ca):
    pool.inject("token", status=503, count=1)
    pool.refuse_next("invalid_grant")
    assert post(pool, "grant_type=client_credentials", reader_auth(pool), ca).status_code == 503
    assert post(pool, "grant_type=client_credentials", reader_auth(pool), ca).json() == {"error": "invalid_grant"}
    assert post(pool, "grant_type=client_credentials", reader_auth(pool), ca).status_code == 200
    assert pool.calls["token"] == 3


def test_the_pool_refuses_impossible_clients(ca):
    pool = CognitoEmulator(ca)
    pool.add_resource_server("orders", ["read"])
    with pytest.raises(ValueError):
        pool.add_client("x", scopes=("orders/write",))
    with pytest.raises(ValueError):
        pool.add_client("y", scopes=("orders/read",), lifetime=60)


# -- the protected API ------------------------------------------------------------------------
def token(pool, ca, client: str = "reader", scope: str = READ) -> str:
    secret = pool.clients[client].secret
    reply = post(pool, f"grant_type=client_credentials&scope={scope}", basic(client, secret), ca)
    assert reply.status_code == 200, reply.text
    return reply.json()["access_token"]


def call(api, ca, path: str, authorization: str | None) -> requests.Response:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return requests.get(api.url + path, headers=headers, verify=str(ca.ca_path), timeout=10)


def test_api_accepts_a_valid_token_with_or_without_bearer(pool, api, ca):
    access = token(pool, ca)
    assert call(api, ca, "/orders", f"Bearer {access}").json()["client_id"] == "reader"
    assert call(api, ca, "/orders", access).status_code == 200
    assert api.calls["verified"] == 2 and pool.calls["jwks"] == 1  # keys cached


def test_api_401_for_missing_forged_foreign_or_expired_tokens(pool, api, ca):
    access = token(pool, ca)
    assert call(api, ca, "/orders", None).status_code == 401
    header, payload, signature = access.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = f"{READ} {WRITE}"  # a wider scope, with the original signature
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    forged = f"{header}.{forged_payload}.{signature}"
    reply = call(api, ca, "/orders", f"Bearer {forged}")
    assert (reply.status_code, reply.json()) == (401, {"message": "Unauthorized"})

    other = CognitoEmulator(ca, pool_id=pool.pool_id)  # same pool id, another signing key
    other.add_resource_server("orders", ["read"])
    other.add_client("reader", scopes=(READ,))
    with other:
        foreign = token(other, ca)
    assert call(api, ca, "/orders", f"Bearer {foreign}").status_code == 401

    api.advance(3601)
    assert call(api, ca, "/orders", f"Bearer {access}").status_code == 401
    assert api.rejections == ["no token", "invalid token: InvalidSignatureError", "unknown kid", "expired"]


def test_api_401_for_a_client_it_does_not_serve_and_403_for_a_missing_scope(pool, api, ca):
    pool.add_client("stranger", scopes=(READ,))
    assert call(api, ca, "/orders", f"Bearer {token(pool, ca, 'stranger')}").status_code == 401
    reply = call(api, ca, "/orders/new", f"Bearer {token(pool, ca)}")
    assert (reply.status_code, reply.json()) == (403, {"message": "Forbidden"})
    assert api.rejections == ["client not allowed", f"missing scope {WRITE}"]


def test_api_checks_the_issuer_and_token_use(pool, api, ca):
    now = int(time.time())
    base = {"sub": "reader", "client_id": "reader", "scope": READ, "iat": now, "exp": now + 600, "jti": "x"}
    minted = [
        {**base, "iss": pool.issuer + "-other", "token_use": "access"},
        {**base, "iss": pool.issuer, "token_use": "id"},
        {**base, "iss": pool.issuer, "token_use": "access"},
    ]
    replies = [
        call(api, ca, "/orders", "Bearer " + jwt.encode(claims, pool._private_key, "RS256", {"kid": pool.kid}))
        for claims in minted
    ]
    assert [r.status_code for r in replies] == [401, 401, 200]
    assert api.rejections == ["wrong issuer", "not an access token"]


def test_the_demo_pool_profile_and_api_work_together(ca, gw_home):
    """What gw demo will run: start_cognito_demo, demo_profile, the secret in the vault, gw env."""
    from gw_emulators.demo.cognito import demo_profile, start_cognito_demo

    pool, api, client = start_cognito_demo(ca)
    try:
        gw_home.write_config(demo_profile(pool, client))
        gw_home.vault_set("gw-demo-m2m-secret", client.secret)
        result = gw_home.run_in_process("env", "--profile", "m2m", "--format", "json")
        assert result.returncode == 0, result.stderr
        access = json.loads(result.stdout)["GW_BEARER_TOKEN"]
        reply = call(api, ca, "/items", f"Bearer {access}")
        assert (reply.status_code, reply.json()["scopes"]) == (200, ["gw-demo/read"])
    finally:
        api.stop()
        pool.stop()
