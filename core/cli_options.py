"""Command-line options shared by the core's commands and plugin commands (re-exported by ``gw.plugin``)."""

from __future__ import annotations

import os
from typing import Any

from .durations import duration_seconds

DURATION_EXAMPLES = "e.g. 900, 90s, 30m, 2h, 1h30m"


def parse_duration(text: str) -> int:
    """``900``, ``90s``, ``30m``, ``2h``, ``1h30m`` -> seconds (an argparse ``type``: ``--min-ttl``, ``--duration``)."""
    import argparse

    seconds = duration_seconds(text.strip())
    if seconds is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration ({DURATION_EXAMPLES})")
    return seconds


#: the shell functions ``gw completion`` defines that complete a profile name (``shtab``'s ``.complete``)
PROFILE_COMPLETION = {"bash": "_gw_compgen_profiles", "zsh": "_gw_zsh_profiles", "fish": "(__gw_profiles)"}


def profile_option(parser: Any, help: str | None = "the gw profile (default: $GW_PROFILE)", *,
                   required: bool = True) -> None:
    """``--profile``, required unless ``GW_PROFILE`` names one (its default then).

    ``required=False``: an optional ``--profile`` (default None, ``GW_PROFILE`` not read), e.g.
    ``gw check --live --profile``. Either way ``gw completion`` completes it with profile names.
    ``parser`` may be an argument group (``add_mutually_exclusive_group()``).
    """
    default = (os.environ.get("GW_PROFILE") or None) if required else None
    action = parser.add_argument("--profile", default=default, required=required and default is None, help=help)
    action.complete = PROFILE_COMPLETION


def freshness_options(parser: Any) -> None:
    """``--refresh`` and ``--min-ttl`` (``args.refresh``, ``args.min_ttl`` in seconds) for commands
    that hand out credentials; pass them on to ``ctx.resolve(profile, refresh=, min_ttl=)``."""
    parser.add_argument("--refresh", action="store_true", help="fetch new credentials now, even if cached ones are fresh")
    parser.add_argument("--min-ttl", dest="min_ttl", type=parse_duration, default=0, metavar="DURATION",
                        help="fetch new credentials when less than this is left (e.g. 900, 30m, 2h)")
