"""A plugin that raises when its hooks are called: while collecting, and in the audit hook."""

from gw.plugin import hookimpl


@hookimpl
def gw_profile_tables():
    raise KeyError("collecting tables went wrong")
