"""The cache hit of ``gw credential-process`` and ``gw token``, on builtin modules alone.

The launcher imports this module first and calls :func:`launch` (docs/performance.md
"Cache hit"). :func:`serve` serves the cached
output only when everything is certain: a plain profile name, caching on, a fresh entry of the
right kind with ``--min-ttl`` left, bound (in its authenticated header) to this very profile
name and config file, the config file untouched since the entry was made (same mtime, size,
inode and ctime: no TOML is read), private state and cache directories, a private key file
(not a keyring) and an entry that authenticates. In every other case :func:`serve` returns
None and the ordinary path decides (and explains).

What a hit may not afford, and so this module does without: ``os`` (with ``_collections_abc``
about a tenth of a Python start-up; ``posix`` is the same functions), ``gw.store``,
``gw.paths``, ``gw.crypto`` and ``gw.cli`` (their bytecode alone is several times this
module's), and the ``cryptography`` package's ``__init__`` modules (its compiled binding is
loaded from gw's install location directly, :func:`aesgcm_class`).

It also holds what the hit shares with the rest of gw, so each exists once: where gw keeps
its files (re-exported by :mod:`gw.paths`), the header and file name of a cache entry and the
reading of it (re-exported by :mod:`gw.store`, which writes entries), and AES-GCM opening
(re-exported by :mod:`gw.crypto`).
"""

import posix
import sys
import time

# -- the environment and where gw keeps its files --------------------------------------------


def getenv(name: str) -> str | None:
    """``os.environ.get(name)`` without importing ``os``: until something imports it, nothing
    can have changed the environment, and ``posix.environ`` holds it as bytes."""
    os = sys.modules.get("os")
    if os is not None:
        return os.environ.get(name)
    value = posix.environ.get(name.encode())
    return None if value is None else value.decode(sys.getfilesystemencoding(), sys.getfilesystemencodeerrors())


def join(path: str, *parts: str) -> str:
    """``os.path.join`` (POSIX)."""
    for part in parts:
        if part.startswith("/"):
            path = part
        elif not path or path.endswith("/"):
            path += part
        else:
            path += "/" + part
    return path


def abspath(path: str) -> str:
    """``os.path.abspath``; without ``os`` when ``path`` is already absolute and normal."""
    if (path.startswith("/") and "//" not in path and "/./" not in path and "/../" not in path
            and not path.endswith(("/.", "/..")) and (path == "/" or not path.endswith("/"))):
        return path
    import os

    return os.path.abspath(path)


def _home() -> str:
    """``os.path.expanduser("~")``."""
    home = getenv("HOME")
    if home is None:
        import pwd

        try:
            home = pwd.getpwuid(posix.getuid()).pw_dir
        except KeyError:
            return "~"
    return home.rstrip("/") or "/"


def _xdg(var: str, fallback: str) -> str:
    value = getenv(var)
    return value if value and value.startswith("/") else join(_home(), fallback)


def config_path() -> str:
    return getenv("GW_CONFIG") or join(_xdg("XDG_CONFIG_HOME", ".config"), "gw", "config.toml")


def state_dir() -> str:
    return getenv("GW_HOME") or join(_xdg("XDG_STATE_HOME", ".local/state"), "gw")


def cache_dir() -> str:
    home = getenv("GW_HOME")
    return join(home, "cache") if home else join(_xdg("XDG_CACHE_HOME", ".cache"), "gw")


# -- cache entries: the header, the file name, the reading --------------------------------------
MAGIC = "gw2"
FIELDS = 13
SUFFIX = ".gwc"
MAX_ENTRY = 256 * 1024  # bytes: far above any real entry (a few KiB), far below a slow read
_S_IFMT, _S_IFREG, _S_IFLNK = 0o170000, 0o100000, 0o120000


