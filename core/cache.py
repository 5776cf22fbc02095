"""The encrypted credential cache.

One file per profile, ``<cache>/<profile>.gwc``::

    gw1 <kind> <refresh_at> <expires_at> <issued_at> <key_store> <mtime_ns> <size> <ino> <digest> <config path>\\n
    <12-byte nonce><AES-256-GCM ciphertext, the header line as associated data>

The plaintext header lets ``gw cache list`` and freshness checks work without the
key; authenticating it as AAD means a tampered header fails decryption. The
plaintext is ``<credential_process JSON>\\n<credential JSON>``: the first line is
the exact output of a cache hit, so the hot path does no JSON work at all.

``digest`` is a SHA-256 of the profile's resolved configuration: an edited
profile never gets stale credentials. ``mtime_ns size ino`` stamp the config
file as it was; when the file is untouched the hot path can trust the digest
without parsing TOML.

Refresh rule (see :func:`refresh_margin`): an entry is handed out until
``refresh_at = expires_at - margin``. The margin is 16 minutes - one more than
botocore's 15-minute advisory refresh window, so the SDKs never receive
credentials they consider due - unless that would leave less than 5 minutes of
use; then the margin is half the lifetime (15-minute STS sessions are served for
7.5 minutes rather than fetched on every call).

Long-lived credentials (no expiry) are never written.
"""

import os
import time

from .crypto import seal, unseal
from .paths import atomic_write, ensure_dir

MAGIC = "gw1"
SUFFIX = ".gwc"
BOTOCORE_WINDOW = 15 * 60
MARGIN = BOTOCORE_WINDOW + 60
MIN_USE = 5 * 60


def refresh_margin(lifetime: float) -> float:
    """Seconds before expiry at which a cached credential stops being handed out."""
    if lifetime - MARGIN >= MIN_USE:
        return MARGIN
    return max(lifetime, 0) / 2


class EntryHeader:
    """The plaintext first line of a cache file (a plain class: no dataclasses on the hot path)."""

    __slots__ = ("kind", "refresh_at", "expires_at", "issued_at", "key_store", "stamp", "digest", "config_path")

    def __init__(
        self,
        kind: str,
        refresh_at: int,
        expires_at: int,
        issued_at: int,
        key_store: str,
        stamp: tuple[int, int, int],
        digest: str,
        config_path: str,
    ) -> None:
        self.kind = kind
        self.refresh_at = refresh_at
        self.expires_at = expires_at
        self.issued_at = issued_at
        self.key_store = key_store
        self.stamp = stamp
        self.digest = digest
        self.config_path = config_path

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
            self.config_path,
        ]
        return " ".join(fields).encode() + b"\n"

    @classmethod
    def parse(cls, line: bytes) -> "EntryHeader | None":
        try:
            parts = line.decode().rstrip("\n").split(" ", 10)
            if len(parts) != 11 or parts[0] != MAGIC:
                return None
            return cls(
                kind=parts[1],
                refresh_at=int(parts[2]),
                expires_at=int(parts[3]),
                issued_at=int(parts[4]),
                key_store=parts[5],
                stamp=(int(parts[6]), int(parts[7]), int(parts[8])),
                digest=parts[9],
                config_path=parts[10],
            )
        except (UnicodeDecodeError, ValueError):
            return None

    def fresh(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) < self.refresh_at


def config_stamp(path: str) -> tuple[int, int, int]:
    """(mtime_ns, size, inode) of the config file; zeros when it is missing."""
    try:
        st = os.stat(path)
    except OSError:
        return (0, 0, 0)
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def read_entry(path: str) -> "tuple[EntryHeader, bytes, bytes] | None":
    """(header, header line, sealed body) of a cache file, or None if absent/unreadable."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    line, sep, body = data.partition(b"\n")
    header = EntryHeader.parse(line + sep) if sep else None
    if header is None:
        return None
    return header, line + sep, body


class Cache:
    """Profiles' cached credentials and plugins' private state entries."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def path(self, name: str) -> str:
        return os.path.join(self.directory, name + SUFFIX)

    @staticmethod
    def state_name(plugin: str, name: str) -> str:
        # Profile names cannot start with "_", so state entries never collide with them.
        safe = "".join(c if c.isalnum() or c in "-." else "_" for c in f"{plugin}.{name}")
        return f"_state.{safe}"

    def header(self, name: str) -> "EntryHeader | None":
        entry = read_entry(self.path(name))
        return entry[0] if entry else None

    def load(self, name: str, key: bytes) -> "tuple[EntryHeader, bytes] | None":
        """Decrypt an entry: (header, plaintext). Raises ValueError if it is damaged."""
        entry = read_entry(self.path(name))
        if entry is None:
            if os.path.exists(self.path(name)):
                raise ValueError("unreadable header")
            return None
        header, line, body = entry
        return header, unseal(key, body, line)

    def store(self, name: str, header: EntryHeader, plaintext: bytes, key: bytes) -> None:
        ensure_dir(self.directory)
        line = header.line()
        atomic_write(self.path(name), line + seal(key, plaintext, line))

    def remove(self, name: str) -> bool:
        try:
            os.unlink(self.path(name))
            return True
        except FileNotFoundError:
            return False

    def names(self) -> list[str]:
        try:
            files = os.listdir(self.directory)
        except OSError:
            return []
        return sorted(f[: -len(SUFFIX)] for f in files if f.endswith(SUFFIX) and not f.startswith("."))
