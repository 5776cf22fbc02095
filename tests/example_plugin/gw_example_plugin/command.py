"""The command ``gw example-whoami --profile P``: which client the profile's token belongs to.

A command gets a ``CommandContext``: it resolves a profile (cached like every other fetch),
reads a step's options and writes its result to stdout with ``emit``.
"""

from __future__ import annotations

import argparse
from typing import cast

from gw.plugin import BEARER_TOKEN, BearerToken, Command, CommandContext, StepError, http_request, profile_option

from .step import UPSTREAM


def configure(parser: argparse.ArgumentParser) -> None:
    profile_option(parser)


def run(args: argparse.Namespace, ctx: CommandContext) -> int:
    token = cast(BearerToken, ctx.resolve(args.profile, require=BEARER_TOKEN))  # cached, or fetched now
    endpoint = ctx.step_options(args.profile, "example-token")["endpoint"]
    reply = http_request(ctx, "GET", endpoint + "/v1/whoami", what=UPSTREAM,
                         headers={"Authorization": f"Bearer {token.access_token}"})
    if reply.status_code != 200:
        raise StepError(f"{UPSTREAM} did not accept the token of profile {args.profile!r} (HTTP {reply.status_code})")
    ctx.emit(reply.json()["client_id"])
    return 0


COMMAND = Command("example-whoami", "the client a profile's example token belongs to", configure, run,
                  description="Asks the example token service which client the profile's token belongs to.",
                  epilog="example:\n  gw example-whoami --profile example")
