"""Handing credentials to other programs as environment variables (``gw env``, ``gw exec``)."""

from __future__ import annotations

import json
import os
import shlex

# The characters that open or close a PowerShell single-quoted string: ' and U+2018..U+201B.
POWERSHELL_SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"


def conflicting() -> tuple[str, ...]:
    """Variables that would make a child program use other credentials than gw hands it:
    the union of ``ENV_VARS`` over the credential kinds known now (plugin kinds included).
    Each kind lists the variables it sets and any others that name credentials of its kind
    (soracom-cli's AuthKey pair, the session expiry some AWS SDKs honour)."""
    from .credentials import KINDS

    names: dict[str, None] = {}
    for kind in KINDS.values():
        names.update(dict.fromkeys(kind.ENV_VARS))
    return tuple(names)


def _check_values(values: dict[str, str]) -> None:
    from .errors import StepError

    for name, value in values.items():
        if "\0" in value or "\0" in name or "=" in name:
            raise StepError(f"the value of {name} holds a NUL byte (or the name is invalid); it cannot be an environment variable")


def child_environment(base: dict[str, str], values: dict[str, str]) -> dict[str, str]:
    """``base`` without conflicting credential variables, plus ``values``."""
    _check_values(values)
    stale = conflicting()
    env = {k: v for k, v in base.items() if k not in stale}
    env.update(values)
    return env


def _fish_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def powershell_quote(value: str) -> str:
    """``value`` as a PowerShell single-quoted string literal.

    Doubles every character PowerShell treats as a single quote, exactly as
    PowerShell's own ``CodeGeneration.EscapeSingleQuotedStringContent`` does
    (PowerShell/PowerShell, src/System.Management.Automation/engine/parser/
    CodeGeneration.cs, with ``CharExtensions.IsSingleQuote``: ' and U+2018..U+201B).
    """
    return "'" + "".join(c + c if c in POWERSHELL_SINGLE_QUOTES else c for c in value) + "'"


def render(values: dict[str, str], fmt: str) -> str:
    """Shell code (or JSON) that sets ``values`` and clears conflicting variables."""
    _check_values(values)
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
        lines += [f"$Env:{k} = {powershell_quote(v)}" for k, v in values.items()]
    else:
        raise ValueError(fmt)
    return "\n".join(lines)
