"""gw: turns a named profile into short-lived AWS and SORACOM credentials.

Kept tiny on purpose: the cache-hit path imports this package, so nothing heavy
(pluggy, boto3, requests) may be imported here. ``hookimpl`` is created lazily.
"""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    if name == "hookimpl":
        import pluggy

        marker = pluggy.HookimplMarker("gw")
        globals()["hookimpl"] = marker
        return marker
    raise AttributeError(name)
