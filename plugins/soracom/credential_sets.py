"""The three kinds of long-term SORACOM credentials: which options form each, and which one a
:class:`gw.plugin.SoracomCredentials` holds (the ``soracom-keys`` check and the sign-in body)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gw.plugin import SoracomCredentials

CREDENTIAL_SETS = {
    "authkey": ("auth_key_id", "auth_key"),
    "root": ("email", "password"),
    "sam": ("operator_id", "username", "password"),
}


def credential_kind(present: set[str]) -> str:
    """Which credential set ``present`` option names form; ValueError unless exactly one."""
    fits = [kind for kind, names in CREDENTIAL_SETS.items() if set(names) == present]
    if len(fits) != 1:
        raise ValueError(
            "give exactly one SORACOM credential kind: auth_key_id + auth_key; email + password; "
            "or operator_id + username + password"
        )
    return fits[0]


def login_kind(cred: SoracomCredentials) -> str:
    """``authkey``, ``root`` or ``sam``: the first set whose identifying (first) field ``cred``
    carries, else ``sam`` (``soracom-keys`` allows exactly one set)."""
    for kind, names in CREDENTIAL_SETS.items():
        if getattr(cred, names[0], None):
            return kind
    return "sam"
