"""A plugin whose step type names a credential kind that does not exist (a typo)."""

from gw.plugin import Option, StepType, hookimpl


@hookimpl
def gw_step_types() -> list[StepType]:
    return [StepType("bad-kind", run=lambda ctx, o, u: None, produces="aws-credential",
                     options={"x": Option(str)})]
