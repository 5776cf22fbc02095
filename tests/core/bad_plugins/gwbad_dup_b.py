"""The other of two plugins offering the same step type."""

from datetime import timedelta

from gw.plugin import BEARER_TOKEN, BearerToken, StepType, hookimpl, utcnow


def _run(ctx, options, upstream):
    now = utcnow()
    return BearerToken(access_token="token-from-b-1234", issued_at=now, expiration=now + timedelta(hours=1))


@hookimpl
def gw_step_types() -> list[StepType]:
    return [StepType("dup-step", run=_run, produces=BEARER_TOKEN),
            StepType("only-b", run=_run, produces=BEARER_TOKEN)]
