"""Handing credentials to other programs as environment variables (``gw env``, ``gw exec``)."""

from __future__ import annotations

import json
import os
import shlex


def conflicting() -> tuple[str, ...]:
    """Variables that would make a child program use other credentials than gw hands it:
    the union of ``ENV_VARS`` over the credential kinds known now (plugin kinds included)."""
    from .credentials import KINDS

    names: dict[str, None] = {}
    for kind in KINDS.values():
        names.update(dict.fromkeys(kind.ENV_VARS))
    return tuple(names)


FORMATS = ("sh", "fish", "powershell", "json")


def child_environment(base: dict[str, str], values: dict[str, str]) -> dict[str, str]:
    """``base`` without conflicting credential variables, plus ``values``."""
    stale = conflicting()
    env = {k: v for k, v in base.items() if k not in stale}
    env.update(values)
    return env


def _fish_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def render(values: dict[str, str], fmt: str) -> str:
    """Shell code (or JSON) that sets ``values`` and clears conflicting variables."""
    stale = [name for name in conflicting() if name not in values and name in os.environ]
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
