"""Where gw keeps its files, and how it writes them safely.

Config: ``$GW_CONFIG``, else ``$XDG_CONFIG_HOME/gw/config.toml`` (``~/.config``).
State (key, vault, TOTP bookkeeping, locks): ``$GW_HOME``, else ``$XDG_STATE_HOME/gw``
(``~/.local/state``). Cache: ``$GW_HOME/cache``, else ``$XDG_CACHE_HOME/gw`` (``~/.cache``).
Directories are created 0700 and files 0600; writes are atomic (temp file in the
same directory, fsync, ``os.replace``), so a killed writer never leaves a partial file.

Only ``os`` is imported here: the cache-hit path uses these functions.
"""

import os


def _xdg(var: str, fallback: str) -> str:
    value = os.environ.get(var)
    return value if value and os.path.isabs(value) else os.path.join(os.path.expanduser("~"), fallback)


def config_path() -> str:
    return os.environ.get("GW_CONFIG") or os.path.join(_xdg("XDG_CONFIG_HOME", ".config"), "gw", "config.toml")


def state_dir() -> str:
    return os.environ.get("GW_HOME") or os.path.join(_xdg("XDG_STATE_HOME", ".local/state"), "gw")


def cache_dir() -> str:
    home = os.environ.get("GW_HOME")
    return os.path.join(home, "cache") if home else os.path.join(_xdg("XDG_CACHE_HOME", ".cache"), "gw")


def ensure_dir(path: str) -> str:
    """Create ``path`` (and parents) with mode 0700 if missing; return it."""
    if not os.path.isdir(path):
        os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def atomic_write(path: str, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` atomically with ``mode``; never leaves a partial file."""
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def private_file_problem(path: str, st: os.stat_result) -> str | None:
    """Why a key/vault file is unsafe to use, or None when it is private to us."""
    if st.st_mode & 0o077:
        return (
            f"{path} is readable by others (mode {st.st_mode & 0o777:04o}); "
            f"fix it with: chmod 600 {path}"
        )
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return f"{path} belongs to another user (uid {st.st_uid}); fix it with: chown {os.getuid()} {path}"
    return None
