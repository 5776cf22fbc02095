"""Handing credentials to other programs as environment variables (``gw env``, ``gw exec``)."""

from __future__ import annotations

import json
import os
import shlex

# Variables that would make a child program use other credentials than the ones gw hands it.
CONFLICTING = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_ACCOUNT_ID",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "SORACOM_API_KEY",
    "SORACOM_TOKEN",
    "SORACOM_PROFILE",
)
FORMATS = ("sh", "fish", "powershell", "json")


def child_environment(base: dict[str, str], values: dict[str, str]) -> dict[str, str]:
    """``base`` without conflicting credential variables, plus ``values``."""
    env = {k: v for k, v in base.items() if k not in CONFLICTING}
    env.update(values)
    return env


def _fish_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def render(values: dict[str, str], fmt: str) -> str:
    """Shell code (or JSON) that sets ``values`` and clears conflicting variables."""
    stale = [name for name in CONFLICTING if name not in values and name in os.environ]
    if fmt == "json":
        return json.dumps(values, indent=2)
    lines: list[str] = []
    if fmt == "sh":
        if stale:
            lines.append("unset " + " ".join(stale))
        lines += [f"export {k}={shlex.quote(v)}" for k, v in values.items()]
    elif fmt == "fish":
        lines += [f"set -e {name};" for name in stale]
        lines += [f"set -gx {k} {_fish_quote(v)};" for k, v in values.items()]
    elif fmt == "powershell":
        lines += [f"Remove-Item Env:{name} -ErrorAction SilentlyContinue" for name in stale]
        lines += [f"$Env:{k} = '{v.replace(chr(39), chr(39) * 2)}'" for k, v in values.items()]
    else:
        raise ValueError(fmt)
    return "\n".join(lines)
