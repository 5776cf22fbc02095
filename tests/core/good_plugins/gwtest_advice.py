"""A step type with advice (``StepType.advise``), for tests/core/test_plugin_settings.py:
a ``verbose`` flag that works but is probably a mistake."""

from __future__ import annotations

from gw.plugin import AWS, AwsCredentials, Option, StepType, hookimpl


def _run(ctx, options, upstream) -> AwsCredentials:
    return AwsCredentials(access_key_id="AKIAGWTESTADVICE0000", secret_access_key="advice-test-secret")


def _advise(options) -> list[str]:
    return ["verbose is ignored by this step; drop it"] if options.get("verbose") else []


@hookimpl
def gw_step_types() -> list[StepType]:
    return [StepType("gwtest-advised", run=_run, produces=AWS, options={"verbose": Option(bool, default=False)},
                     advise=_advise)]
