"""Command-line options shared by the core's commands and plugin commands (re-exported by ``gw.plugin``)."""

from __future__ import annotations

import os
from typing import Any

from .durations import duration_seconds


def parse_duration(text: str) -> int:
    """``900``, ``90s``, ``30m``, ``2h``, ``1h30m`` -> seconds (for ``--min-ttl``)."""
    import argparse

    seconds = duration_seconds(text.strip())
    if seconds is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 900, 90s, 30m, 2h, 1h30m)")
    return seconds


def profile_option(parser: Any, help: str = "the gw profile (default: $GW_PROFILE)") -> None:
    """``--profile``, required unless ``GW_PROFILE`` names one."""
    default = os.environ.get("GW_PROFILE") or None
    parser.add_argument("--profile", default=default, required=default is None, help=help)


def freshness_options(parser: Any) -> None:
    """``--refresh`` and ``--min-ttl`` (``args.refresh``, ``args.min_ttl`` in seconds) for commands
    that hand out credentials; pass them on to ``ctx.resolve(profile, refresh=, min_ttl=)``."""
    parser.add_argument("--refresh", action="store_true", help="fetch new credentials now, even if cached ones are fresh")
    parser.add_argument("--min-ttl", dest="min_ttl", type=parse_duration, default=0, metavar="DURATION",
                        help="fetch new credentials when less than this is left (e.g. 900, 30m, 2h)")
