"""``[sso_sessions.NAME]`` tables and the :class:`SsoSession` a step's or a command's options name.

Its own module so that the plugin's package and ``commands.py`` both use it without importing each other.
"""

from __future__ import annotations

import re
from typing import Any

from gw.plugin import ConfigError

SESSION_KEYS = {"start_url": str, "region": str, "scopes": list}
REGION = re.compile(r"[a-z]{2}(?:-[a-z0-9]+){1,4}")


def session_table(tables: Any, name: str) -> dict[str, Any]:
    """The checked ``[sso_sessions.NAME]`` table; a missing or malformed one is one line."""
    import difflib

    tables = tables if isinstance(tables, dict) else {}
    table = tables.get(name)
    if not isinstance(table, dict):
        close = difflib.get_close_matches(name, list(tables), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (sessions: {', '.join(sorted(tables)) or 'none'})"
        raise ConfigError(f"no [sso_sessions.{name}] table in the config{hint}")
    for key, value in table.items():
        expected: type | None = SESSION_KEYS.get(key)
        if expected is None:
            near = difflib.get_close_matches(key, list(SESSION_KEYS), n=1)
            raise ConfigError(f"sso_sessions.{name}.{key}: unknown option" + (f" (did you mean {near[0]!r}?)" if near else ""))
        if not isinstance(value, expected) or (isinstance(value, list) and not all(isinstance(s, str) for s in value)):
            raise ConfigError(f"sso_sessions.{name}.{key}: must be {'an array of strings' if expected is list else 'a string'}")
    for key in ("start_url", "region"):
        if not table.get(key):
            raise ConfigError(f"sso_sessions.{name}: missing required option {key!r}")
    if not table["start_url"].startswith("https://"):
        raise ConfigError(f"sso_sessions.{name}.start_url must be an https:// URL")
    if not REGION.fullmatch(table["region"]):
        raise ConfigError(f"sso_sessions.{name}.region {table['region']!r} is not an AWS region name")
    return table


def session_from_options(ctx: Any, options: dict[str, Any], profile: str | None = None) -> Any:
    """The :class:`SsoSession` a step's options (or a command's) name; ``profile`` defaults to the step's."""
    from .oidc import DEFAULT_SCOPES, SsoSession

    endpoints: dict[str, Any] = {"oidc_endpoint": options.get("oidc_endpoint"), "portal_endpoint": options.get("portal_endpoint")}
    if options.get("session"):
        name = options["session"]
        table = session_table(ctx.setting("sso_sessions"), name)
        return SsoSession(start_url=table["start_url"], region=table["region"], name=name,
                          scopes=tuple(table.get("scopes") or DEFAULT_SCOPES), **endpoints)
    return SsoSession(start_url=options["start_url"], region=options["sso_region"],
                      profile=profile or getattr(ctx, "profile", None), **endpoints)
