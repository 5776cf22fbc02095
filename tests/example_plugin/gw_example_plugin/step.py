"""The step type ``example-token``: a bearer token from the example token service.

``POST <endpoint>/v1/token`` with the client's id and secret; the answer's ``token`` lives
``expires_in`` seconds (the service is described in ``../example_emulator.py``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from gw.plugin import (
    BEARER_TOKEN,
    BearerToken,
    Credential,
    Option,
    StepContext,
    StepError,
    StepType,
    check_expiry,
    http_request,
    utcnow,
)

UPSTREAM = "the example token service"


def run(ctx: StepContext, options: dict[str, Any], upstream: Credential | None) -> BearerToken:
    """Ask the service for a token. ``options`` are checked, defaults filled in, and the secret
    option arrives resolved (``client_secret = "rot13:VAR"`` is the text behind it)."""
    with ctx.status(f"Asking {UPSTREAM} for a token ..."):  # a spinner on a terminal only
        reply = http_request(ctx, "POST", options["endpoint"] + "/v1/token", what=UPSTREAM,
                             json={"client_id": options["client_id"], "client_secret": options["client_secret"]})
    if reply.status_code == 401:
        raise StepError(f"{UPSTREAM} refused client {options['client_id']!r}: check client_id and client_secret")
    if reply.status_code != 200:
        raise StepError(f"{UPSTREAM} answered HTTP {reply.status_code}")
    try:
        body = reply.json()
        token, lifetime = body["token"], int(body["expires_in"])
    except (ValueError, KeyError, TypeError):
        raise StepError(f"{UPSTREAM} sent an answer without token and expires_in") from None
    if not isinstance(token, str) or not token:
        raise StepError(f"{UPSTREAM} sent an empty token")
    now = utcnow()
    expiration = now + timedelta(seconds=lifetime)
    check_expiry(expiration, UPSTREAM, reply.headers.get("Date"), warn=ctx.warn)  # this computer's clock
    return BearerToken(access_token=token, issued_at=now, expiration=expiration)  # cached until near expiry


def check(options: dict[str, Any]) -> None:
    """Rules across options, checked by ``gw check`` and before every run: one line, a ValueError."""
    endpoint = options["endpoint"]
    if not endpoint.startswith("https://") or endpoint.endswith("/"):
        raise ValueError("endpoint must be an https:// URL without a trailing slash")


STEP_TYPE = StepType(
    name="example-token",
    run=run,
    produces=BEARER_TOKEN,
    consumes=(),  # a source step: it comes first in a chain
    options={
        "endpoint": Option(str, required=True, help="the service's base URL (https://...)"),
        "client_id": Option(str, required=True, help="the client's id"),
        "client_secret": Option((str, dict), required=True, secret=True, help="the client's secret (a reference)"),
    },
    check=check,
    help="A bearer token from the example token service (example plugin).",
)
