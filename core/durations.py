"""Durations on the command line: ``900``, ``90s``, ``30m``, ``2h``, ``1h30m``.

The one parser of them, for ``--min-ttl`` on the hot path (so: no ``re``) and in argparse.
"""


def duration_seconds(text: str) -> int | None:
    """``900``, ``90s``, ``30m``, ``2h``, ``1h30m`` -> seconds; None for anything else.

    Units come in the order h, m, s, each at most once; a bare number at the end is seconds.
    """
    total, number, units = 0, "", "hms"
    for ch in text:
        if ch.isdecimal():
            number += ch
        elif ch in units and number:
            total += int(number) * {"h": 3600, "m": 60, "s": 1}[ch]
            units = units[units.index(ch) + 1:]
            number = ""
        else:
            return None
    if number:
        if units != "hms" and "s" not in units:
            return None
        total += int(number)
    return total if text else None
