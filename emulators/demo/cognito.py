"""Part ``cognito``: Cognito client credentials for an API behind a JWT authorizer."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from ..cognito import AppClient, CognitoEmulator
from ..tls import LocalCA
from .show import Demo, DemoFailed


def start_cognito_demo(ca: LocalCA, *, scopes: tuple[str, ...] = ("gw-demo/read",)) -> tuple[CognitoEmulator, Any, AppClient]:
    """Start a user pool and a protected API for ``gw demo``: (pool, api, app client).

    The pool has a resource server ``gw-demo`` with ``read`` and ``write`` scopes and one
    machine-to-machine app client allowed ``scopes``; the API (see
    :mod:`gw_emulators.cognito_api`) answers ``GET /items`` to tokens carrying
    ``gw-demo/read``. The caller stops both (``.stop()``).
    """
    from ..cognito_api import ProtectedApi

    pool = CognitoEmulator(ca)
    pool.add_resource_server("gw-demo", ["read", "write"])
    client = pool.add_client("gwdemo", scopes=scopes)
    pool.start()
    api = ProtectedApi(ca, issuer=pool.issuer, audiences=(client.client_id,), routes={"/items": "gw-demo/read"})
    api.start()
    return pool, api, client


def demo_profile(pool: CognitoEmulator, client: AppClient, *, name: str = "m2m",
                 secret_ref: str = "vault:gw-demo-m2m-secret", scopes: tuple[str, ...] = ("gw-demo/read",)) -> str:
    """A config snippet with a ``cognito-m2m`` profile ``name`` for ``client`` of ``pool``.

    The caller stores ``client.secret`` where ``secret_ref`` points (``gw vault set``).
    """
    scope_list = ", ".join(f'"{scope}"' for scope in scopes)
    return (
        f"[profiles.{name}]\n"
        f'description = "Cognito client credentials (emulated user pool {pool.pool_id})"\n'
        f'steps = [{{ use = "cognito-m2m", token_url = "{pool.token_url}", client_id = "{client.client_id}", '
        f'client_secret = "{secret_ref}", scopes = [{scope_list}] }}]\n'
    )


def start_cognito(demo: Demo, stack: ExitStack) -> None:
    """A user pool with a machine client, and an API that checks its tokens."""
    pool, api, client = start_cognito_demo(demo.services["ca"])
    stack.callback(pool.stop)
    stack.callback(api.stop)
    demo.services.update(cognito=pool, cognito_api=api)
    demo.secrets["gw-demo-m2m-secret"] = client.secret or ""
    demo.config_parts.append(demo_profile(pool, client))


def part_cognito(demo: Demo) -> None:
    """A machine with no person at it: Cognito client credentials for an API behind a JWT authorizer."""
    import requests

    api = demo.services["cognito_api"]
    demo.step("Cognito client credentials: a bearer token for an API")
    demo.show("Profile [bold]m2m[/bold]: OAuth 2.0 client-credentials grant against an (emulated) user pool.")
    demo.command('curl -H "$(gw token --profile m2m --format header)" API/items')
    header, cold = demo.gw_run("token", "--profile", "m2m", "--format", "header")
    name, _, value = header.stdout.strip().partition(": ")
    reply = requests.get(f"{api.url}/items", headers={name: value}, verify=demo.env["GW_DEMO_CA"], timeout=30)
    if reply.status_code != 200:
        raise DemoFailed(f"the API refused the token (HTTP {reply.status_code})")
    demo.output(reply.text.strip()[:200])
    _, warm = demo.gw_run("token", "--profile", "m2m", "--format", "header")
    pool = demo.services["cognito"]
    demo.show(f"first token: [bold]{cold * 1000:.0f} ms[/bold] ({pool.calls['token']} token request)   "
              f"again: [bold]{warm * 1000:.0f} ms[/bold] (cached, no request)")
