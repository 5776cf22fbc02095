"""Opening the SIM a step names, among the readers gw knows and those other plugins offer.

Its own module so that the plugin's package and ``pin.py`` both use it without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gw.plugin import StepError


def plugin_readers(ctx: Any) -> dict[str, Any]:
    """SIM readers other plugins offer (``gw_krypton_readers``), by name."""
    found: dict[str, Any] = {}
    for readers in ctx.call_hook("gw_krypton_readers"):
        for reader in readers or ():
            name = getattr(reader, "name", None)
            if isinstance(name, str) and name and callable(getattr(reader, "open", None)):
                found.setdefault(name, reader)
    return found


def open_step_sim(ctx: Any, options: dict[str, Any], connected: Callable[[], None] | None = None) -> Any:
    """Open the SIM the step's ``reader`` names; one StepError line when it cannot.

    ``connected``: see :func:`.sim.open_sim`.
    """
    from .sim import SimError, open_sim

    reader = options.get("reader") or "auto"
    kind, _, arg = reader.partition(":")
    # gw's own readers need no other plugin: asking the hook would load every plugin (lazy loading)
    own = reader == "auto" or (kind in ("pcsc", "modem") and bool(arg))
    try:
        return open_sim(reader, options=options, readers={} if own else plugin_readers(ctx), status=ctx.status,
                        connected=connected)
    except SimError as exc:
        raise StepError(f"cannot open the SIM ({reader}): {exc}") from None