class EntryHeader:
    """The plaintext first line of a cache file (a plain class: no dataclasses on the hot path)."""

    __slots__ = ("kind", "refresh_at", "expires_at", "issued_at", "key_store", "stamp", "digest", "config_path", "name")

    def __init__(
        self,
        kind: str,
        refresh_at: int,
        expires_at: int,
        issued_at: int,
        key_store: str,
        stamp: tuple[int, int, int, int],
        digest: str,
        config_path: str,
        name: str = "-",
    ) -> None:
        self.kind = kind
        self.refresh_at = refresh_at
        self.expires_at = expires_at
        self.issued_at = issued_at
        self.key_store = key_store
        self.stamp = stamp
        self.digest = digest
        self.config_path = config_path
        self.name = name

    def line(self) -> bytes:
        fields = [
            MAGIC,
            self.kind,
            str(self.refresh_at),
            str(self.expires_at),
            str(self.issued_at),
            self.key_store,
            *(str(v) for v in self.stamp),
            self.digest,
            self.name,
            self.config_path,
        ]
        if any(not f or " " in f or "\n" in f for f in fields[:-1]) or "\n" in self.config_path:
            raise ValueError("a cache header field is empty or holds a space or newline")
        return " ".join(fields).encode() + b"\n"

    @classmethod
    def parse(cls, line: bytes) -> "EntryHeader | None":
        try:
            parts = line.decode().rstrip("\n").split(" ", FIELDS - 1)
            if len(parts) != FIELDS or parts[0] != MAGIC:
                return None
            return cls(
                kind=parts[1],
                refresh_at=int(parts[2]),
                expires_at=int(parts[3]),
                issued_at=int(parts[4]),
                key_store=parts[5],
                stamp=(int(parts[6]), int(parts[7]), int(parts[8]), int(parts[9])),
                digest=parts[10],
                name=parts[11],
                config_path=parts[12],
            )
        except (UnicodeDecodeError, ValueError):
            return None

    def fresh(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) < self.refresh_at


def stamp_of(st: posix.stat_result) -> tuple[int, int, int, int]:
    """(mtime_ns, size, inode, ctime_ns): what identifies one version of the config file."""
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)


def config_stamp(path: str) -> tuple[int, int, int, int]:
    """The :func:`stamp_of` the config file; zeros when it is missing."""
    try:
        st = posix.stat(path)
    except OSError:
        return (0, 0, 0, 0)
    return stamp_of(st)


def entry_tag(name: str, scope: str) -> str:
    """16 hex digits naming ``name`` within ``scope`` (a config path), exact in case.

    FNV-1a (64 bit), not a cryptographic hash: the tag only keeps file names apart;
    what an entry is for is checked against its authenticated header. Plain Python,
    so the cache-hit path imports nothing for it.
    """
    h = 0xCBF29CE484222325
    for byte in f"{scope}\0{name}".encode():
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def entry_path(directory: str, name: str, config_path: str) -> str:
    """The file of entry ``name`` (scoped to ``config_path`` unless it starts with ``_``)."""
    scope = "" if name.startswith("_") else config_path
    return join(directory, f"{name}.{entry_tag(name, scope)}{SUFFIX}")


def read_regular(path: str, limit: int, private: bool = False) -> bytes | None:
    """The bytes of a regular file of at most ``limit`` bytes, else None (absent, unreadable,
    too big, or a FIFO, directory or symlink at the path: never followed, never blocking).
    With ``private``, also None unless the file is ours and has no group/other bits."""
    try:
        fd = posix.open(path, posix.O_RDONLY | posix.O_NOFOLLOW | posix.O_NONBLOCK)  # close-on-exec, as os.open
    except OSError:
        return None
    try:
        st = posix.fstat(fd)
        if st.st_mode & _S_IFMT != _S_IFREG or st.st_size > limit:
            return None
        if private and (st.st_uid != posix.getuid() or st.st_mode & 0o077):
            return None
        data = posix.read(fd, st.st_size + 1)
    except OSError:
        return None
    finally:
        posix.close(fd)
    return data if len(data) == st.st_size else None  # changed while read: not trusted


def read_entry(path: str) -> "tuple[EntryHeader, bytes, bytes] | None":
    """(header, header line, sealed body) of a cache file, or None if absent/unreadable.

    Only a regular file of at most :data:`MAX_ENTRY` bytes is read; a FIFO,
    directory or symlink at the path, or a huge file, is None without blocking.
    """
    data = read_regular(path, MAX_ENTRY)
    if data is None:
        return None
    line, sep, body = data.partition(b"\n")
    header = EntryHeader.parse(line + sep) if sep else None
    if header is None:
        return None
    return header, line + sep, body


# -- AES-256-GCM ------------------------------------------------------------------------------
KEY_SIZE = 32
NONCE_SIZE = 12
_BINDING = "cryptography.hazmat.bindings._rust"
_loaded_here: list = []  # the binding, when load_binding loaded it without its packages
_binding_lib: list[str] = []  # where load_binding may load it from (serve's ``lib``)
launched_from: list[str] = []  # the launcher's ``lib`` (see :func:`launch`), for the exec fast path


