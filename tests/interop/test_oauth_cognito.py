"""OAuth 2.0 client credentials with parts gw did not write (docs/protocols.md §7).

* gw's ``cognito-m2m`` step (the real ``gw`` executable) against authlib's
  ``AuthorizationServer`` (``authlib.integrations.flask_oauth2`` with
  ``authlib.oauth2.rfc6749.grants.ClientCredentialsGrant``), served by werkzeug over real
  HTTPS on 127.0.0.1, in both client authentication methods, with secrets holding ``%``,
  ``+``, ``:`` and non-ASCII characters. authlib reads Basic as RFC 6749 section 2.3.1 says
  (``extract_basic_authorization`` in authlib/oauth2/rfc6749/util.py percent-decodes id and
  secret), so a client that skips the form-encoding loses ``%41`` to ``A``.
* A server that allows only ``client_secret_post`` (the client's
  ``check_endpoint_auth_method``): gw with ``auth_method = "client_secret_post"`` gets a
  token; with the default it gets one clear line naming the option.
* requests-oauthlib (``OAuth2Session`` + ``BackendApplicationClient``, ``fetch_token``) and
  authlib's requests client (``authlib.integrations.requests_client.OAuth2Session``) against
  gw's Cognito emulator, in both methods. Both send Basic unencoded (requests'
  ``HTTPBasicAuth``; authlib's ``encode_client_secret_basic`` in authlib/oauth2/auth.py
  joins id and secret raw, although authlib's server decodes them), so the emulator takes
  the raw reading as well as the RFC one; the pool's secret holds ``+``, where they differ.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import jwt
import pytest

from gw.testing import GwHome, assert_clean_failure
from gw_emulators.cognito import CognitoEmulator

pytest.importorskip("authlib")
pytest.importorskip("requests_oauthlib")
pytest.importorskip("flask")

BOTH = ("client_secret_basic", "client_secret_post")
SCOPE = "orders/read"
# (client id, secret): each secret holds %, +, : and non-ASCII; "%41" reads "A" to a decoder
# when sent unencoded, "+" reads " " to a form decoder, ":" would split a Basic value.
ODD_CLIENTS = [
    ("gw-m2m", "s3cr%41t+plus:colon-\u00e9\u00fc\u20ac-" + "x" * 8),
    ("gw:odd+id%20", "%2B%%+::\u00f1\u65e5\u672c-" + "y" * 8),
]


# -- an authlib authorization server -------------------------------------------------------
@dataclass
class AuthlibClient:
    """The ``ClientMixin`` authlib's server asks about (authlib/oauth2/rfc6749/models.py)."""

    client_id: str
    client_secret: str
    auth_method: str
    scope: str = SCOPE

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str) -> str:
        allowed = set(self.scope.split())
        return " ".join(s for s in (scope or "").split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret.encode(), self.client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method == self.auth_method

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


@dataclass
class AuthlibServer:
    """authlib's AuthorizationServer over werkzeug's HTTPS server on 127.0.0.1."""

    url: str
    clients: dict[str, AuthlibClient]
    tokens: list[dict] = field(default_factory=list)
    auth_methods_seen: list[str] = field(default_factory=list)

    @property
    def token_url(self) -> str:
        return f"{self.url}/oauth/token"


@pytest.fixture
def authlib_server(ca) -> Iterator[AuthlibServer]:
    import ssl

    from authlib.integrations.flask_oauth2 import AuthorizationServer
    from authlib.oauth2.rfc6749 import grants
    from flask import Flask
    from werkzeug.serving import make_server

    class ClientCredentials(grants.ClientCredentialsGrant):
        # the grant takes both; each client allows one (check_endpoint_auth_method)
        TOKEN_ENDPOINT_AUTH_METHODS = list(BOTH)

    state = AuthlibServer(url="", clients={})
    app = Flask("authlib-interop")
    app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {"client_credentials": 900}

    def save_token(token: dict, request) -> None:
        state.tokens.append(dict(token, client_id=request.client.get_client_id()))
        state.auth_methods_seen.append(request.auth_method)

    server = AuthorizationServer(app, query_client=state.clients.get, save_token=save_token)
    server.register_grant(ClientCredentials)

    @app.post("/oauth/token")
    def issue_token():
        return server.create_token_response()

    cert = ca.issue("authlib-server")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert.cert_path), str(cert.key_path))
    httpd = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=context)
    state.url = f"https://127.0.0.1:{httpd.server_port}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        thread.join(5)


def m2m_home(tmp_path, ca, token_url: str, client_id: str, secret: str, auth_method: str | None) -> GwHome:
    home = GwHome.create(tmp_path, ca_path=str(ca.ca_path))
    home.env["GWT_M2M_SECRET"] = secret
    method = "" if auth_method is None else f", auth_method = {json.dumps(auth_method)}"
    home.write_config(
        "[profiles.m2m]\n"
        f'steps = [{{ use = "cognito-m2m", token_url = "{token_url}", client_id = {json.dumps(client_id)}, '
        f'client_secret = "env:GWT_M2M_SECRET", scopes = ["{SCOPE}"], retries = 0{method} }}]\n'
    )
    return home


