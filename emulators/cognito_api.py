"""A resource server protected like an API Gateway JWT authorizer with a Cognito issuer.

Modelled on the API Gateway HTTP API JWT authorizer (AWS developer guide, "Controlling
access to HTTP APIs with JWT authorizers") and on the checks the Cognito guide
"Verifying JSON web tokens" asks for, done with PyJWT:

* the token comes in ``Authorization`` (a ``Bearer `` prefix is accepted and stripped);
* its signature is checked (RS256 only) with the key of its ``kid`` from the issuer's
  JWKS, ``<iss>/.well-known/jwks.json``, fetched over HTTPS and cached; an unknown
  ``kid`` refetches the JWKS once;
* ``iss`` must be the configured issuer, ``exp`` in the future (by this server's
  clock), ``token_use`` ``access``, and ``client_id`` (or ``aud``) one of the
  configured audiences;
* failing any of those answers 401 ``{"message": "Unauthorized"}``; a valid token
  without the route's scope answers 403 ``{"message": "Forbidden"}``, as the HTTP API
  authorizer does. (A REST API's Cognito authorizer would answer 401 in both cases.)

A route that passes answers 200 with the caller's client id and scopes, so a test
can see who was let in. ``verified`` counts accepted calls.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .httpserver import EmulatorServer, Request, Response, json_response
from .tls import LocalCA

UNAUTHORIZED = {"message": "Unauthorized"}
FORBIDDEN = {"message": "Forbidden"}


class ProtectedApi(EmulatorServer):
    """``routes`` maps a path to the scope it requires (or None: any valid token)."""

    name = "cognito-api"

    def __init__(self, ca: LocalCA | None, *, issuer: str, audiences: tuple[str, ...],
                 routes: dict[str, str | None], jwks_verify: bool | str | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        super().__init__(ca, clock=clock)
        self.issuer = issuer.rstrip("/")
        self.audiences = tuple(audiences)
        self.routes = dict(routes)
        self.jwks_verify: bool | str = jwks_verify if jwks_verify is not None else (str(ca.ca_path) if ca else True)
        self.rejections: list[str] = []  # why each refused call was refused (for tests)
        self._keys: dict[str, Any] = {}
        self._keys_lock = threading.Lock()
        self.route("GET", r"/.*", self._serve, "api")

    def _serve(self, request: Request) -> Response:
        if request.path not in self.routes:
            return json_response(404, {"message": "Not Found"})
        header = request.header("authorization") or ""
        token = header[7:].strip() if header[:7].lower() == "bearer " else header.strip()
        if not token:
            return self._refuse("no token")
        claims, problem = self.verify(token)
        if claims is None:
            return self._refuse(problem)
        required = self.routes[request.path]
        granted = str(claims.get("scope", "")).split()
        if required is not None and required not in granted:
            self.rejections.append(f"missing scope {required}")
            return json_response(403, FORBIDDEN)
        self.count("verified")
        return json_response(200, {"client_id": claims.get("client_id"), "scopes": granted, "path": request.path})

    def _refuse(self, why: str) -> Response:
        self.rejections.append(why)
        return json_response(401, UNAUTHORIZED)

    def verify(self, token: str) -> tuple[dict[str, Any] | None, str]:
        """(claims, "") for an acceptable access token, else (None, why it is not)."""
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return None, "not a JWT"
        if header.get("alg") != "RS256":
            return None, "algorithm not RS256"
        key = self._key(str(header.get("kid", "")))
        if key is None:
            return None, "unknown kid"
        try:
            claims = jwt.decode(
                token, key, algorithms=["RS256"], issuer=self.issuer,
                # exp/iat are checked against this server's (injectable) clock below.
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_aud": False,
                         "require": ["exp", "iss", "token_use"]},
            )
        except jwt.InvalidIssuerError:
            return None, "wrong issuer"
        except jwt.PyJWTError as exc:
            return None, f"invalid token: {type(exc).__name__}"
        if not isinstance(claims["exp"], int) or claims["exp"] <= self.clock():
            return None, "expired"
        if claims.get("token_use") != "access":
            return None, "not an access token"
        audience = claims.get("client_id") or claims.get("aud")
        if audience not in self.audiences:
            return None, "client not allowed"
        return claims, ""

    def _key(self, kid: str) -> Any:
        with self._keys_lock:
            if kid not in self._keys:
                self._keys = self._fetch_jwks()
            return self._keys.get(kid)

    def _fetch_jwks(self) -> dict[str, Any]:
        import jwt
        import requests

        try:
            reply = requests.get(f"{self.issuer}/.well-known/jwks.json", timeout=10, verify=self.jwks_verify)
            document = reply.json() if reply.status_code == 200 else {}
        except (requests.RequestException, ValueError):
            return dict(self._keys)
        keys: dict[str, Any] = {}
        for jwk in document.get("keys", []) if isinstance(document, dict) else []:
            try:
                keys[jwk["kid"]] = jwt.PyJWK(jwk).key
            except (KeyError, jwt.PyJWTError):
                continue
        return keys