def load_binding(lib: str) -> None:
    """Load cryptography's compiled module from the site-packages ``lib`` (gw's own install
    location, which the launcher checked holds gw and cryptography), skipping the ``__init__``
    modules of ``cryptography``, ``cryptography.hazmat`` and ``.bindings``: it is what
    importlib does for it, minus those. Anything unexpected: nothing is loaded, and
    :func:`aesgcm_class` imports it the ordinary way."""
    if _BINDING in sys.modules:
        return
    path = lib + "/cryptography/hazmat/bindings/_rust.abi3.so"
    try:
        import _frozen_importlib as bootstrap  # importlib's own machinery, loaded at start-up
        import _frozen_importlib_external as external

        posix.stat(path)
        loader = external.ExtensionFileLoader(_BINDING, path)
        spec = external.spec_from_file_location(_BINDING, path, loader=loader)
        if spec is None:
            return
        module = bootstrap.module_from_spec(spec)
        sys.modules[_BINDING] = module
        loader.exec_module(module)
    except Exception:
        sys.modules.pop(_BINDING, None)
        return
    _loaded_here.append(module)


def settle_binding() -> None:
    """Make a binding :func:`load_binding` loaded look imported the ordinary way (an attribute of
    its package), before anything else of cryptography is imported."""
    if _loaded_here:
        import cryptography.hazmat.bindings as package

        if getattr(package, "_rust", None) is None:
            package._rust = _loaded_here[0]
        _loaded_here.clear()


def aesgcm_class():  # -> type[cryptography AESGCM]  # noqa: ANN201
    """``AESGCM`` from ``cryptography``.

    The public module path imports ``typing``/``enum`` machinery that costs more than a whole
    Python start-up on slow machines; the class itself lives in the compiled binding, so it is
    taken from there, with the public import as the fallback if a release moves it.
    """
    if _binding_lib:
        load_binding(_binding_lib.pop())
    try:
        from cryptography.hazmat.bindings._rust import openssl

        return openssl.aead.AESGCM
    except (ImportError, AttributeError):  # pragma: no cover - depends on cryptography's layout
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        return AESGCM


def unseal(key: bytes, blob: bytes, aad: bytes) -> bytes:
    """Reverse :func:`gw.crypto.seal` (nonce || ciphertext). Raises ``ValueError`` if the data
    was altered or the key is wrong."""
    if len(blob) < NONCE_SIZE + 16:
        raise ValueError("sealed data is truncated")
    try:
        return aesgcm_class()(key).decrypt(blob[:NONCE_SIZE], blob[NONCE_SIZE:], aad)
    except Exception as exc:  # cryptography's InvalidTag
        raise ValueError("sealed data failed authentication") from exc


# -- the hit ----------------------------------------------------------------------------------
TOKEN_KINDS = ("bearer-token", "openid-token")


def _private_dirs(cache: str) -> bool:
    """The state and cache directories are ours and not writable by others; a cache dir
    inside the state dir is no symlink (the rules of :func:`gw.paths.check_dir`)."""
    uid = posix.getuid()
    state = state_dir()
    for directory in (state, cache):
        try:
            st = posix.stat(directory)
        except OSError:
            return False
        if st.st_uid != uid or st.st_mode & 0o022:
            return False
    if cache.startswith(state.rstrip("/") + "/"):
        try:
            return posix.lstat(cache).st_mode & _S_IFMT != _S_IFLNK
        except OSError:
            return False
    return True


def fresh_entry(profile: str | None, kinds: tuple[str, ...] | None, min_ttl: int = 0) -> "tuple[EntryHeader, bytes, bytes] | None":
    """(header, plaintext, key) of ``profile``'s cache entry when the fast path may trust it, else None.

    Everything must hold: a plain profile name, caching on, a fresh entry of one of
    ``kinds`` (any kind: None) with ``min_ttl`` seconds left, bound to this profile and config file,
    the config file untouched since, private directories, a private key file (not a
    keyring) and an entry that authenticates.
    """
    if not profile or profile.startswith((".", "_")) or "/" in profile or getenv("GW_NO_CACHE"):
        return None
    config = abspath(config_path())
    cache = cache_dir()
    entry = read_entry(entry_path(cache, profile, config))
    if entry is None:
        return None
    header, line, body = entry
    now = time.time()
    if (
        (kinds is not None and header.kind not in kinds)
        or header.key_store != "file"
        or now >= header.refresh_at
        or header.expires_at - now < min_ttl
        or header.name != profile
        or header.config_path != config
        or header.stamp != config_stamp(config)
        or not _private_dirs(cache)
    ):
        return None
    key = read_regular(join(state_dir(), "key"), KEY_SIZE, private=True)
    if key is None or len(key) != KEY_SIZE:  # missing, unsafe or damaged: the ordinary path reports it
        return None
    try:
        return header, unseal(key, body, line), key
    except Exception:  # a damaged entry, or another key: the ordinary path decides
        return None


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
            from .durations import duration_seconds

            seconds = duration_seconds(value)
            if seconds is None:
                return None
            min_ttl = seconds
        else:
            return None
    return profile or getenv("GW_PROFILE") or None, min_ttl


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


