"""The cache-hit path of ``gw credential-process``.

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


def _profile_arg(args: list[str]) -> str | None:
    if len(args) == 2 and args[0] == "--profile":
        return args[1]
    if len(args) == 1 and args[0].startswith("--profile="):
        return args[0][len("--profile=") :]
    return None


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


def serve_credential_process(args: list[str]) -> bool:
    """Print the cached credential_process JSON for ``args`` and return True, or return False."""
    profile = _profile_arg(args)
    if not profile or profile.startswith((".", "_")) or "/" in profile or os.environ.get("GW_NO_CACHE"):
        return False
    config = os.path.abspath(paths.config_path())
    cache = Cache(paths.cache_dir(), config)
    entry = read_entry(cache.path(profile))
    if entry is None:
        return False
    header, line, body = entry
    if (
        header.kind != "aws-credentials"
        or header.key_store != "file"
        or time.time() >= header.refresh_at
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
        sys.stdout.buffer.write(output + b"\n")
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
