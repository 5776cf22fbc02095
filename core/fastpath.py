"""The cache-hit path of ``gw credential-process`` and ``gw token``.

Runs before argparse, config parsing, pluggy or any plugin is imported. It serves
the cached output only when everything is certain: the entry is fresh, it is
bound (in its authenticated header) to this very profile name and config file,
the config file is the one the entry was made from (same mtime, size, inode and
ctime), the state and cache directories are private, the key is a private key
file, and the entry authenticates. In every other case it returns False and the
ordinary path decides (and explains).
"""

import os
import sys
import time

from . import paths
from .cache import Cache, config_stamp, read_entry


class StdoutFailed(Exception):
    """The credentials could not be written to stdout (the message says why)."""


def _private_dirs(cache_dir: str) -> bool:
    """The state and cache directories are ours and not writable by others; a cache dir
    inside the state dir is no symlink (the rules of :func:`gw.paths.check_dir`)."""
    uid = os.getuid()
    state = paths.state_dir()
    for directory in (state, cache_dir):
        try:
            st = os.stat(directory)
        except OSError:
            return False
        if st.st_uid != uid or st.st_mode & 0o022:
            return False
    return not (cache_dir.startswith(state.rstrip(os.sep) + os.sep) and os.path.islink(cache_dir))


def _seconds(text: str) -> int | None:
    """``900``, ``90s``, ``30m``, ``2h``, ``1h30m`` -> seconds; None when unsure (no ``re`` here)."""
    total, number, units = 0, "", "hms"
    for ch in text:
        if ch.isdigit():
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


def _fast_args(args: list[str]) -> tuple[str | None, int] | None:
    """(profile, min_ttl) when ``args`` are only --profile / --min-ttl, else None (argparse decides)."""
    profile, min_ttl, i = None, 0, 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=")
        if not eq:
            if i + 1 >= len(args):
                return None
            value = args[i + 1]
            i += 1
        i += 1
        if name == "--profile":
            profile = value
        elif name == "--min-ttl":
            seconds = _seconds(value)
            if seconds is None:
                return None
            min_ttl = seconds
        else:
            return None
    return profile or os.environ.get("GW_PROFILE") or None, min_ttl


TOKEN_KINDS = ("bearer-token", "openid-token")


def _token_args(args: list[str]) -> tuple[list[str], str] | None:
    """``gw token`` arguments without ``--format raw|header`` (the formats served here)."""
    rest = list(args)
    fmt = "raw"
    for i, arg in enumerate(rest):
        if arg == "--format" and i + 1 < len(rest):
            fmt = rest[i + 1]
            del rest[i : i + 2]
            break
        if arg.startswith("--format="):
            fmt = arg[len("--format=") :]
            del rest[i]
            break
    return (rest, fmt) if fmt in ("raw", "header") else None


def serve_token(args: list[str]) -> bool:
    """Print a cached bearer/OpenID token (``raw`` or ``header``) and return True, or return False."""
    parsed = _token_args(args)
    if parsed is None:
        return False
    rest, fmt = parsed
    return serve_credential_process(rest, kinds=TOKEN_KINDS, prefix=b"Authorization: Bearer " if fmt == "header" else b"")


def serve_credential_process(args: list[str], kinds: tuple[str, ...] = ("aws-credentials",), prefix: bytes = b"") -> bool:
    """Print the cached credential_process JSON for ``args`` and return True, or return False."""
    parsed = _fast_args(args)
    if parsed is None:
        return False
    profile, min_ttl = parsed
    if not profile or profile.startswith((".", "_")) or "/" in profile or os.environ.get("GW_NO_CACHE"):
        return False
    config = os.path.abspath(paths.config_path())
    cache = Cache(paths.cache_dir(), config)
    entry = read_entry(cache.path(profile))
    if entry is None:
        return False
    header, line, body = entry
    if (
        header.kind not in kinds
        or header.key_store != "file"
        or time.time() >= header.refresh_at
        or header.expires_at - time.time() < min_ttl
        or header.name != profile
        or header.config_path != config
        or header.stamp != config_stamp(config)
        or not _private_dirs(cache.directory)
    ):
        return False
    from .crypto import read_key_file, unseal

    try:
        key = read_key_file(os.path.join(paths.state_dir(), "key"))
        if key is None:
            return False
        output = unseal(key, body, line).partition(b"\n")[0]
    except Exception:  # unsafe key or damaged entry: the ordinary path reports it
        return False
    if not output:
        return False
    try:
        sys.stdout.buffer.write(prefix + output + b"\n")
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except (OSError, AttributeError, ValueError) as exc:  # stdout full, or closed (None, or a closed file)
        raise StdoutFailed(getattr(exc, "strerror", None) or "it is closed") from None
    return True


def exit_now() -> None:
    """End the process at once: nothing is left to clean up after a cache hit, and
    skipping interpreter teardown (module finalisation, GC) is measurably faster."""
    os._exit(0)
