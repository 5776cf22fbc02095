"""Secret references: where a step's secret option gets its value.

Every reference is handled by a :class:`gw.plugin.SecretScheme`: the built-in
ones (``vault:``, ``env:``, ``prompt``, ``totp:``, in :mod:`gw.builtin_schemes`)
and the plugins' (``op://`` ...) go through the same two functions below, one
for checking a reference and one for resolving it.

A plain string is not a reference: secrets do not belong in the config file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import SecretError

if TYPE_CHECKING:
    from .steps import SecretScheme, StepContext


def find_scheme(ref: Any, schemes: list[SecretScheme]) -> SecretScheme | None:
    """The scheme that handles ``ref`` (longest prefix first), or None."""
    if isinstance(ref, dict):
        claimed = [s for s in schemes if s.table_key and s.table_key in ref]
        return claimed[0] if len(claimed) == 1 else None
    if isinstance(ref, str):
        for scheme in sorted(schemes, key=lambda s: -len(s.prefix)):
            if scheme.prefix and ref.startswith(scheme.prefix):
                return scheme
    return None


def known(schemes: list[SecretScheme]) -> str:
    return ", ".join(s.prefix for s in schemes if s.prefix)


def check_reference(ref: Any, schemes: list[SecretScheme]) -> None:
    """Raise ValueError with a one-line reason if ``ref`` is not a usable reference."""
    scheme = find_scheme(ref, schemes)
    if scheme is None:
        if isinstance(ref, dict):
            keys = ", ".join(s.table_key for s in schemes if s.table_key)
            raise ValueError(f"an inline reference needs exactly one of the keys {keys}")
        if not isinstance(ref, str):
            raise ValueError(f"a secret reference is a string (known: {known(schemes)})")
        raise ValueError(f"not a secret reference (known: {known(schemes)}); "
                         "keep secrets in the vault: gw vault set NAME")
    if scheme.check is not None:
        inner = scheme.check(ref)
        if inner is not None:
            check_reference(inner, schemes)


def vault_names(ref: Any, schemes: list[SecretScheme]) -> list[str]:
    """The vault names a reference reads (for ``gw check``)."""
    from .builtin_schemes import vault_names as names

    return names(ref, schemes)


def resolve(ref: Any, ctx: StepContext, label: str, schemes: list[SecretScheme]) -> str:
    """The secret text behind ``ref`` (resolved by its scheme from ``schemes`` with ``ctx``, whose
    ``secret_label`` is ``label``); registers it with the scrubber."""
    scheme = find_scheme(ref, schemes)
    if scheme is None:
        raise SecretError(f"cannot resolve the reference for {label} (known: {known(schemes)})")
    value = scheme.resolve(ctx, ref) if scheme.table_key or not isinstance(ref, dict) else ""
    if not isinstance(value, str):
        raise SecretError(f"the {scheme.prefix or scheme.table_key} reference for {label} gave no text "
                          f"(plugin {scheme.plugin})")
    ctx.add_secret(value)
    return value
