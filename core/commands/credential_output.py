"""What ``gw credential-process`` and ``gw token`` print: the handlers their command lines run.

Apart from the command table (:mod:`gw.commands.credentials`), so that a cache miss of either,
which reaches them without argparse (``gw.cli._plain_miss``), imports nothing of the parsers.
"""

from __future__ import annotations

from typing import Any

from ..credentials import AWS
from ..errors import ConfigError


def resolve(ns: Any, app: Any, require: str | None = None) -> Any:
    """The profile's credential, with ``--refresh`` / ``--min-ttl`` when the command has them."""
    return app.resolve(ns.profile, require=require, refresh=getattr(ns, "refresh", False),
                       min_ttl=getattr(ns, "min_ttl", 0) or 0)


def credential_process(ns: Any, app: Any) -> int:
    credential = resolve(ns, app, require=AWS)
    app.emit(credential.credential_process_json())
    return 0


def token(ns: Any, app: Any) -> int:
    import json

    from ..credentials import BearerToken, OpenIdToken, to_rfc3339

    credential = resolve(ns, app)
    if isinstance(credential, BearerToken):
        value, token_type, scope = credential.access_token, credential.token_type or "Bearer", credential.scope
    elif isinstance(credential, OpenIdToken):
        value, token_type, scope = credential.token, "Bearer", None
    else:
        raise ConfigError(f"profile {ns.profile!r} yields {credential.KIND}, not a bearer or OpenID token")
    if ns.format == "raw":
        app.emit(value)
    elif ns.format == "header":
        app.emit(f"Authorization: Bearer {value}")
    else:
        doc: dict[str, object] = {"token": value, "token_type": token_type}
        if scope:
            doc["scope"] = scope
        expiration = getattr(credential, "expiration", None)
        if expiration is not None:
            doc["expiration"] = to_rfc3339(expiration)
        app.emit(json.dumps(doc))
    return 0
