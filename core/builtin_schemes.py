"""The core's built-in secret schemes, registered as an ordinary plugin (``core``).

- ``vault:NAME``   a value from gw's encrypted vault (``gw vault set NAME``)
- ``env:VAR``      an environment variable
- ``prompt``       asked on /dev/tty (or ``{ prompt = "label" }``)
- ``totp:<ref>``   the current TOTP code for the base32 seed found at ``<ref>``;
                   ``{ totp = "<ref>", period = 30, digits = 6 }`` sets the parameters

They use only what any plugin's scheme gets: the :class:`gw.plugin.StepContext`.
"""

from __future__ import annotations

import os
from typing import Any

import pluggy

from .errors import SecretError
from .steps import SecretScheme, StepContext

hookimpl = pluggy.HookimplMarker("gw")
TOTP_KEYS = {"totp", "period", "digits"}


def _check_vault(ref: Any) -> None:
    if not ref[len("vault:"):]:
        raise ValueError("vault: needs a name after it")


def _resolve_vault(ctx: StepContext, ref: Any) -> str:
    return ctx.vault_get(ref[len("vault:"):])  # type: ignore[attr-defined]


def _check_env(ref: Any) -> None:
    if not ref[len("env:"):]:
        raise ValueError("env: needs a name after it")


def _resolve_env(ctx: StepContext, ref: Any) -> str:
    name = ref[len("env:"):]
    value = os.environ.get(name)
    if not value:
        raise SecretError(f"environment variable {name} is not set")
    return value


def _check_prompt(ref: Any) -> None:
    if isinstance(ref, dict):
        if set(ref) != {"prompt"} or not isinstance(ref["prompt"], str):
            raise ValueError('an inline prompt is { prompt = "label" }')
    elif ref != "prompt":
        raise ValueError('a prompt reference is exactly "prompt" (or { prompt = "label" })')


def _resolve_prompt(ctx: StepContext, ref: Any) -> str:
    if isinstance(ref, dict):
        return ctx.ask(f"{ref['prompt']}: ")
    return ctx.ask(f"{ctx.secret_label} for profile {ctx.profile}: ")  # type: ignore[attr-defined]


def _totp_parts(ref: Any) -> tuple[Any, int, int]:
    if isinstance(ref, dict):
        return ref["totp"], ref.get("period", 30), ref.get("digits", 6)
    return ref[len("totp:"):], 30, 6


def _check_totp(ref: Any) -> Any:
    if isinstance(ref, dict):
        unknown = set(ref) - TOTP_KEYS
        if unknown:
            raise ValueError(f"unknown key {sorted(unknown)[0]!r} in a totp reference (totp, period, digits)")
    inner, period, digits = _totp_parts(ref)
    if isinstance(period, bool) or not isinstance(period, int) or not 1 <= period <= 300:
        raise ValueError("totp period must be an integer from 1 to 300 seconds")
    if isinstance(digits, bool) or not isinstance(digits, int) or not 6 <= digits <= 10:
        raise ValueError("totp digits must be an integer from 6 to 10")
    if not inner:
        raise ValueError("totp: needs a reference to the seed after it")
    return inner


def _resolve_totp(ctx: StepContext, ref: Any) -> str:
    from .totp import generator, seed_account

    inner, period, digits = _totp_parts(ref)
    label = ctx.secret_label  # type: ignore[attr-defined]
    seed = ctx.resolve_secret(inner, label=f"{label} seed")
    make = generator(seed, period=period, digits=digits)
    return ctx.one_time_code(seed_account(seed), make, period=period, label=label)


def vault_names(ref: Any, schemes: Any = None) -> list[str]:
    """The vault names a reference reads (for ``gw check``)."""
    if isinstance(ref, dict):
        return vault_names(ref.get("totp"))
    if isinstance(ref, str):
        if ref.startswith("totp:"):
            return vault_names(ref[5:])
        if ref.startswith("vault:"):
            return [ref[6:]]
    return []


@hookimpl
def gw_secret_schemes() -> list[SecretScheme]:
    return [
        SecretScheme("vault:", _resolve_vault, "a value from gw's encrypted vault: vault:NAME", check=_check_vault),
        SecretScheme("env:", _resolve_env, "an environment variable: env:VAR", check=_check_env),
        SecretScheme("prompt", _resolve_prompt, 'asked on the terminal: prompt or { prompt = "label" }',
                     table_key="prompt", check=_check_prompt),
        SecretScheme("totp:", _resolve_totp, "a TOTP code from a seed reference: totp:<ref> or "
                     "{ totp = <ref>, period = 30, digits = 6 }", table_key="totp", check=_check_totp),
    ]
