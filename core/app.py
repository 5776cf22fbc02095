"""The application object: config, plugins, cache and vault, loaded lazily.

``App.resolve`` is the one place credentials are produced: check the cache,
take the profile lock, check again, run the chain, write the cache atomically.
N parallel callers on a cold cache therefore make one upstream fetch (and ask
for one MFA code); the others wait on the lock and read what the first wrote.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from . import paths
from .config import Config, Profile, load_config
from .credentials import Credential, credential_from_dict
from .errors import CacheError, ConfigError
from .locks import file_lock
from .resolve import CachedStep, Entries, Step, chain_marker, run_steps, with_region
from .store import EntryHeader, Store, config_stamp, prefix_digests, prefix_name
from .ui import UI


class App:
    def __init__(self, config_path: str | None = None) -> None:
        self.ui = UI()
        self._config_path = config_path
        self._config: Config | None = None
        self._registry: Any = None
        self._key: bytes | None = None
        self.state_dir = paths.state_dir()
        self.store = Store(paths.cache_dir(), os.path.abspath(config_path or paths.config_path()))
        self._vault: Any = None
        self._warned = False  # config-wide problems are warned about once per command
        self._entries: Entries | None = None

    @property
    def config_file(self) -> str:
        """The config file's absolute path, known without reading it (nor its existing)."""
        return self.store.config_path

    def for_config(self, config_path: str) -> App:
        """A new App for another config file (``gw init`` checks the file it wrote)."""
        return App(config_path=config_path)

    # -- lazily loaded parts -------------------------------------------------
    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self._config_path)
        return self._config

    @property
    def registry(self):
        if self._registry is None:
            self._registry = self._load_registry()
        return self._registry

    def _load_registry(self, needs: Any = None):
        from .loading import load_registry

        try:
            disabled = self.config.settings.disable_plugins
        except ConfigError:
            disabled = []
        return load_registry(disabled=disabled, needs=needs)

    def registry_for(self, profile: Profile):
        """The registry, loading (when none is loaded yet) only the plugins ``profile``'s steps need."""
        if self._registry is None:
            from .loading import needs_of

            self._registry = self._load_registry(needs_of(profile.steps, profile.tables))
        return self._registry

    def key(self) -> bytes:
        if self._key is None:
            from .crypto import load_key

            store = self._config.settings.key_store if self._config else self._key_store_from_config()
            key = load_key(self.state_dir, store)
            assert key is not None
            self._key = key
        return self._key

    def _key_store_from_config(self) -> str:
        try:
            return self.config.settings.key_store
        except ConfigError:
            return "file"

    @property
    def vault(self):
        if self._vault is None:
            from .vault import Vault

            self._vault = Vault(self.state_dir, self.key)
        return self._vault

    def emit(self, text: str) -> None:
        """Write ``text`` (and a newline) to stdout: the only way commands print results."""
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()

    @staticmethod
    def gw_executable() -> str:
        """Absolute path of the gw command (for lines written into other tools' configs)."""
        import shutil

        candidate = sys.argv[0] if os.path.basename(sys.argv[0]) == "gw" else shutil.which("gw")
        if candidate and os.path.isfile(candidate):
            return os.path.abspath(candidate)
        beside = os.path.join(os.path.dirname(sys.executable), "gw")
        if os.path.isfile(beside):
            return beside
        raise ConfigError("cannot find the gw executable on PATH")

    @property
    def chain_env(self):
        """The narrow services a running chain gets (:class:`gw.chain.ChainEnv`)."""
        from .chain import ChainEnv

        return ChainEnv(settings=self.config.settings, ui=self.ui, registry=self.registry,
                        state_dir=self.state_dir, vault=lambda: self.vault, state=StateStore(self),
                        plugin_settings=self.plugin_settings)

    def plugin_settings(self) -> dict[str, Any]:
        """The ``[settings]`` keys plugins declared, checked, with defaults filled in."""
        from .chain import check_settings

        return check_settings(self.config.settings, self.registry, self.config.path)[0]  # wrong ones fail when read

    def context(self, profile: str, step: str | None = None):
        """A :class:`gw.plugin.StepContext`; with ``step``, the one that step type's runs get."""
        from .chain import ChainContext, find_step_type

        if step is None:
            return ChainContext(self.chain_env, profile)
        return ChainContext(self.chain_env, profile, -1, find_step_type(self.registry, step))

    def step_options(self, profile: str, step: str, **overrides: Any) -> dict[str, Any]:
        """The checked options (defaults filled in) of the profile's first ``step`` step, with overrides."""
        from .chain import check_options, find_step_type

        config = self.config.profile(profile)
        raw = next((dict(s) for s in config.steps if s.get("use") == step), None)
        if raw is None:
            raise ConfigError(f"profile {profile!r} has no {step} step")
        raw.update(overrides)
        values, problems = check_options(find_step_type(self.registry, step), raw, self.registry.schemes)
        if problems:
            raise ConfigError(f"profile {profile!r}, {step} step: {problems[0]}")
        return values

    def table(self, profile: str, name: str) -> dict[str, Any]:
        """A plugin-owned profile table, checked, with defaults filled in."""
        from .chain import check_table

        spec = self.registry.tables.get(name)
        if spec is None and self.registry.partial:
            self.registry.complete()
            spec = self.registry.tables.get(name)
        raw = self.config.profile(profile).tables.get(name, {})
        if spec is None:
            return dict(raw)
        values, problems = check_table(spec, raw, self.registry.schemes)
        if problems:
            raise ConfigError(f"profile {profile!r}, {name} table: {problems[0]}")
        return values

    # -- checking --------------------------------------------------------------
    def plan(self, profile: Profile):
        """The profile's checked steps. Only its own mistakes fail it: a config-wide one that
        no command reads (a misspelt table or setting) is a warning; a wrong setting fails
        the command that reads it."""
        from .chain import check_profile, check_settings, unread_setting_problems

        registry = self.registry_for(profile)
        planned, problems = check_profile(profile, registry, self.config.path)
        values, settings_problems = check_settings(self.config.settings, registry, self.config.path)
        if (problems or settings_problems) and registry.partial:  # perhaps a plugin left out knows it
            registry.complete()
            return self.plan(profile)
        if problems:
            more = f" (and {len(problems) - 1} more: run gw check)" if len(problems) > 1 else ""
            raise ConfigError(problems[0] + more)
        if not self._warned:
            self._warned = True
            for line in [*self.config.problems, *unread_setting_problems(values, settings_problems)]:
                self.ui.warn(f"{line}; ignored (gw check lists every problem)")
        return planned

    def output_kind(self, profile: Profile) -> str:
        step, values = self.plan(profile)[-1]
        return step.output_kind(values)

    # -- the cache -----------------------------------------------------------------
    def cached(self, profile: Profile, kind: str | None = None) -> Credential | None:
        """A fresh cached credential for ``profile`` (of ``kind``) or None; damaged entries are dropped."""
        header = self.store.header(profile.name)  # None unless bound to this profile name and config
        if header is None or header.digest != profile.digest or not header.fresh():
            return None
        if kind is not None and header.kind != kind:
            return None
        credential = self.entries.load(profile.name, f"the cached credentials of profile {profile.name!r}")
        if credential is not None and (header.stamp != self.config_stamp or header.config_path != self.config.path):
            self._restamp(profile, credential, header)
        return credential

    @property
    def entries(self) -> Entries:
        """The Store's credential entries, with this App's key, UI and credential kinds."""
        if self._entries is None:
            self._entries = Entries(self.store, self.ui, self.key, lambda: self.config.settings.key_store,
                                    self.credential_from_dict)
        return self._entries

    def prefix_lock(self, digest: str):
        """The lock that guards a shared chain prefix: one fetch (and one MFA prompt) for all its profiles."""
        return file_lock(
            os.path.join(self.state_dir, "locks", f"{prefix_name(digest)}.lock"),
            self.config.settings.lock_timeout,
            "a chain step shared by several profiles",
            on_wait=lambda: self.ui.wait("another gw process is fetching a shared chain step; waiting for it"),
            on_unavailable=self.ui.warn,
        )

    def profile_lock(self, name: str, timeout: float | None = None):
        """The inter-process lock that guards a profile's cache entry."""
        if timeout is None:
            try:
                config = self.config
            except ConfigError:  # e.g. gw cache clear with a config that cannot be read
                config = None
            timeout = config.settings.lock_timeout if config else 120.0  # a wrong lock_timeout fails here
        return file_lock(
            os.path.join(self.state_dir, "locks", f"{name}.lock"),
            timeout,
            f"profile {name!r}",
            on_wait=lambda: self.ui.wait(f"another gw process is busy with {name!r}; waiting for it"),
            on_unavailable=self.ui.warn,
        )

    def _restamp(self, profile: Profile, credential: Credential, header: EntryHeader) -> None:
        """Rewrite an entry with the current config stamp, so the fast path serves it again.

        Only when the profile lock is free right now and the entry is still the one just
        read: never resurrect an entry that ``gw cache clear`` or a fetch replaced meanwhile.
        """
        from .errors import LockTimeout

        try:
            with self.profile_lock(profile.name, timeout=0) as locked:
                current = self.store.header(profile.name)
                if locked and current is not None and current.line() == header.line():
                    self._store(profile, credential, quiet=True)
        except LockTimeout:
            pass

    @property
    def config_stamp(self) -> tuple[int, int, int, int]:
        return getattr(self.config, "stamp", None) or config_stamp(self.config.path)

    def _store(self, profile: Profile, credential: Credential, quiet: bool = False) -> None:
        fast = credential.fast_output()
        self.entries.write(profile.name, credential, digest=profile.digest, stamp=self.config_stamp,
                    config_path=self.config.path, fast="" if "\n" in fast else fast,
                    what=None if quiet else f"credentials of profile {profile.name!r}")

    def state_delete(self, plugin: str, name: str) -> None:
        self.store.state_delete(plugin, name)

    def state_get(self, plugin: str, name: str) -> dict[str, Any] | None:
        return self.store.state_get(plugin, name, self.key())

    def state_put(self, plugin: str, name: str, data: dict[str, Any], expires_at: float) -> None:
        try:
            self.store.state_put(plugin, name, data, expires_at, self.config.settings.key_store, self.key())
        except (OSError, CacheError) as exc:
            self.ui.warn(f"cannot keep {plugin} state ({getattr(exc, 'strerror', None) or exc})")

    # -- resolving --------------------------------------------------------------
    def resolve(self, name: str, *, require: str | None = None, refresh: bool = False,
                min_ttl: float = 0) -> Credential:
        """The profile's credential: from the cache when fresh, else by running the chain once.

        ``refresh`` skips the cache; ``min_ttl`` (seconds) treats a cached credential with
        less left than that as stale. A cache hit needs no plugin: the chain is planned
        (plugins loaded) only on a miss, so callers that waited on the lock for another
        process's fetch stay cheap.
        """
        profile = self.config.profile(name)
        with chain_marker(name):
            credential = self._hit(profile, require, refresh, min_ttl)  # no lock, no plugin loaded
            if credential is not None:
                return credential
            with self.profile_lock(name):
                credential = self._hit(profile, require, refresh, min_ttl)  # another gw may have fetched meanwhile
                if credential is not None:
                    return credential
                credential = with_region(run_steps(self.steps(profile, require), refresh), profile.region)
                expiration = getattr(credential, "expiration", None)
                if expiration is not None:  # never hand out what this computer's clock calls expired
                    from .clock import check_expiry

                    check_expiry(expiration, f"the last step of profile {name!r}")
                self._store(profile, credential)
        self._issued(name, credential, False)
        return credential

    def _hit(self, profile: Profile, require: str | None, refresh: bool, min_ttl: float) -> Credential | None:
        credential = None if refresh else _long_enough(self.cached(profile, require), min_ttl)
        if credential is not None:
            self._issued(profile.name, credential, True)
        return credential

    def steps(self, profile: Profile, require: str | None = None) -> list[Step]:
        """The profile's planned steps, each but the last wrapped in caching bound to its prefix digest."""
        from .chain import run_step

        planned = self.plan(profile)
        kinds = [step.output_kind(values) for step, values in planned]
        if require and kinds[-1] != require:
            raise ConfigError(f"profile {profile.name!r} yields {kinds[-1]}, but this command needs {require}")
        env, digests, last = self.chain_env, prefix_digests(profile.steps), len(planned) - 1

        def runner(index: int) -> Callable[[Credential | None], Credential]:
            step, values = planned[index]
            return lambda upstream: run_step(env, profile.name, index, step, values, upstream)

        return [Step(runner(i)) if i == last else
                CachedStep(runner(i), self.entries, digests[i], kinds[i], functools.partial(self.prefix_lock, digests[i]))
                for i in range(last + 1)]

    def credential_from_dict(self, kind: str, data: dict[str, Any]) -> Credential:
        """Rebuild a cached credential; a plugin's kind loads the plugins to find its class."""
        from .credentials import KINDS

        if kind not in KINDS:
            cls = self.registry.kinds.get(kind)
            if cls is None and self.registry.partial:
                self.registry.complete()
                cls = self.registry.kinds.get(kind)
            if cls is None:
                raise ValueError(f"unknown credential kind {kind!r}")
            return cls.from_dict(data)
        return credential_from_dict(kind, data)

    def _issued(self, name: str, credential: Credential, from_cache: bool) -> None:
        if from_cache and self._registry is None:
            return  # loading every plugin just to report a cache hit would defeat the cache
        self.registry.hook.gw_credentials_issued(profile=name, credential=credential, from_cache=from_cache)


def _long_enough(credential: Credential | None, min_ttl: float) -> Credential | None:
    """``credential`` unless it has less than ``min_ttl`` seconds left (``--min-ttl``)."""
    expiration = getattr(credential, "expiration", None)
    if credential is None or not min_ttl or expiration is None:
        return credential
    return credential if expiration.timestamp() - time.time() >= min_ttl else None


class StateStore:
    """Plugins' private encrypted state entries (what ``ctx.state_get/put/delete`` reach)."""

    def __init__(self, app: App) -> None:
        self._app = app

    def get(self, plugin: str, name: str) -> dict[str, Any] | None:
        return self._app.state_get(plugin, name)

    def put(self, plugin: str, name: str, data: dict[str, Any], expires_at: float) -> None:
        self._app.state_put(plugin, name, data, expires_at)

    def delete(self, plugin: str, name: str) -> None:
        self._app.state_delete(plugin, name)
