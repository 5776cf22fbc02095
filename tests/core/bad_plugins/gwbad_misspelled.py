"""A plugin whose hook name has a typo (gw_secret_scheme instead of gw_secret_schemes)."""

from gw.plugin import SecretScheme, hookimpl


@hookimpl
def gw_secret_scheme() -> list[SecretScheme]:
    return [SecretScheme("typo:", lambda ctx, ref: "x")]
