"""gw's local encrypted secret store (``gw vault set/list/rm``).

One file, ``<state>/vault``: a JSON object of name -> value sealed with
AES-256-GCM under the same key as the cache. Writes are atomic and serialised
by a lock; a vault file readable by others is refused.
"""

from __future__ import annotations

import json
import os
import re

from .crypto import seal, unseal
from .errors import CacheError, SecretError
from .locks import file_lock
from .paths import (
    UnsafePath,
    atomic_write,
    ensure_dir,
    open_regular,
    private_file_problem,
)

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}\Z")
AAD = b"gw-vault-v1"


class Vault:
    def __init__(self, state_dir: str, key_provider) -> None:
        self.path = os.path.join(state_dir, "vault")
        self._key_provider = key_provider
        self._lock = os.path.join(state_dir, "locks", "vault.lock")

    def _read(self) -> dict[str, str]:
        try:
            fd = open_regular(self.path)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise CacheError(f"cannot read the vault {self.path}: {exc.strerror}") from None
        except UnsafePath as exc:
            raise CacheError(f"refusing to use the vault: {exc}") from None
        with os.fdopen(fd, "rb") as f:
            problem = private_file_problem(self.path, os.fstat(f.fileno()))
            if problem:
                raise CacheError(f"refusing to use the vault: {problem}")
            blob = f.read()
        try:
            data = json.loads(unseal(self._key_provider(), blob, AAD))
            if not isinstance(data, dict):
                raise TypeError("not an object")
            return data
        except (ValueError, TypeError):
            raise CacheError(
                f"the vault {self.path} cannot be decrypted (damaged, or made with another key)"
            ) from None

    def _write(self, data: dict[str, str]) -> None:
        sealed = seal(self._key_provider(), json.dumps(data).encode(), AAD)
        try:
            ensure_dir(os.path.dirname(self.path))
            atomic_write(self.path, sealed)
        except OSError as exc:  # full disk, read-only state dir, a directory at the path ...
            reason = exc.strerror or type(exc).__name__
            raise CacheError(f"cannot write the vault {self.path}: {reason}; it is unchanged") from None

    def names(self) -> list[str]:
        return sorted(self._read())

    def get(self, name: str) -> str:
        data = self._read()
        if name not in data:
            raise SecretError(f"no secret named {name!r} in the vault (add it with: gw vault set {name})")
        return data[name]

    def has(self, name: str) -> bool:
        return name in self._read()

    def set(self, name: str, value: str) -> None:
        if not NAME.match(name):
            raise SecretError("vault names use letters, digits and _ . @ - (up to 128 characters)")
        with file_lock(self._lock, 30, "the vault"):
            data = self._read()
            data[name] = value
            self._write(data)

    def update(self, values: dict[str, str]) -> None:
        """Set several secrets in one atomic write (all or none, e.g. an access key's id and secret)."""
        bad = [name for name in values if not NAME.match(name)]
        if bad:
            raise SecretError("vault names use letters, digits and _ . @ - (up to 128 characters)")
        with file_lock(self._lock, 30, "the vault"):
            data = self._read()
            data.update(values)
            self._write(data)

    def remove(self, name: str) -> bool:
        with file_lock(self._lock, 30, "the vault"):
            data = self._read()
            if name not in data:
                return False
            del data[name]
            self._write(data)
            return True
