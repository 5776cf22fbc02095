"""Where gw keeps its files, and how it writes them safely.

Config: ``$GW_CONFIG``, else ``$XDG_CONFIG_HOME/gw/config.toml`` (``~/.config``).
State (key, vault, TOTP bookkeeping, locks): ``$GW_HOME``, else ``$XDG_STATE_HOME/gw``
(``~/.local/state``). Cache: ``$GW_HOME/cache``, else ``$XDG_CACHE_HOME/gw`` (``~/.cache``).

Every directory gw creates is 0700 - parents included (``os.makedirs`` applies its
mode only to the leaf) - and files are 0600; writes are atomic (temp file in the
same directory, fsync, ``os.replace``), so a killed writer never leaves a partial
file, and temp files of writers that died are removed by the next writer.

A state or cache directory that already exists is used only when it is a real
directory (not a symlink), ours, and not writable by group or others; otherwise gw
refuses it with one line naming the command that fixes it (see docs/security.md).

Only ``os`` is imported here: the exec fast path uses these functions.
"""

import os

# The locations themselves are in gw.cachehit, which the cache hit imports without os.
from .cachehit import cache_dir as cache_dir
from .cachehit import config_path as config_path
from .cachehit import state_dir as state_dir

TEMP_SUFFIXES = (".tmp", ".new")
STALE_TEMP_AGE = 60.0  # seconds: a temp file this old whose writer is gone is garbage


class UnsafePath(Exception):
    """A path gw must not read as it is (a symlink, FIFO or directory where a file belongs)."""


def _unsafe(message: str) -> Exception:
    from .errors import (
        CacheError,  # only on failure: the cache-hit path never imports it
    )

    return CacheError(message)


def dir_problem(path: str, st: os.stat_result, *, link_ok: bool = False) -> str | None:
    """Why an existing directory is unsafe for gw's private state, or None.

    ``st`` comes from ``os.lstat``; with ``link_ok`` (a root named by the user, such
    as ``$GW_HOME``) a symlink is followed and its target judged instead.
    """
    import stat as _stat

    if _stat.S_ISLNK(st.st_mode):
        if not link_ok:
            return f"{path} is a symlink; gw keeps private state only in real directories: replace it with one (mkdir -m 700)"
        try:
            st = os.stat(path)
        except OSError as exc:
            return f"{path} is a symlink that cannot be followed ({exc.strerror})"
    if not _stat.S_ISDIR(st.st_mode):
        return f"{path} is not a directory; move it away so gw can create its directory there"
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return f"{path} belongs to another user (uid {st.st_uid}); fix it with: chown {os.getuid()} {path}"
    if st.st_mode & 0o022:
        return (
            f"{path} is writable by others (mode {st.st_mode & 0o777:04o}); "
            f"fix it with: chmod 700 {path}"
        )
    return None


def _roots() -> list[str]:
    state, cache = os.path.abspath(state_dir()), os.path.abspath(cache_dir())
    return [state] if cache.startswith(state.rstrip(os.sep) + os.sep) else [state, cache]


def managed_chain(path: str) -> list[tuple[str, bool]]:
    """The directories from gw's nearest root (``$GW_HOME``, the cache dir) down to ``path``.

    Each comes with whether it may be a symlink (only a root may). A path outside
    every root is judged alone.
    """
    path = os.path.abspath(path)
    best: str | None = None
    for root in _roots():
        if (path == root or path.startswith(root.rstrip(os.sep) + os.sep)) and (best is None or len(root) > len(best)):
            best = root
    if best is None:
        return [(path, False)]
    chain = [(best, True)]
    rest = path[len(best):].strip(os.sep)
    current = best
    for part in rest.split(os.sep) if rest else []:
        current = os.path.join(current, part)
        chain.append((current, False))
    return chain


def check_dir(path: str) -> str | None:
    """Why ``path`` (an existing or missing gw directory) is unsafe, or None. Creates nothing."""
    for directory, link_ok in managed_chain(path):
        try:
            st = os.lstat(directory)
        except FileNotFoundError:
            return None  # the rest does not exist yet: gw creates it 0700
        except OSError as exc:
            return f"cannot inspect {directory}: {exc.strerror}"
        problem = dir_problem(directory, st, link_ok=link_ok)
        if problem:
            return problem
    return None


def ensure_dir(path: str) -> str:
    """Create ``path`` and any missing parents with mode 0700, then check it; return it.

    Raises :class:`gw.errors.CacheError` (one line with the fixing command) when the
    directory, or one of gw's directories above it, is a symlink, not ours, or
    writable by group or others. Raises OSError when it cannot be created.
    """
    path = os.path.abspath(path)
    problem = check_dir(path)  # before creating anything: never create inside a planted symlink
    if problem:
        raise _unsafe(f"refusing to use {path}: {problem}")
    missing: list[str] = []
    probe = path
    while not os.path.lexists(probe):
        missing.append(probe)
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            continue  # a parallel gw made it
        os.chmod(directory, 0o700)  # the umask may have taken bits away (umask 0777 leaves 0000)
    problem = check_dir(path)
    if problem:
        raise _unsafe(f"refusing to use {path}: {problem}")
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def clean_stale_temps(directory: str, now: float | None = None) -> int:
    """Remove temp files (``.<name>.<pid>.tmp``, ``<name>.<pid>.new``) left by writers that died.

    A temp file is removed only when its writer's pid is gone and it is older than
    :data:`STALE_TEMP_AGE` seconds. Returns how many were removed.
    """
    import time

    now = time.time() if now is None else now
    removed = 0
    try:
        names = os.listdir(directory)
    except OSError:
        return 0
    for name in names:
        if not name.endswith(TEMP_SUFFIXES):
            continue
        pid_text = name[:-4].rpartition(".")[2]
        if not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue
        full = os.path.join(directory, name)
        try:
            st = os.lstat(full)
            if now - st.st_mtime < STALE_TEMP_AGE or _pid_alive(int(pid_text)):
                continue
            os.unlink(full)
            removed += 1
        except OSError:
            continue
    return removed


def atomic_write(path: str, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` atomically with ``mode``; never leaves a partial file.

    Temp files of earlier writers that were killed are cleaned up on the way.
    """
    directory = os.path.dirname(path) or "."
    clean_stale_temps(directory)
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


def open_regular(path: str, *, follow: bool = False) -> int:
    """Open ``path`` read-only without blocking on a FIFO or following a final symlink.

    Returns the descriptor of a regular file. Raises FileNotFoundError when missing,
    :class:`UnsafePath` (one line) when the path is not a regular file or is a symlink,
    and OSError for other failures.
    """
    import stat as _stat

    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        import errno

        if exc.errno == errno.ELOOP:  # a symlink under O_NOFOLLOW
            raise UnsafePath(f"{path} is a symlink; gw reads it only as a regular file: replace the link with the file") from None
        raise
    st = os.fstat(fd)
    if not _stat.S_ISREG(st.st_mode):
        os.close(fd)
        what = ("a directory" if _stat.S_ISDIR(st.st_mode) else "a FIFO" if _stat.S_ISFIFO(st.st_mode)
                else "a device" if _stat.S_ISCHR(st.st_mode) or _stat.S_ISBLK(st.st_mode)
                else "a socket" if _stat.S_ISSOCK(st.st_mode) else "a special file")
        raise UnsafePath(f"{path} is {what}, not a regular file; move it away")
    os.set_blocking(fd, True)
    return fd


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
