"""The Store: every kind of entry in the cache directory, in one place.

Four kinds of entry live there, and only this module knows their names and formats
(with :mod:`gw.cachehit`, which holds the header and the reading of an entry: the cache
hit reads them without importing this module):

- profile results: ``<profile>.<tag>.gwc`` (below);
- shared chain prefixes: ``_prefix.<digest>.<tag>.gwc`` (the result of a chain's first
  steps, shared by every profile starting with them; :func:`prefix_digests`);
- plugin state: ``_state.<plugin>.<name>.<tag>.gwc`` (shared by every config file);
- exec recipes: ``_exec.<command>.<tag>.json`` (what the fast path of a plugin command
  that execs needs; authenticated, holding no secret; see :func:`seal_recipe`);

and the entries of an older gw (``gw1`` headers, ``<profile>.gwc``), never read, only
cleared. The exec fast path imports this module: it imports nothing heavy (no ``json``,
no ``re``), and what the slow path alone needs is imported inside functions.

A profile result::

    gw2 <kind> <refresh_at> <expires_at> <issued_at> <key_store> <mtime_ns> <size> <ino> <ctime_ns> <digest> <name> <config path>\\n
    <12-byte nonce><AES-256-GCM ciphertext, the header line as associated data>

The plaintext header lets ``gw cache list`` and freshness checks work without the
key; authenticating it as AAD means a tampered header fails decryption. The
plaintext is ``<credential_process JSON>\\n<credential JSON>``: the first line is
the exact output of a cache hit, so the hot path does no JSON work at all.

Binding: ``name`` (the profile) and ``digest`` (a SHA-256 of the profile's
resolved configuration) are in the authenticated header, and every reader checks
them: an entry copied or renamed to another profile's file is a miss, never
another profile's credentials. ``<tag>`` is a hash of the exact profile name and
the config file's path, so ``Admin`` and ``admin`` never share a file on a
case-insensitive filesystem and two config files sharing a profile name and one
``GW_HOME`` keep separate entries. ``mtime_ns size ino ctime_ns`` stamp the
config file as it was; when the file is untouched the hot path can trust the
digest without parsing TOML (the ctime catches an in-place edit that restored
the mtime: no user can set a ctime).

Entries larger than :data:`MAX_ENTRY` and anything but regular files are
ignored without being read (a FIFO never blocks a reader).

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

# The reading half of the format lives in gw.cachehit: the cache hit needs it without os.
from .cachehit import MAX_ENTRY, SUFFIX, entry_path, entry_tag, read_entry, read_regular
from .cachehit import EntryHeader as EntryHeader
from .cachehit import config_stamp as config_stamp
from .crypto import seal, unseal
from .paths import atomic_write, ensure_dir

PREFIX = "_prefix."  # shared chain prefixes
STATE = "_state."  # plugin state
RECIPE = "_exec."  # exec recipes
RECIPE_SUFFIX = ".json"
RECIPE_VERSION = 1
RECIPE_MAX = 64 * 1024  # bytes: a recipe is a few hundred
LEGACY_MAGIC = b"gw1 "  # header of the entries of gw before entries were bound to their profile and config
BOTOCORE_WINDOW = 15 * 60
MARGIN = BOTOCORE_WINDOW + 60
MIN_USE = 5 * 60


def refresh_margin(lifetime: float) -> float:
    """Seconds before expiry at which a cached credential stops being handed out."""
    if lifetime - MARGIN >= MIN_USE:
        return MARGIN
    return max(lifetime, 0) / 2


def prefix_digests(steps: list) -> list[str]:
    """SHA-256 of each chain prefix ``steps[:i + 1]``: the entry of step ``i``'s result."""
    import hashlib
    import json

    return [
        hashlib.sha256(b"gw-prefix\0" + json.dumps(steps[: i + 1], sort_keys=True, default=str).encode()).hexdigest()
        for i in range(len(steps))
    ]


def prefix_name(digest: str) -> str:
    """The entry name of a shared chain prefix."""
    return PREFIX + digest[:40]


def state_name(plugin: str, name: str) -> str:
    """The entry name of a plugin's state (profile names cannot start with ``_``: no collision)."""
    safe = "".join(c if c.isalnum() or c in "-." else "_" for c in f"{plugin}.{name}")
    return STATE + safe


def kind_of(name: str) -> str:
    """``prefix``, ``state`` or ``profile``: what the entry ``name`` holds."""
    if name.startswith(PREFIX):
        return "prefix"
    if name.startswith(STATE):
        return "state"
    return "profile"


# -- exec recipes --------------------------------------------------------------------------------
# The file is ``{"mac": "<hex>", "recipe": <the recipe as JSON>}``; the MAC is AES-GCM with the
# cache key over an empty plaintext with the recipe as associated data (a GMAC), so an edited
# recipe (another program, another kind, a placeholder moved) is never trusted.
_MAC_AAD = b"gw-exec-recipe\0"
_HEAD, _MID, _TAIL = b'{"mac":"', b'","recipe":', b"}\n"
_MAC_HEX = 2 * (12 + 16)  # hex of nonce + GCM tag (gw.crypto.seal of an empty plaintext)


