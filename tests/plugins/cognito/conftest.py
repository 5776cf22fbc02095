"""Fixtures for the Cognito tests: a user pool emulator, an API protected by its tokens,
and a gw home with an m2m profile (written through :func:`write_m2m`)."""

from __future__ import annotations

from typing import Any

import pytest
import tomli_w

from gw_emulators.cognito import AppClient, CognitoEmulator
from gw_emulators.cognito_api import ProtectedApi

READ, WRITE = "orders/read", "orders/write"


@pytest.fixture
def pool(ca):
    """A user pool with resource server ``orders`` (read, write) and app client ``reader``
    (client credentials, allowed ``orders/read`` only), served over TLS on 127.0.0.1."""
    emulator = CognitoEmulator(ca)
    emulator.add_resource_server("orders", ["read", "write"])
    emulator.add_client("reader", scopes=(READ,))
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def api(ca, pool):
    """GET /orders needs orders/read, GET /orders/new needs orders/write; only ``reader`` is let in."""
    server = ProtectedApi(ca, issuer=pool.issuer, audiences=("reader",), routes={"/orders": READ, "/orders/new": WRITE})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def write_m2m(home, pool: CognitoEmulator, client: AppClient | None = None, *, name: str = "m2m",
              secret_ref: str = "env:COGNITO_SECRET", **options: Any) -> dict[str, Any]:
    """Write a config with one cognito-m2m profile ``name``; the secret goes in ``$COGNITO_SECRET``.

    Returns the step table written (``options`` override or add to it; None drops a key).
    """
    client = client or pool.clients["reader"]
    step: dict[str, Any] = {
        "use": "cognito-m2m",
        "token_url": pool.token_url,
        "client_id": client.client_id,
        "client_secret": secret_ref,
        "scopes": [READ],
    }
    step.update(options)
    step = {k: v for k, v in step.items() if v is not None}
    if client.secret is not None:
        home.env["COGNITO_SECRET"] = client.secret
    home.write_config(tomli_w.dumps({"profiles": {name: {"steps": [step]}}}))
    return step
