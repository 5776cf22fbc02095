"""gw: turns a named profile into short-lived AWS and SORACOM credentials.

Kept tiny on purpose: the cache-hit path imports this package, so nothing heavy
(pluggy, boto3, requests) may be imported here. Plugins import only :mod:`gw.plugin`.
"""

__version__ = "0.1.0"
