"""A plugin whose hook returns one object instead of a list."""

from gw.plugin import Command, hookimpl


@hookimpl
def gw_commands() -> Command:  # type: ignore[override]
    return Command("lonely", "one command, not a list", lambda p: None, lambda a, c: 0)
