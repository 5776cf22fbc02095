"""``gw init`` (the first-profile questions, :mod:`gw.wizard`) and ``gw config example``."""

from __future__ import annotations

from typing import Any

from ..cli_options import profile_option
from ..wizard import print_example
from .base import Action, command, with_actions
from .tables import check


def configure_init(parser: Any) -> None:
    profile_option(parser, "name of the new profile (asked when not given)", required=False)


def init(ns: Any, app: Any) -> int:
    """The first-profile wizard (gw.wizard), then gw check on the config it wrote."""
    from ..wizard import run

    path, name = run(ns, app)
    ns.json, ns.live, ns.profile = False, False, None
    status = check(ns, app.for_config(path))
    if status == 0:
        app.emit(f"try it: gw check --live --profile {name}")
    return status


COMMANDS = [
    command("init", "add a first profile by answering questions (secrets go to the vault)",
            "Ask what the credential is (AWS access keys, a SORACOM AuthKey or SAM user, a 1Password "
            "item), ask for its values on the terminal (secrets without echo), store the secrets in "
            "gw's vault, add a commented profile to the config (created 0600 when missing; an existing "
            "profile is never replaced) and run gw check.",
            "  gw init\n  gw init --profile work", configure_init, init),
    with_actions(
        "config", "about the config file", "About gw's config file.",
        "  gw config example > ~/.config/gw/config.toml", metavar="ACTION", dest="config_action", actions=[
            Action("example", "print the commented example config (every step and option)",
                   "Print the commented example config that ships with gw: every step type and option.",
                   "  gw config example | less\n  gw config example > ~/.config/gw/config.toml",
                   print_example),
        ]),
]
