"""Resolving a profile: planned steps, each wrapped in caching, run from the longest cached prefix.

The model is botocore's ``CachedCredentialFetcher`` and aws-vault's
``CachedSessionProvider``: caching wraps a step instead of being a branch inside
the App. :class:`CachedStep` binds one planned step to the digest of the chain
prefix that ends with it: it answers from the Store while its entry is fresh,
otherwise it runs the step under the prefix's lock (checking again once it has
the lock) and seals the result. Profiles sharing ``aws-keys -> session-token``
thus share one MFA session, and parallel callers make one upstream call. The last
step's result belongs to the profile (the App caches it under the profile's name),
so it is a :class:`Step`, not cached by prefix.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .credentials import Credential
from .errors import CacheError, ConfigError
from .store import Store, prefix_name
from .ui import UI


@dataclass
class Entries:
    """The Store's credential entries as resolving needs them: a damaged entry is a warning and a miss,
    an entry that cannot be written a warning."""

    store: Store
    ui: UI
    key: Callable[[], bytes]
    key_store: Callable[[], str]
    rebuild: Callable[[str, dict[str, Any]], Credential]

    def load(self, name: str, what: str) -> Credential | None:
        """Decrypt and rebuild the credential of entry ``name``; a damaged one is dropped with a warning."""
        try:
            loaded = self.store.load(name, self.key())
        except ValueError:
            self.ui.warn(f"{what} were damaged; fetching new ones")
            self.store.discard(name)
            return None
        if loaded is None:
            return None
        try:
            doc = json.loads(loaded[1].partition(b"\n")[2])
            credential = self.rebuild(doc["kind"], doc["data"])
        except (ValueError, KeyError, TypeError):
            self.ui.warn(f"{what} were unreadable; fetching new ones")
            self.store.discard(name)
            return None
        for value in credential.secrets():
            self.ui.scrubber.add(value)
        return credential

    def write(self, name: str, credential: Credential, *, digest: str, stamp: tuple[int, int, int, int],
              config_path: str, fast: str, what: str | None) -> None:
        """Seal ``credential`` into entry ``name`` (the Store skips long-lived, single-use and nearly expired ones)."""
        try:
            self.store.store_credential(name, credential, digest=digest, stamp=stamp, config_path=config_path,
                                        fast=fast, key_store=self.key_store(), key=self.key())
        except (OSError, CacheError) as exc:
            if what:
                reason = getattr(exc, "strerror", None) or str(exc)
                self.ui.warn(f"{what} were not cached ({reason})")


@dataclass
class Step:
    """One planned step, ready to run on its upstream's credential."""

    run: Callable[[Credential | None], Credential]

    def cached(self) -> Credential | None:
        return None

    def __call__(self, upstream: Credential | None, refresh: bool) -> Credential:
        return self.run(upstream)


@dataclass
class CachedStep(Step):
    """A step bound to its chain prefix's digest: cached, and run under the prefix's lock."""

    entries: Entries
    digest: str
    kind: str
    lock: Callable[[], contextlib.AbstractContextManager[Any]]

    def cached(self) -> Credential | None:
        """A fresh cached result of this prefix (shared by every profile starting so)."""
        name = prefix_name(self.digest)
        header = self.entries.store.header(name)
        if header is None or header.digest != self.digest or header.kind != self.kind or not header.fresh():
            return None
        return self.entries.load(name, "cached credentials of a shared chain step")

    def __call__(self, upstream: Credential | None, refresh: bool) -> Credential:
        with self.lock():
            found = None if refresh else self.cached()  # another process may have fetched meanwhile
            if found is None:
                found = self.run(upstream)
                self.entries.write(prefix_name(self.digest), found, digest=self.digest, stamp=(0, 0, 0, 0),
                                   config_path="-", fast="", what="credentials of a shared chain step")
        return found


def run_steps(steps: list[Step], refresh: bool) -> Credential:
    """Run ``steps`` from after the longest prefix whose result is cached (all of them with ``refresh``)."""
    start, upstream = 0, None
    if not refresh:
        for index in range(len(steps) - 2, -1, -1):
            found = steps[index].cached()
            if found is not None:
                start, upstream = index + 1, found
                break
    for step in steps[start:]:
        upstream = step(upstream, refresh)
    assert upstream is not None
    return upstream


def with_region(credential: Credential, region: str | None) -> Credential:
    """AWS credentials without a region get the profile's ``region``."""
    from .credentials import AwsCredentials

    if region and isinstance(credential, AwsCredentials) and not credential.region:
        credential.region = region
    return credential


@contextlib.contextmanager
def chain_marker(profile: str) -> Iterator[None]:
    """Record the profiles being resolved in ``GW_CHAIN`` so a child gw can spot a cycle."""
    before = os.environ.get("GW_CHAIN")
    names = [n for n in (before or "").split(",") if n]
    if profile in names:
        raise ConfigError(f"profile cycle: {' -> '.join(names + [profile])} (a step leads back to gw itself)")
    os.environ["GW_CHAIN"] = ",".join(names + [profile])
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("GW_CHAIN", None)
        else:
            os.environ["GW_CHAIN"] = before
