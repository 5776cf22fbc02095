"""``gw vault set | list | rm``: gw's local encrypted secret store (:mod:`gw.vault`)."""

from __future__ import annotations

import sys
from typing import Any

from ..errors import UsageError
from .base import Action, with_actions


def _name(parser: Any) -> None:
    parser.add_argument("name")


def store(ns: Any, app: Any) -> int:
    if sys.stdin.isatty():
        from ..prompt import ask

        value = ask(f"Value for {ns.name}: ", secret=True)
    else:
        value = sys.stdin.read().rstrip("\r\n")
    if not value:
        raise UsageError("refusing to store an empty secret")
    app.vault.set(ns.name, value)
    app.emit(f"stored {ns.name}")
    return 0


def names(ns: Any, app: Any) -> int:
    for name in app.vault.names():
        app.emit(name)
    return 0


def remove(ns: Any, app: Any) -> int:
    if not app.vault.remove(ns.name):
        raise UsageError(f"no secret named {ns.name!r} in the vault")
    app.emit(f"removed {ns.name}")
    return 0


COMMANDS = [
    with_actions(
        "vault", "gw's local encrypted secret store",
        "gw's local encrypted secret store; steps read it with vault:NAME references.",
        "  gw vault set aws-secret\n  gw vault list", metavar="ACTION", dest="vault_action", actions=[
            Action("set", "store a secret (read from the terminal, or stdin when piped)",
                   "Store a secret under NAME, asked on the terminal (or read from stdin when piped).",
                   "  gw vault set aws-secret\n  pass show aws/secret | gw vault set aws-secret", store, _name),
            Action("list", "names of stored secrets", "Print the names (never the values) of stored secrets.",
                   "  gw vault list", names),
            Action("rm", "remove a secret", "Remove the secret NAME from the vault.", "  gw vault rm old-key",
                   remove, _name),
        ]),
]
