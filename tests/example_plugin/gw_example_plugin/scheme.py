"""The secret scheme ``rot13:VAR``: the environment variable VAR, rot13-decoded (silly, but real)."""

from __future__ import annotations

import codecs
import os

from gw.plugin import SecretError, SecretScheme, StepContext

PREFIX = "rot13:"


def resolve(ctx: StepContext, ref: str) -> str:
    """The secret behind ``ref`` (the whole reference), or one line of SecretError."""
    name = ref[len(PREFIX):]
    value = os.environ.get(name)
    if not value:
        raise SecretError(f"environment variable {name} is not set (needed by a {PREFIX} reference)")
    return codecs.decode(value, "rot13")


def check(ref: str) -> None:
    """A reference's form, checked by ``gw check`` without resolving it."""
    if not ref[len(PREFIX):].isidentifier():
        raise ValueError(f"{PREFIX} needs an environment variable name, as in {PREFIX}MY_SECRET")


SCHEME = SecretScheme(prefix=PREFIX, resolve=resolve, check=check, help="an environment variable, rot13-decoded")