@pytest.mark.parametrize(("client_id", "secret"), ODD_CLIENTS, ids=["odd-secret", "odd-id-and-secret"])
@pytest.mark.parametrize("auth_method", BOTH)
def test_gw_gets_a_token_from_authlib(tmp_path, ca, authlib_server, auth_method, client_id, secret):
    authlib_server.clients[client_id] = AuthlibClient(client_id, secret, auth_method)
    home = m2m_home(tmp_path, ca, authlib_server.token_url, client_id, secret, auth_method)
    result = home.run("token", "--profile", "m2m")
    assert result.returncode == 0, result.stderr
    issued = authlib_server.tokens[-1]
    assert result.stdout == issued["access_token"] + "\n"
    assert issued["client_id"] == client_id and issued["scope"] == SCOPE
    assert authlib_server.auth_methods_seen == [auth_method]
    assert secret not in result.stderr


def test_the_default_method_is_basic(tmp_path, ca, authlib_server):
    client_id, secret = ODD_CLIENTS[0]
    authlib_server.clients[client_id] = AuthlibClient(client_id, secret, "client_secret_basic")
    result = m2m_home(tmp_path, ca, authlib_server.token_url, client_id, secret, None).run("token", "--profile", "m2m")
    assert result.returncode == 0, result.stderr
    assert authlib_server.auth_methods_seen == ["client_secret_basic"]


def test_a_post_only_server_takes_client_secret_post_and_refuses_basic_in_one_line(tmp_path, ca, authlib_server):
    client_id, secret = ODD_CLIENTS[0]
    authlib_server.clients[client_id] = AuthlibClient(client_id, secret, "client_secret_post")
    basic = m2m_home(tmp_path / "basic", ca, authlib_server.token_url, client_id, secret, None)
    line = assert_clean_failure(basic.run("token", "--profile", "m2m"), contains="(invalid_client)")
    assert 'try auth_method = "client_secret_post"' in line, line
    assert authlib_server.tokens == []
    post = m2m_home(tmp_path / "post", ca, authlib_server.token_url, client_id, secret, "client_secret_post")
    result = post.run("token", "--profile", "m2m")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == authlib_server.tokens[-1]["access_token"]


# -- OAuth clients gw did not write, against gw's Cognito emulator ---------------------------
@pytest.fixture
def pool(ca) -> Iterator[CognitoEmulator]:
    emulator = CognitoEmulator(ca)
    emulator.add_resource_server("orders", ["read", "write"])
    # A Cognito secret may hold "+" (AddUserPoolClientSecret: [\w+]+): raw and encoded differ.
    emulator.add_client("m2m0client", secret="Plus+Sign+Secret_" + "z" * 20, scopes=(SCOPE,))
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


def verified_claims(pool: CognitoEmulator, ca, token: str) -> dict:
    import requests

    jwks = requests.get(pool.jwks_url, verify=str(ca.ca_path), timeout=10).json()
    key = jwt.PyJWK(jwks["keys"][0]).key
    return jwt.decode(token, key, algorithms=["RS256"], issuer=pool.issuer)


@pytest.mark.parametrize("auth_method", BOTH)
def test_requests_oauthlib_fetches_a_token_from_the_emulator(pool, ca, auth_method):
    from oauthlib.oauth2 import BackendApplicationClient
    from requests_oauthlib import OAuth2Session

    client = pool.clients["m2m0client"]
    session = OAuth2Session(client=BackendApplicationClient(client_id=client.client_id), scope=[SCOPE])
    # requests-oauthlib: Basic (requests' HTTPBasicAuth, unencoded) unless include_client_id=True,
    # which puts client_id and client_secret in the body instead.
    token = session.fetch_token(pool.token_url, client_id=client.client_id, client_secret=client.secret,
                                include_client_id=auth_method == "client_secret_post", verify=str(ca.ca_path),
                                timeout=10)
    assert token["token_type"] == "Bearer" and token["expires_in"] == 3600
    assert token["access_token"] == pool.issued[-1].token
    claims = verified_claims(pool, ca, token["access_token"])
    assert claims["client_id"] == client.client_id and claims["scope"] == SCOPE
    assert token["expires_at"] == pytest.approx(time.time() + 3600, abs=60)


@pytest.mark.parametrize("auth_method", BOTH)
def test_authlib_client_fetches_a_token_from_the_emulator(pool, ca, auth_method):
    from authlib.integrations.requests_client import OAuth2Session

    client = pool.clients["m2m0client"]
    with OAuth2Session(client.client_id, client.secret, token_endpoint_auth_method=auth_method,
                       scope=SCOPE) as session:
        token = session.fetch_token(pool.token_url, grant_type="client_credentials", verify=str(ca.ca_path),
                                    timeout=10)
    assert token["access_token"] == pool.issued[-1].token
    claims = verified_claims(pool, ca, token["access_token"])
    assert claims["client_id"] == client.client_id and claims["scope"] == SCOPE


def test_a_wrong_secret_is_refused_to_both_clients(pool, ca):
    from authlib.integrations.base_client import OAuthError
    from authlib.integrations.requests_client import OAuth2Session as AuthlibSession
    from oauthlib.oauth2 import BackendApplicationClient, InvalidClientError
    from requests_oauthlib import OAuth2Session

    client = pool.clients["m2m0client"]
    with AuthlibSession(client.client_id, client.secret + "x", scope=SCOPE) as session, \
            pytest.raises(OAuthError) as refused:
        session.fetch_token(pool.token_url, grant_type="client_credentials", verify=str(ca.ca_path), timeout=10)
    assert refused.value.error == "invalid_client"
    session = OAuth2Session(client=BackendApplicationClient(client_id=client.client_id), scope=[SCOPE])
    with pytest.raises(InvalidClientError):
        session.fetch_token(pool.token_url, client_id=client.client_id, client_secret=client.secret + "x",
                            verify=str(ca.ca_path), timeout=10)
    assert pool.issued == [] and pool.calls["token"] == 2
