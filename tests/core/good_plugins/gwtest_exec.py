"""A plugin command that execs a program with a credential (``CommandContext.exec_with``),
for tests/core/test_fast_exec.py. Generic on purpose: the core's fast path must serve any
plugin's command, not only ``gw soracom``.

* step ``test-pass`` (source -> ``test-pass``, a kind of this plugin's own): a fresh secret per
  fetch (``GWTEST_FETCHES`` counts fetches), lifetime ``lifetime`` seconds.
* command ``gw pass-run --profile P -- ARGS``: appends a line to ``$GWTEST_SLOW`` (so a test
  sees that the slow path ran), then execs ``$GWTEST_PROGRAM`` (default ``gwtest-child`` on
  PATH) with the secret in argv and environment.
* command ``gw pass-bad --profile P -- ARGS``: a plugin bug (a placeholder naming no field).
* command ``gw pass-literal --profile P -- ARGS``: the secret written literally into argv.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from gw.plugin import Command, Credential, Option, StepType, hookimpl, profile_option, utcnow

PROGRAM_ENV = "GWTEST_PROGRAM"


@dataclass
class Pass(Credential):
    """A pass with a secret, a user name and an endpoint."""

    KIND: ClassVar[str] = "test-pass"
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("secret",)

    secret: str
    user: str
    endpoint: str
    serial: int = 0
    expiration: datetime | None = None
    issued_at: datetime | None = None


def _fetch(ctx, options: dict[str, Any], upstream) -> Pass:
    counter = os.environ["GWTEST_FETCHES"]
    with open(counter, "a") as f:
        f.write("x")
    serial = os.path.getsize(counter)
    now = utcnow()
    secret = f"pass-secret-{serial}-Zq9xLw2Kf7Hd3Vn8"
    ctx.add_secret(secret)
    return Pass(secret=secret, user=options["user"], endpoint=options["endpoint"], serial=serial, issued_at=now,
                expiration=now + timedelta(seconds=options["lifetime"]))


def _configure(parser: Any) -> None:
    profile_option(parser, None)
    parser.add_argument("args", nargs=argparse.REMAINDER)


def _pass_args(args: Any) -> list[str]:
    rest = list(args.args)
    return rest[1:] if rest[:1] == ["--"] else rest


def _run(args: Any, ctx) -> int:
    with open(os.environ["GWTEST_SLOW"], "a") as f:
        f.write(f"{args.profile}\n")
    cred = ctx.resolve(args.profile, require="test-pass")
    ctx.exec_with(
        args.profile,
        cred,
        [os.environ.get(PROGRAM_ENV) or "gwtest-child", "--secret={secret}", "--user", "{user}", "--braces={{x}}"],
        {"GWTEST_SECRET": "{secret}", "GWTEST_ENDPOINT": "{endpoint}/v{serial}", "GWTEST_REMOVED": None},
        _pass_args(args),
        depends_on=(PROGRAM_ENV,),
    )
    return 0  # pragma: no cover - exec_with does not return


def _run_bad(args: Any, ctx) -> int:
    cred = ctx.resolve(args.profile, require="test-pass")
    ctx.exec_with(args.profile, cred, ["gwtest-child", "{nope}"], {}, _pass_args(args))
    return 0  # pragma: no cover


def _run_literal(args: Any, ctx) -> int:
    cred = ctx.resolve(args.profile, require="test-pass")
    ctx.exec_with(args.profile, cred, ["gwtest-child", f"--secret={cred.secret}"], {}, _pass_args(args))
    return 0  # pragma: no cover


@hookimpl
def gw_credential_kinds() -> list[type[Credential]]:
    return [Pass]


@hookimpl
def gw_step_types() -> list[StepType]:
    return [StepType("test-pass", run=_fetch, produces="test-pass",
                     options={"user": Option(str, required=True), "endpoint": Option(str, default="https://pass.test"),
                              "lifetime": Option(int, default=3600)})]


@hookimpl
def gw_commands() -> list[Command]:
    return [Command("pass-run", "run gwtest-child with the pass", _configure, _run),
            Command("pass-bad", "a command with a placeholder naming no field", _configure, _run_bad),
            Command("pass-literal", "a command putting the secret itself into argv", _configure, _run_literal)]
