"""Extension points of the krypton plugin (added to gw's plugin manager with ``gw_add_hookspecs``).

A plugin implements them with ``gw.plugin.hookimpl`` like any gw hook. The demo plugin
(``gw_emulators.demo``) implements :func:`gw_krypton_readers` to offer ``reader = "emulated"``;
the krypton plugin itself never imports an emulator.
"""

from __future__ import annotations

from typing import Any, Protocol

import pluggy

hookspec = pluggy.HookspecMarker("gw")


class SimTransport(Protocol):
    """What a reader's ``open`` returns: the card behind it, APDU by APDU."""

    name: str

    def transmit(self, apdu: bytes) -> bytes:
        """Send one command APDU; return the response data followed by SW1 SW2."""

    def close(self, reset: bool = False) -> None:
        """Release the card; ``reset`` asks it to forget a verified PIN."""


class SimReader(Protocol):
    """A SIM reader a plugin offers: selected by ``reader = "<name>"`` in a krypton step."""

    name: str
    help: str

    def open(self, options: dict[str, Any]) -> SimTransport:
        """Open the card for a step with these ``options`` (e.g. ``sim_file``).

        Raise ``ValueError`` or ``OSError`` with one clear line when it cannot.
        """
        ...


@hookspec
def gw_krypton_readers() -> list[SimReader]:
    """Return SIM readers this plugin offers to the krypton step and ``gw krypton pin``.

    Each reader has a ``name`` (the value of the step's ``reader`` option that selects it,
    e.g. ``"emulated"``; it must not contain ``:``), a one-line ``help`` and
    ``open(options) -> transport``; the transport has ``name``, ``transmit(apdu) -> bytes``
    (response data + SW1 SW2) and ``close(reset=False)``. The krypton plugin runs the whole
    USIM conversation (selection, IMSI, PIN, AUTHENTICATE) over it.
    """
    return []  # a specification: pluggy never calls this body
