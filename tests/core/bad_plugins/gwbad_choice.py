"""A plugin whose option default is not one of the option's choices."""

from gw.plugin import AWS, Option, StepType, hookimpl


@hookimpl
def gw_step_types() -> list[StepType]:
    return [StepType("bad-choice", run=lambda ctx, o, u: None, produces=AWS,
                     options={"mode": Option(str, default="fast", choices=("slow", "careful"))})]