def _cached_output(args: list[str]) -> bytes | None:
    """The bytes a hit prints for ``credential-process ARGS`` or ``token ARGS``, or None."""
    kinds: tuple[str, ...] = ("aws-credentials",)
    prefix, rest = b"", args[1:]
    if args[0] == "token":
        parsed = _token_args(rest)
        if parsed is None:
            return None
        rest, fmt = parsed
        kinds, prefix = TOKEN_KINDS, b"Authorization: Bearer " if fmt == "header" else b""
    parsed_args = _fast_args(rest)
    found = fresh_entry(parsed_args[0], kinds, parsed_args[1]) if parsed_args is not None else None
    output = found[1].partition(b"\n")[0] if found is not None else b""
    return prefix + output + b"\n" if output else None


def serve(args: list[str], real: bool = True, lib: str | None = None) -> int | None:
    """Serve ``gw credential-process|token ARGS`` (``args``) from the cache.

    ``lib``: the site-packages holding gw and cryptography, when the launcher put it on
    ``sys.path`` by itself (no ``site``): cryptography's binding is then loaded from there
    (:func:`load_binding`).

    Returns None when the cache cannot serve (nothing was written; the ordinary path runs),
    else the exit status: 0, or 1 when stdout is closed or full (one line on stderr). With
    ``real`` (a gw process, not a call from Python code) the process ends here instead, at
    once: nothing is left to clean up after a hit, and interpreter teardown is measurable.
    """
    _binding_lib[:] = [lib] if lib else []
    output = _cached_output(args)
    _binding_lib.clear()
    if output is None:
        settle_binding()
        return None
    status = 0
    try:
        sys.stdout.buffer.write(output)
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away: no traceback, like the ordinary path
        status = 1
    except (OSError, AttributeError, ValueError) as exc:  # stdout full, or closed (None, or a closed file)
        try:
            reason = getattr(exc, "strerror", None) or "it is closed"
            posix.write(2, f"gw: cannot write the credentials to stdout: {reason}\n".encode())
        except OSError:
            pass
        status = 1
    if real:
        posix._exit(status)  # also skips the final flush of a broken stdout, which would complain again
    return status


GC_THRESHOLD_MISS = 200_000  # objects allocated (less freed) between two collections; Python's default is 700


def launch() -> None:
    """The launcher's Python part (core/_launcher/gw), from the moment gw is importable.

    Started with ``-I -S``, the launcher put only gw's own site-packages on ``sys.path``;
    cryptography must be there too, or ``site`` comes back now. A cache hit of
    ``credential-process`` or ``token`` ends the process in :func:`serve`; for everything else
    this returns, and the launcher calls :func:`gw.cli.main`. The launcher turned the garbage collector off, and it stays off
    until then: a hit allocates little and ends at once, and collection passes while
    cryptography's binding builds its types cost about 1 % of a start-up's instructions.
    """
    import gc

    lib = None
    if sys.flags.no_site and "site" not in sys.modules:
        lib = __file__.rpartition("/")[0].rpartition("/")[0]
        try:
            posix.stat(lib + "/cryptography")
        except OSError:
            lib = None
            import site

            site.main()
    if sys.argv[1:2] == ["credential-process"] or sys.argv[1:2] == ["token"]:
        serve(sys.argv[1:], lib=lib)
        # A miss: a short process that imports a few hundred modules and frees little. Collection
        # passes triggered by those imports cost about 5-10 ms before the first upstream byte
        # (docs/performance.md, "Target 1"); collect only when a step really piles up objects.
        gc.set_threshold(GC_THRESHOLD_MISS)
    if lib:
        launched_from[:] = [lib]  # gw NAME -- ARGS: the exec fast path loads the binding the same way
    gc.enable()  # everything else may run long (gw serve, a plugin command's runner)
