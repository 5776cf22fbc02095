"""A plugin offering a command under the name of a core command (``gw env``)."""

from gw.plugin import Command, hookimpl


@hookimpl
def gw_commands() -> list[Command]:
    return [Command("env", help="clashes with gw env", configure=lambda parser: None, run=lambda args, ctx: 0)]
