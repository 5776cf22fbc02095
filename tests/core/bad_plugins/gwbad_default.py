"""A plugin whose option default does not match the option's type."""

from gw.plugin import AWS, Option, StepType, hookimpl


@hookimpl
def gw_step_types() -> list[StepType]:
    return [StepType("bad-default", run=lambda ctx, o, u: None, produces=AWS,
                     options={"retries": Option(int, default="three")})]
