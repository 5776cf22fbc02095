"""The example token service: a local stand-in for the upstream of the ``example-token`` step.

An emulator is test code, never part of the plugin: the plugin's package
(``gw_example_plugin``) does not import it, and ``pyproject.toml`` does not ship it. It
builds on gw's shared emulator base, ``gw_emulators.httpserver.EmulatorServer``: HTTPS on
127.0.0.1 (a certificate from ``gw_emulators.tls.LocalCA``), routes, call counts per
route, an injectable clock and fault injection (``inject("token", status=503)``).

The service is imaginary, so its protocol is written here (a real upstream's emulator follows
that upstream's documentation and the real clients' source instead, and cites them):

* ``POST /v1/token`` with JSON ``{"client_id": ..., "client_secret": ...}``:
  200 ``{"token": ..., "expires_in": <seconds>}``; 401 ``{"message": ...}`` for an unknown
  client or a wrong secret; 400 for a body that is not such a JSON object.
* ``GET /v1/whoami`` with ``Authorization: Bearer <token>``: 200 ``{"client_id": ...}`` while
  the token lives (by the emulator's clock); 401 otherwise.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections.abc import Callable

from gw_emulators.httpserver import EmulatorServer, Request, Response, json_response
from gw_emulators.tls import LocalCA


class ExampleTokenService(EmulatorServer):
    """The example token service; ``clients`` maps each client id to its secret."""

    name = "example-token-service"

    def __init__(self, ca: LocalCA, clients: dict[str, str], *, lifetime: int = 900,
                 clock: Callable[[], float] | None = None) -> None:
        super().__init__(ca, clock=clock)
        self.clients = dict(clients)
        self.lifetime = lifetime
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (client id, expires at)
        self._tokens_lock = threading.Lock()
        self.route("POST", "/v1/token", self._token, name="token")
        self.route("GET", "/v1/whoami", self._whoami, name="whoami")

    def _token(self, request: Request) -> Response:
        try:
            body = request.json()
            client_id, secret = body["client_id"], body["client_secret"]
        except (ValueError, KeyError, TypeError):
            return json_response(400, {"message": "expected a JSON object with client_id and client_secret"})
        expected = self.clients.get(client_id) if isinstance(client_id, str) else None
        if expected is None or not isinstance(secret, str) or not hmac.compare_digest(expected, secret):
            return json_response(401, {"message": "unknown client or wrong secret"})
        token = "ext-" + secrets.token_urlsafe(24)
        with self._tokens_lock:
            self.tokens[token] = (client_id, self.clock() + self.lifetime)
        return json_response(200, {"token": token, "expires_in": self.lifetime})

    def _whoami(self, request: Request) -> Response:
        scheme, _, token = (request.header("authorization") or "").partition(" ")
        with self._tokens_lock:
            issued = self.tokens.get(token) if scheme == "Bearer" else None
        if issued is None or issued[1] <= self.clock():
            return json_response(401, {"message": "no valid bearer token"})
        return json_response(200, {"client_id": issued[0]})
