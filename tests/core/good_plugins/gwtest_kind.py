"""A plugin with a credential kind of its own (``gw_credential_kinds``), for tests/core/test_plugin_kinds.py."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from gw.plugin import Credential, StepType, hookimpl, utcnow


@dataclass
class Ticket(Credential):
    """A ticket with a secret and an expiry."""

    KIND: ClassVar[str] = "test-ticket"
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("secret",)

    secret: str
    serial: int = 0
    expiration: datetime | None = None
    issued_at: datetime | None = None

    def env(self) -> dict[str, str]:
        return {"TEST_TICKET": self.secret, "TEST_TICKET_SERIAL": str(self.serial)}


def _run(ctx, options, upstream) -> Ticket:
    counter = os.environ["GWTEST_COUNTER"]
    with open(counter, "a") as f:
        f.write("x")
    now = utcnow()
    return Ticket(secret="ticket-secret-value-42", serial=os.path.getsize(counter), issued_at=now,
                  expiration=now + timedelta(hours=1))


@hookimpl
def gw_credential_kinds() -> list[type[Credential]]:
    return [Ticket]


@hookimpl
def gw_step_types() -> list[StepType]:
    return [StepType("test-ticket", run=_run, produces="test-ticket")]
