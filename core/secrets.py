"""Secret references: where a step's secret option gets its value.

- ``vault:NAME``   a value from gw's encrypted vault (``gw vault set NAME``)
- ``env:VAR``      an environment variable
- ``prompt``       asked on /dev/tty (or ``{ prompt = "label" }``)
- ``totp:<ref>``   the current TOTP code for the base32 seed found at ``<ref>``;
                   ``{ totp = "<ref>", period = 30, digits = 6 }`` sets the parameters
- plugin schemes, e.g. ``op://vault/item/field`` from the 1Password plugin.

A plain string is not a reference: secrets do not belong in the config file.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .errors import SecretError

if TYPE_CHECKING:
    from .chain import ChainContext
    from .steps import SecretScheme

TOTP_KEYS = {"totp", "period", "digits"}
HINT = "use vault:NAME, env:VAR, prompt, totp:<ref>"


def check_reference(ref: Any, schemes: list[SecretScheme]) -> None:
    """Raise ValueError with a one-line reason if ``ref`` is not a usable reference."""
    if isinstance(ref, dict):
        if "prompt" in ref:
            if set(ref) != {"prompt"} or not isinstance(ref["prompt"], str):
                raise ValueError('an inline prompt is { prompt = "label" }')
            return
        if "totp" not in ref:
            raise ValueError(f"an inline reference needs a totp or prompt key ({HINT})")
        unknown = set(ref) - TOTP_KEYS
        if unknown:
            raise ValueError(f"unknown key {sorted(unknown)[0]!r} in a totp reference (totp, period, digits)")
        period, digits = ref.get("period", 30), ref.get("digits", 6)
        if isinstance(period, bool) or not isinstance(period, int) or not 1 <= period <= 300:
            raise ValueError("totp period must be an integer from 1 to 300 seconds")
        if isinstance(digits, bool) or not isinstance(digits, int) or not 6 <= digits <= 10:
            raise ValueError("totp digits must be an integer from 6 to 10")
        check_reference(ref["totp"], schemes)
        return
    if not isinstance(ref, str):
        raise ValueError(f"a secret reference is a string ({HINT})")
    if ref == "prompt":
        return
    if ref.startswith("totp:"):
        return check_reference(ref[5:], schemes)
    for prefix in ("vault:", "env:"):
        if ref.startswith(prefix):
            if not ref[len(prefix):]:
                raise ValueError(f"{prefix} needs a name after it")
            return
    for scheme in schemes:
        if ref.startswith(scheme.prefix):
            return
    known = ", ".join(["vault:", "env:", "prompt", "totp:"] + [s.prefix for s in schemes])
    raise ValueError(f"not a secret reference (known: {known}); keep secrets in the vault: gw vault set NAME")


def vault_names(ref: Any) -> list[str]:
    """The vault names a reference reads (for ``gw check``)."""
    if isinstance(ref, dict):
        return vault_names(ref.get("totp"))
    if isinstance(ref, str):
        if ref.startswith("totp:"):
            return vault_names(ref[5:])
        if ref.startswith("vault:"):
            return [ref[6:]]
    return []


def resolve(ref: Any, ctx: ChainContext, label: str) -> str:
    """The secret text behind ``ref``; registers it with the scrubber."""
    value = _resolve(ref, ctx, label)
    ctx.add_secret(value)
    return value


def _resolve(ref: Any, ctx: ChainContext, label: str) -> str:
    if isinstance(ref, dict):
        if "prompt" in ref:
            return ctx.ask(f"{ref['prompt']}: ")
        seed = resolve(ref["totp"], ctx, f"{label} seed")
        return ctx.totp(seed, period=ref.get("period", 30), digits=ref.get("digits", 6), label=label)
    if ref == "prompt":
        return ctx.ask(f"{label} for profile {ctx.profile}: ")
    if ref.startswith("totp:"):
        seed = resolve(ref[5:], ctx, f"{label} seed")
        return ctx.totp(seed, period=30, digits=6, label=label)
    if ref.startswith("vault:"):
        return ctx.vault.get(ref[6:])
    if ref.startswith("env:"):
        value = os.environ.get(ref[4:])
        if not value:
            raise SecretError(f"environment variable {ref[4:]} is not set (needed for {label})")
        return value
    for scheme in ctx.schemes:
        if ref.startswith(scheme.prefix):
            return scheme.resolve(ctx, ref)
    raise SecretError(f"cannot resolve the reference for {label} ({HINT})")