def recipe_path(cache_dir: str, command: str, profile: str, config: str) -> str:
    """The recipe file of ``command`` for ``profile`` of config file ``config`` (case-safe, like entries)."""
    return os.path.join(cache_dir, f"{RECIPE}{command}.{entry_tag(command + chr(0) + profile, config)}{RECIPE_SUFFIX}")


def seal_recipe(key: bytes, body: bytes) -> bytes:
    """The recipe file's bytes for ``body`` (the recipe as JSON)."""
    return _HEAD + seal(key, b"", _MAC_AAD + body).hex().encode() + _MID + body + _TAIL


def open_recipe(key: bytes, data: bytes) -> dict | None:
    """The recipe in a recipe file's bytes when its MAC verifies with ``key``, else None."""
    mac_end = len(_HEAD) + _MAC_HEX
    if not (data.startswith(_HEAD) and data.endswith(_TAIL)) or data[mac_end : mac_end + len(_MID)] != _MID:
        return None
    body = data[mac_end + len(_MID) : -len(_TAIL)]
    from .jsonscan import parse_json

    try:
        unseal(key, bytes.fromhex(data[len(_HEAD) : mac_end].decode("ascii")), _MAC_AAD + body)
        recipe = parse_json(body.decode())
    except Exception:  # altered, or written with another key
        return None
    return recipe if isinstance(recipe, dict) and recipe.get("version") == RECIPE_VERSION else None


def read_recipe(path: str, key: bytes) -> dict | None:
    """The recipe at ``path`` when the file is ours, private, small and authentic, else None."""
    data = read_regular(path, RECIPE_MAX, private=True)
    return None if data is None else open_recipe(key, data)


