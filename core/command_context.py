"""The narrow context a plugin command gets (:class:`gw.plugin.CommandContext`)."""

from __future__ import annotations

import copy
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import App
    from .credentials import Credential
    from .steps import StepContext


@dataclass(frozen=True)
class ProfileInfo:
    """A read-only copy of one profile (:class:`gw.plugin.ProfileView`)."""

    name: str
    description: str
    region: str | None
    steps: tuple[dict[str, Any], ...]
    tables: dict[str, dict[str, Any]]
    digest: str


class AppCommandContext:
    """Implements :class:`gw.plugin.CommandContext` on top of the App, exposing only that."""

    def __init__(self, app: App) -> None:
        self._app = app

    @property
    def state_dir(self) -> Path:
        return Path(self._app.state_dir)

    @property
    def config_path(self) -> str:
        """The config file's path, known even before the file exists (``gw import`` creates it)."""
        import os

        from .paths import config_path

        return os.path.abspath(self._app._config_path or config_path())

    @property
    def tls_verify(self) -> bool | str:
        return self._app.config.settings.ca_bundle or True

    def profile_names(self) -> list[str]:
        return sorted(self._app.config.profiles)

    def profile(self, name: str) -> ProfileInfo:
        profile = self._app.config.profile(name)
        tables = {key: self._app.table(name, key) for key in self._app.registry.tables}
        return ProfileInfo(name=profile.name, description=profile.description, region=profile.region,
                           steps=tuple(copy.deepcopy(profile.steps)), tables=tables, digest=profile.digest)

    def output_kind(self, profile: str) -> str:
        return self._app.output_kind(self._app.config.profile(profile))

    def resolve(self, profile: str, *, require: str | None = None, refresh: bool = False,
                min_ttl: float = 0) -> Credential:
        return self._app.resolve(profile, require=require, refresh=refresh, min_ttl=min_ttl)

    def step_options(self, profile: str, step: str, **overrides: Any) -> dict[str, Any]:
        return self._app.step_options(profile, step, **overrides)

    def step_context(self, profile: str, step: str | None = None) -> StepContext:
        return self._app.context(profile, step)

    def emit(self, text: str) -> None:
        self._app.emit(text)

    def info(self, message: str) -> None:
        self._app.ui.info(message)

    def warn(self, message: str) -> None:
        self._app.ui.warn(message)

    def status(self, message: str) -> AbstractContextManager[None]:
        return self._app.ui.status(message)

    def add_secret(self, value: str | None) -> None:
        self._app.ui.scrubber.add(value)

    def ask(self, label: str, secret: bool = True) -> str:
        from .prompt import ask

        settings = self._app.config.settings
        return ask(label, secret=secret, askpass=settings.askpass, timeout=settings.prompt_timeout)

    def gw_executable(self) -> str:
        return self._app.gw_executable()

    def vault_get(self, name: str) -> str | None:
        vault = self._app.vault
        return vault.get(name) if vault.has(name) else None

    def vault_set(self, values: dict[str, str]) -> None:
        for value in values.values():
            self._app.ui.scrubber.add(value)
        self._app.vault.update(values)

    def vault_remove(self, name: str) -> bool:
        return bool(self._app.vault.remove(name))
