"""``json.loads`` for the documents gw writes, without importing :mod:`json` (which imports ``re``)."""


def _json_constant(name: str) -> object:
    raise ValueError(f"{name} is not a value gw writes")


def parse_json(text: str) -> object:
    """``json.loads`` for the documents gw writes, without importing :mod:`json` (which imports ``re``).

    It drives CPython's own C scanner (``_json``) as :class:`json.JSONDecoder` does; where
    that is missing it falls back to :mod:`json`. Raises ValueError (or StopIteration) when
    ``text`` is not one JSON value.
    """
    try:
        from _json import make_scanner
    except ImportError:  # pragma: no cover - another Python implementation
        import json

        return json.loads(text)

    class _Context:  # the attributes json.scanner reads from a JSONDecoder
        strict = True
        object_hook = None
        object_pairs_hook = None
        parse_float = float
        parse_int = int
        parse_constant = staticmethod(_json_constant)

    start = len(text) - len(text.lstrip(" \t\r\n"))
    value, end = make_scanner(_Context())(text, start)  # type: ignore[arg-type]
    if text[end:].strip(" \t\r\n"):
        raise ValueError("extra data after the JSON value")
    return value
