"""An example third-party gw plugin.

Everything a plugin can contribute, in one small module: a step type, a secret
scheme, a command and an audit hook. Only cheap standard-library imports at the
top: gw imports every plugin on each slow-path run.
"""

from __future__ import annotations

import codecs
import os
from datetime import timedelta
from typing import Any

from gw.plugin import (
    BEARER_TOKEN,
    BearerToken,
    Command,
    Credential,
    Option,
    SecretError,
    SecretScheme,
    StepType,
    hookimpl,
    utcnow,
)

AUDIT_ENV = "GW_EXAMPLE_AUDIT"


def run_static_token(ctx, options: dict[str, Any], upstream: Credential | None) -> BearerToken:
    """Hand out the configured token as a bearer token that lives ``lifetime`` seconds."""
    now = utcnow()
    return BearerToken(
        access_token=options["token"],
        expiration=now + timedelta(seconds=options["lifetime"]),
        issued_at=now,
    )


def _check_static_token(options: dict[str, Any]) -> None:
    if not 60 <= options["lifetime"] <= 86400:
        raise ValueError("lifetime must be between 60 and 86400 seconds")


def resolve_rot13(ctx, ref: str) -> str:
    """``rot13:VAR``: the environment variable VAR, rot13-decoded."""
    name = ref[len("rot13:"):]
    value = os.environ.get(name)
    if not name or not value:
        raise SecretError(f"environment variable {name or '(none)'} is not set (needed by a rot13: reference)")
    return codecs.decode(value, "rot13")


def _configure_hello(parser) -> None:
    parser.add_argument("--name", default="world", help="who to greet")


def _run_hello(args, app) -> int:
    app.emit(f"hello, {args.name}, from gw_example_plugin")
    return 0


@hookimpl
def gw_step_types() -> list[StepType]:
    return [
        StepType(
            name="static-token",
            run=run_static_token,
            produces=BEARER_TOKEN,
            options={
                "token": Option((str, dict), required=True, secret=True, help="the token (a secret reference)"),
                "lifetime": Option(int, default=3600, help="seconds the token is handed out for"),
            },
            check=_check_static_token,
            help="A fixed bearer token from a secret reference (example plugin).",
        )
    ]


@hookimpl
def gw_secret_schemes() -> list[SecretScheme]:
    return [SecretScheme(prefix="rot13:", resolve=resolve_rot13, help="an environment variable, rot13-decoded")]


@hookimpl
def gw_commands() -> list[Command]:
    return [Command("example-hello", "say hello (example plugin)", _configure_hello, _run_hello)]


@hookimpl
def gw_credentials_issued(profile: str, credential: Credential, from_cache: bool) -> None:
    """Audit: one line per issuance. Never writes a secret field."""
    path = os.environ.get(AUDIT_ENV)
    if not path:
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"{profile}\t{credential.KIND}\tfrom_cache={str(from_cache).lower()}\n")
