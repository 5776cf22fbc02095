"""Amazon Cognito user pool emulator: the OAuth 2.0 token endpoint and the pool's JWKS.

Follows docs/protocols.md §7 and the AWS developer guide page "The token issuer
endpoint" (https://docs.aws.amazon.com/cognito/latest/developerguide/token-endpoint.html):

* ``POST /oauth2/token`` with ``Content-Type: application/x-www-form-urlencoded``;
  the app client authenticates with ``Authorization: Basic b64(client_id:client_secret)``
  (``client_secret_basic``) or with ``client_id``/``client_secret`` in the form
  (``client_secret_post``), both of which the AWS page documents. How Cognito decodes the
  Basic value is not documented: RFC 6749 section 2.3.1 form-urlencodes id and secret before
  joining them, the AWS page and samples show them joined raw. Cognito's ids and secrets
  (letters, digits, ``_`` and ``+``: AddUserPoolClientSecret in the API reference) read
  the same both ways except for ``+``, so the emulator is tolerant and takes either: the
  raw value, or its form-decoded one.
  A request that carries both a Basic header and form credentials naming another client or
  another secret is ``invalid_request`` (RFC 6749 section 5.2: more than one mechanism).
  ``grant_type=client_credentials`` and an optional space-separated ``scope`` of
  ``<resource server identifier>/<scope name>`` custom scopes. Without ``scope``
  Cognito grants every custom scope the app client allows.
* 200 ``{"access_token", "expires_in", "token_type": "Bearer"}``; every refusal is
  400 ``{"error": "invalid_request|invalid_client|invalid_grant|invalid_scope|
  unauthorized_client|unsupported_grant_type"}``.
* Access tokens are RS256 JWTs with a ``kid`` header and Cognito's claims for a
  client-credentials token: ``sub`` and ``client_id`` (the app client), ``token_use``
  ``access``, ``scope``, ``iss`` ``https://cognito-idp.<region>.amazonaws.com/<pool id>``,
  ``exp``, ``iat``, ``auth_time``, ``jti``, ``version`` 2.
* The verification keys are at ``<iss>/.well-known/jwks.json``. Real Cognito serves
  them from the ``cognito-idp`` host, not the pool's domain; the emulator serves
  both on one port, so here ``iss`` is ``<emulator url>/<pool id>`` and a verifier
  finds the JWKS exactly as it would upstream: ``iss + "/.well-known/jwks.json"``.

Test hooks: the base class's clock (``clock``/``advance``) and per-route faults
(``inject("token", status=503)``), plus :meth:`CognitoEmulator.refuse_next` for an
OAuth error body that the request itself would not cause (``invalid_grant`` for a
client-credentials request, say).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .httpserver import EmulatorServer, Request, Response, json_response
from .tls import LocalCA

OAUTH_ERRORS = (
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "invalid_scope",
    "unauthorized_client",
    "unsupported_grant_type",
)
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
# Cognito lets an app client's access tokens live 5 minutes to 1 day (default 60 minutes).
MIN_LIFETIME, MAX_LIFETIME, DEFAULT_LIFETIME = 300, 86400, 3600
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass
class AppClient:
    """A user pool app client.

    ``scopes`` are the custom scopes it may ask for; ``flows`` the OAuth grant types
    enabled on it (``client_credentials`` for machine-to-machine clients);
    ``lifetime`` its access-token validity in seconds. ``claim_lifetime`` is a test
    knob: when set, the token's ``exp`` claim says this instead of ``lifetime``
    (``expires_in`` still says ``lifetime``), to exercise a client's cross-check.
    """

    client_id: str
    secret: str | None
    scopes: tuple[str, ...] = ()
    flows: tuple[str, ...] = ("client_credentials",)
    lifetime: int = DEFAULT_LIFETIME
    claim_lifetime: int | None = None


@dataclass
class IssuedToken:
    client_id: str
    scope: str
    token: str
    expires_at: int


@dataclass
class _Refusal:
    error: str
    status: int
    count: int


class CognitoEmulator(EmulatorServer):
    """A Cognito user pool with a domain: app clients, resource servers, tokens, JWKS."""

    name = "cognito"

    def __init__(self, ca: LocalCA | None = None, *, pool_id: str = "us-east-1_gwEmu0001",
                 region: str = "us-east-1", clock: Callable[[], float] | None = None) -> None:
        super().__init__(ca, clock=clock)
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.pool_id = pool_id
        self.region = region
        self.resource_servers: dict[str, set[str]] = {}
        self.clients: dict[str, AppClient] = {}
        self.issued: list[IssuedToken] = []
        self.kid = uuid.uuid4().hex
        self._private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._refusals: list[_Refusal] = []
        self._state = threading.Lock()
        self.route("POST", "/oauth2/token", self._token, "token")
        self.route("GET", rf"/{pool_id}/\.well-known/jwks\.json", self._jwks, "jwks")
        self.route("GET", rf"/{pool_id}/\.well-known/openid-configuration", self._discovery, "openid-configuration")

    # -- configuration ---------------------------------------------------------
    def add_resource_server(self, identifier: str, scopes: list[str] | tuple[str, ...]) -> None:
        """A resource server ``identifier`` with custom scopes ``identifier/<name>``."""
        self.resource_servers.setdefault(identifier, set()).update(scopes)

    def add_client(self, client_id: str | None = None, *, secret: str | None = "", scopes: tuple[str, ...] = (),
                   flows: tuple[str, ...] = ("client_credentials",), lifetime: int = DEFAULT_LIFETIME,
                   claim_lifetime: int | None = None) -> AppClient:
        """Add an app client; ``secret=""`` generates one, ``None`` makes a public client."""
        if not MIN_LIFETIME <= lifetime <= MAX_LIFETIME:
            raise ValueError(f"access token validity must be {MIN_LIFETIME}..{MAX_LIFETIME} s")
        for scope in scopes:
            server, _, name = scope.rpartition("/")
            if name not in self.resource_servers.get(server, set()):
                raise ValueError(f"{scope!r} is not a custom scope of a resource server of this pool")
        client = AppClient(
            client_id=client_id or secrets.token_hex(13)[:26],
            secret=secrets.token_urlsafe(40) if secret == "" else secret,
            scopes=tuple(scopes),
            flows=tuple(flows),
            lifetime=lifetime,
            claim_lifetime=claim_lifetime,
        )
        self.clients[client.client_id] = client
        return client

    def refuse_next(self, error: str, *, status: int = 400, count: int = 1) -> None:
        """Answer the next ``count`` token requests with ``{"error": error}`` and ``status``."""
        with self._state:
            self._refusals.append(_Refusal(error, status, count))

    # -- addresses ---------------------------------------------------------------
    @property
    def token_url(self) -> str:
        return f"{self.url}/oauth2/token"

    @property
    def issuer(self) -> str:
        return f"{self.url}/{self.pool_id}"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/.well-known/jwks.json"

    def public_jwk(self) -> dict[str, Any]:
        from jwt.algorithms import RSAAlgorithm

        jwk = RSAAlgorithm.to_jwk(self._private_key.public_key(), as_dict=True)
        return {"alg": "RS256", "e": jwk["e"], "kid": self.kid, "kty": "RSA", "n": jwk["n"], "use": "sig"}

    # -- handlers -------------------------------------------------------------------
    def _jwks(self, request: Request) -> Response:
        return json_response(200, {"keys": [self.public_jwk()]})

    def _discovery(self, request: Request) -> Response:
        return json_response(200, {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_url,
            "token_endpoint": self.token_url,
            "grant_types_supported": list(GRANT_TYPES),
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        })

    def _take_refusal(self) -> _Refusal | None:
        with self._state:
            if not self._refusals:
                return None
            refusal = self._refusals[0]
            refusal.count -= 1
            if refusal.count <= 0:
                self._refusals.pop(0)
            return refusal

    def _token(self, request: Request) -> Response:
        refusal = self._take_refusal()
        if refusal is not None:
            return _error(refusal.error, refusal.status)
        content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return _error("invalid_request")
        try:
            form = {k: v[-1] for k, v in request.form().items()}
        except UnicodeDecodeError:
            return _error("invalid_request")
        grant_type = form.get("grant_type")
        if not grant_type:
            return _error("invalid_request")
        client = self._authenticate(request, form)
        if isinstance(client, str):
            return _error(client)
        if client is None:
            return _error("invalid_client")
        if grant_type not in GRANT_TYPES:
            return _error("unsupported_grant_type")
        if grant_type != "client_credentials":
            # This pool issues no authorization codes or refresh tokens: any such grant is unknown.
            return _error("invalid_grant" if grant_type in client.flows else "unauthorized_client")
        if "client_credentials" not in client.flows or client.secret is None:
            return _error("unauthorized_client")
        requested = form.get("scope", "").split()
        if requested:
            if any(scope not in client.scopes for scope in requested):
                return _error("invalid_scope")
            granted = list(dict.fromkeys(requested))
        else:
            granted = list(client.scopes)
        if not granted:
            return _error("invalid_scope")
        return self._issue(client, " ".join(granted))

    def _authenticate(self, request: Request, form: dict[str, str]) -> AppClient | str | None:
        """The app client the request authenticates as (HTTP Basic, or the form), None when
        authentication fails, or ``"invalid_request"`` when Basic and the form disagree."""
        header = request.header("authorization")
        if not header:
            return self._client(form.get("client_id", ""), form.get("client_secret", ""))
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            raw_id, sep, raw_secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if not sep:
            return None
        client = None
        for client_id, secret in _basic_readings(raw_id, raw_secret):
            client = self._client(client_id, secret)
            if client is not None:
                break
        body_id, body_secret = form.get("client_id"), form.get("client_secret")
        if client is not None and (
            (body_id is not None and body_id != client.client_id)
            or (body_secret is not None and not _same(body_secret, client.secret or ""))
        ):
            return "invalid_request"
        if client is None and body_secret is not None:
            return "invalid_request"  # two mechanisms, and the Basic one does not even hold
        return client

    def _client(self, client_id: str, secret: str) -> AppClient | None:
        client = self.clients.get(client_id)
        if client is None or client.secret is None or not _same(secret, client.secret):
            return None
        return client

    def _issue(self, client: AppClient, scope: str) -> Response:
        import jwt

        now = int(self.clock())
        claim_lifetime = client.claim_lifetime if client.claim_lifetime is not None else client.lifetime
        claims = {
            "sub": client.client_id,
            "token_use": "access",
            "scope": scope,
            "auth_time": now,
            "iss": self.issuer,
            "exp": now + claim_lifetime,
            "iat": now,
            "version": 2,
            "jti": str(uuid.uuid4()),
            "client_id": client.client_id,
        }
        token = jwt.encode(claims, self._private_key, algorithm="RS256", headers={"kid": self.kid})
        with self._state:
            self.issued.append(IssuedToken(client.client_id, scope, token, now + claim_lifetime))
        body = {"access_token": token, "expires_in": client.lifetime, "token_type": "Bearer"}
        return json_response(200, body, NO_STORE)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _basic_readings(client_id: str, secret: str) -> list[tuple[str, str]]:
    """The (id, secret) a Basic value may mean: as sent, then form-decoded (RFC 6749 section 2.3.1)."""
    from urllib.parse import unquote_plus

    readings = [(client_id, secret)]
    try:
        decoded = (unquote_plus(client_id, errors="strict"), unquote_plus(secret, errors="strict"))
    except UnicodeDecodeError:
        return readings
    if decoded != readings[0]:
        readings.append(decoded)
    return readings


def _error(error: str, status: int = 400) -> Response:
    return json_response(status, {"error": error}, NO_STORE)


__all__ = ["OAUTH_ERRORS", "AppClient", "CognitoEmulator", "IssuedToken"]
