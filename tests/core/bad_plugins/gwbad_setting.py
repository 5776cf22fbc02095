"""A plugin declaring a setting under a name gw itself uses."""

from gw.plugin import Option, Setting, hookimpl


@hookimpl
def gw_settings() -> list[Setting]:
    return [Setting("lock_timeout", Option(int, default=5))]