class Store:
    """Every entry of one cache directory, as seen from one config file.

    ``config_path`` scopes profile entries to one config file (shared prefixes,
    plugin state and the legacy entries are not scoped).
    """

    def __init__(self, directory: str, config_path: str = "") -> None:
        self.directory = directory
        self.config_path = config_path

    # -- names ---------------------------------------------------------------------------
    def path(self, name: str) -> str:
        return entry_path(self.directory, name, self.config_path)

    state_name = staticmethod(state_name)
    prefix_name = staticmethod(prefix_name)
    kind_of = staticmethod(kind_of)

    def check(self) -> None:
        """Raise CacheError when the cache directory is unsafe (symlink, foreign, group/other-writable)."""
        from .paths import check_dir

        problem = check_dir(self.directory)
        if problem:
            from .errors import CacheError

            raise CacheError(f"refusing to use the cache: {problem}")

    # -- binding and sealing ---------------------------------------------------------------
    def header(self, name: str) -> "EntryHeader | None":
        """The entry's header, only when it is bound to ``name`` (and this config, for profiles)."""
        self.check()
        entry = read_entry(self.path(name))
        if entry is None or not self._bound(entry[0], name):
            return None
        return entry[0]

    def _bound(self, header: EntryHeader, name: str) -> bool:
        if header.name != name:
            return False
        return name.startswith("_") or header.config_path == self.config_path

    def load(self, name: str, key: bytes) -> "tuple[EntryHeader, bytes] | None":
        """Decrypt an entry: (header, plaintext). Raises ValueError if it is damaged or not this profile's."""
        self.check()
        path = self.path(name)
        entry = read_entry(path)
        if entry is None:
            if os.path.lexists(path):
                raise ValueError("unreadable entry")
            return None
        header, line, body = entry
        if not self._bound(header, name):
            raise ValueError("the entry belongs to another profile or config")
        return header, unseal(key, body, line)

    def store(self, name: str, header: EntryHeader, plaintext: bytes, key: bytes) -> None:
        """Seal and write an entry atomically. Raises OSError or CacheError when it cannot."""
        from .errors import CacheError

        ensure_dir(self.directory)
        header.name = name
        try:
            line = header.line()
        except ValueError as exc:
            raise CacheError(str(exc)) from None
        atomic_write(self.path(name), line + seal(key, plaintext, line))

    def store_credential(self, name: str, credential, *, digest: str, stamp: tuple[int, int, int, int],
                         config_path: str, fast: str, key_store: str, key: bytes) -> None:
        """Seal ``credential`` into entry ``name``; long-lived, single-use or nearly expired ones are not
        written. Raises OSError or CacheError when it cannot be written."""
        import json

        expiration = getattr(credential, "expiration", None)
        if expiration is None or credential.SINGLE_USE:
            return
        now = time.time()
        expires = int(expiration.timestamp())
        issued_at = getattr(credential, "issued_at", None)
        issued = int(issued_at.timestamp()) if issued_at else int(now)
        refresh_at = int(expires - refresh_margin(expires - issued))
        if refresh_at <= now:
            return
        header = EntryHeader(kind=credential.KIND, refresh_at=refresh_at, expires_at=expires, issued_at=issued,
                             key_store=key_store, stamp=stamp, digest=digest, config_path=config_path)
        body = json.dumps({"kind": credential.KIND, "data": credential.to_dict()}, separators=(",", ":"))
        self.store(name, header, f"{fast}\n{body}".encode(), key)

    # -- plugin state ------------------------------------------------------------------------
    def state_get(self, plugin: str, name: str, key: bytes) -> dict | None:
        """A plugin's state ``name`` while it has not expired; a damaged entry is dropped."""
        import json

        entry_name = state_name(plugin, name)
        header = self.header(entry_name)
        if header is None or time.time() >= header.expires_at:
            return None
        try:
            loaded = self.load(entry_name, key)
            return json.loads(loaded[1]) if loaded else None
        except ValueError:
            self.discard(entry_name)
            return None

    def state_put(self, plugin: str, name: str, data: dict, expires_at: float, key_store: str, key: bytes) -> None:
        """Seal a plugin's state until ``expires_at``. Raises OSError or CacheError when it cannot."""
        import json

        header = EntryHeader("state", int(expires_at), int(expires_at), int(time.time()), key_store,
                             (0, 0, 0, 0), "-", "-")
        self.store(state_name(plugin, name), header, json.dumps(data).encode(), key)

    def state_delete(self, plugin: str, name: str) -> None:
        self.discard(state_name(plugin, name))

    # -- exec recipes ------------------------------------------------------------------------
    def recipe_path(self, command: str, profile: str) -> str:
        return recipe_path(self.directory, command, profile, self.config_path)

    def read_recipe(self, command: str, profile: str, key: bytes) -> dict | None:
        return read_recipe(self.recipe_path(command, profile), key)

    def write_recipe(self, command: str, profile: str, key: bytes, body: bytes) -> None:
        """Seal and write a recipe (``body``: its JSON) atomically, 0600."""
        atomic_write(self.recipe_path(command, profile), seal_recipe(key, body), 0o600)

    def remove_recipes(self, profile: str | None = None) -> None:
        """Drop the exec recipes: all, or ``profile``'s (of this config)."""
        try:
            files = [f for f in os.listdir(self.directory) if f.startswith(RECIPE) and f.endswith(RECIPE_SUFFIX)]
        except OSError:
            return
        for file in files:
            command = file[len(RECIPE):].rpartition(".")[0].rpartition(".")[0]
            path = os.path.join(self.directory, file)
            if profile is None or path == self.recipe_path(command, profile):
                try:
                    os.unlink(path)
                except OSError:
                    pass

    # -- listing and clearing ------------------------------------------------------------------
    def remove(self, name: str) -> bool:
        """Delete an entry; False if there was none. Raises CacheError when it cannot be deleted."""
        try:
            os.unlink(self.path(name))
            return True
        except FileNotFoundError:
            return False
        except OSError as exc:
            from .errors import CacheError

            raise CacheError(f"cannot remove {self.path(name)}: {exc.strerror}") from None

    def discard(self, name: str) -> None:
        """Delete an entry if possible (a damaged entry in a read-only cache stays, harmlessly)."""
        try:
            os.unlink(self.path(name))
        except OSError:
            pass

    def legacy_files(self, name: str | None = None) -> list[str]:
        """Paths of entries an older gw wrote (``gw1`` headers, named ``<profile>.gwc``): all, or ``name``'s.

        The current gw never reads them; only ``gw cache clear`` removes them.
        """
        self.check()
        try:
            files = os.listdir(self.directory)
        except OSError:
            return []
        found = []
        for file in files:
            if file.startswith(".") or not file.endswith(SUFFIX) or (name is not None and file != name + SUFFIX):
                continue
            path = os.path.join(self.directory, file)
            if (read_regular(path, MAX_ENTRY) or b"").startswith(LEGACY_MAGIC):
                found.append(path)
        return sorted(found)

    def remove_legacy(self, name: str | None = None) -> int:
        """Delete the entries of an older gw (all, or ``name``'s); how many went."""
        removed = 0
        for path in self.legacy_files(name):
            try:
                os.unlink(path)
                removed += 1
            except OSError:
                pass
        return removed

    def names(self, kind: str | None = None) -> list[str]:
        """Names of this config's profile entries, every shared prefix and every plugin state entry
        (only those of :func:`kind_of` ``kind`` when given)."""
        self.check()
        try:
            files = os.listdir(self.directory)
        except OSError:
            return []
        found: set[str] = set()
        for file in files:
            if not file.endswith(SUFFIX) or file.startswith("."):
                continue
            name = file[: -len(SUFFIX)].rpartition(".")[0]
            if name and os.path.join(self.directory, file) == self.path(name):
                found.add(name)
        return sorted(n for n in found if kind is None or kind_of(n) == kind)
