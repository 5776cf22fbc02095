"""gw.durations: the one parser of ``--min-ttl``-style durations (core/durations.py)."""

from __future__ import annotations

import pytest

from gw.durations import duration_seconds


@pytest.mark.parametrize(("text", "seconds"), [
    ("900", 900), ("0", 0), ("90s", 90), ("30m", 1800), ("2h", 7200), ("1h30m", 5400), ("1h30m15s", 5415),
    ("1h15", 3615), ("2m5", 125), ("007", 7),
])
def test_accepted_spellings(text, seconds):
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", [
    "", "h", "m", "s", "1d", "1.5h", "-5", "+5", " 5", "5 ", "1m1h", "1h1h", "1s1m", "1s5", "1hh", "1H",
])
def test_refused_spellings(text):
    assert duration_seconds(text) is None

