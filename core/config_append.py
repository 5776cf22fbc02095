"""Adding profiles to the gw config: the one way ``gw init``, ``gw import aws`` and ``gw setup aws
--sso`` write it."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from .errors import ConfigError


def append_to_config(path: str, text: str, *, what: str,
                     expect: Callable[[dict[str, Any]], bool] | None = None) -> bool:
    """Append ``text`` to the gw config at ``path``, keeping every byte before it; True if created.

    A missing config is created 0600 in a 0700 directory; an existing one keeps its mode, and its
    old bytes go to ``<path>.gw-backup`` first. Nothing is written (one ConfigError naming ``what``)
    when the result would not be valid TOML or ``expect(parsed)`` says it is not what was meant.
    """
    import tomllib

    from .paths import atomic_write, ensure_dir

    try:
        with open(path, "rb") as f:
            before = f.read()
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        before, mode = b"", 0o600
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    separator = b"" if not before else b"\n" if before.endswith(b"\n") else b"\n\n"
    after = before + separator + text.encode()
    try:
        parsed = tomllib.loads(after.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} would not be valid TOML after adding {what} ({exc}); not touching it") from None
    if expect is not None and not expect(parsed):
        raise ConfigError(f"{path}: adding {what} would not give what was meant; not touching it")
    ensure_dir(os.path.dirname(os.path.abspath(path)))
    if before:
        try:
            atomic_write(path + ".gw-backup", before, 0o600)
        except OSError as exc:
            raise ConfigError(f"cannot write the backup {path}.gw-backup: {exc.strerror}; {path} is unchanged") from None
    try:
        atomic_write(path, after, mode)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}; it is unchanged") from None
    return not before
