"""``gw setup`` and ``gw import``: groups the plugins fill (``Command(group="setup")``,
``Command(group="import")``); the core offers no subcommand of its own there."""

from __future__ import annotations

from .base import group

COMMANDS = [
    group("setup", "wire gw into other tools' config files",
          "Write the lines that make other tools run gw (e.g. credential_process).",
          "  gw setup aws --profile admin", metavar="TARGET", dest="setup_action"),
    group("import", "move credentials another tool keeps in plaintext into gw",
          "Move long-term credentials that another tool keeps in a plaintext file into gw's "
          "encrypted vault, and write the gw profile that uses them.",
          "  gw import aws --aws-profile work", metavar="SOURCE", dest="import_action"),
]
