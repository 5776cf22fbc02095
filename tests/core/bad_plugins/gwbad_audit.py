"""A plugin whose audit hook raises each time credentials are issued."""

from gw.plugin import hookimpl


@hookimpl
def gw_credentials_issued(profile, credential, from_cache):
    raise ValueError("audit backend down")
