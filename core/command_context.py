"""The narrow context a plugin command gets (:class:`gw.plugin.CommandContext`)."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

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
    """Implements :class:`gw.plugin.CommandContext` on top of the App, exposing only that.

    ``command`` is the full name of the plugin command being run (``"soracom"``,
    ``"setup soracom"``): :meth:`exec_with` names its exec recipe after it.
    """

    def __init__(self, app: App, command: str | None = None) -> None:
        self._app = app
        self._command = command

    @property
    def state_dir(self) -> Path:
        return Path(self._app.state_dir)

    @property
    def config_path(self) -> str:
        """The config file's path, known even before the file exists (``gw import`` creates it)."""
        return self._app.config_file

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

    def setting(self, name: str) -> Any:
        from .chain import setting_value

        return setting_value(self._app.plugin_settings(), name)

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

    def exec_with(self, profile: str, credential: Credential, argv: Sequence[str],
                  env: Mapping[str, str | None], args: Sequence[str], *,
                  depends_on: Sequence[str] = ()) -> NoReturn:
        """Replace gw with ``argv + args``, ``{field}`` placeholders filled from ``credential``.

        Leaves an exec recipe (no secrets) so the next cache hit of this command is served
        by the fast path (:mod:`gw.fastpath`) without loading plugins. Exec failures are
        one line with exit status 127 (not found) or 126 (cannot run).
        """
        import os
        import sys

        from .fastpath import child_argv_env, restore_signals, which

        argv, args = list(argv), list(args)
        if not argv or not isinstance(argv[0], str) or "{" in argv[0] or "}" in argv[0]:
            raise ValueError("exec_with: argv[0] must name the program, without placeholders")
        recipe: dict[str, Any] = {
            "argv": argv, "env": dict(env), "depends_on": {name: os.environ.get(name) for name in depends_on},
        }
        made = child_argv_env(recipe, credential.to_dict(), args)
        if made is None:
            raise ValueError("exec_with: a placeholder names no text field of the credential, or a brace is unpaired")
        program = which(argv[0])
        if program is None:
            raise _exec_failure(f"command not found: {argv[0]}", 127)
        self._record_exec(profile, credential.KIND, dict(recipe, program=program), program,
                          credential.secrets())
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            restore_signals()
            os.execve(program, made[0], made[1])
        except FileNotFoundError:
            raise _exec_failure(f"command not found: {argv[0]}", 127) from None
        except OSError as exc:
            raise _exec_failure(f"cannot run {program}: {exc.strerror or type(exc).__name__}", 126) from None
        raise AssertionError("execve returned")  # pragma: no cover

    def run_with(self, profile: str, credential: Credential, runner: str, program: str, args: Sequence[str], *,
                 options: Mapping[str, Any] | None = None, depends_on: Sequence[str] = ()) -> int | None:
        """Run ``program`` through the plugin's ``runner`` (``"module:function"``) while gw stays alive.

        ``function(program_path, fields, args, options)`` gets the program's path (found on
        ``PATH`` when it has no slash), ``credential.to_dict()``, ``args`` and ``options``
        (JSON values, no secrets) and returns ``(status, drop)``: ``drop`` drops the profile's
        cached credential (revoked or refused upstream); a ``status`` of None means nothing
        irrevocable happened (the caller may retry). The module must import nothing but the
        standard library: gw records a runner recipe, and the next cache hit calls it from the
        fast path without loading plugins. Returns the status (None: see above).
        """
        import os

        from .fastpath import load_runner, which

        program_path = which(program)
        if program_path is None:
            raise _exec_failure(f"command not found: {program}", 127)
        recipe: dict[str, Any] = {"argv": [program], "env": {}, "runner": runner, "options": dict(options or {}),
                                  "depends_on": {name: os.environ.get(name) for name in depends_on}}
        self._record_exec(profile, credential.KIND, dict(recipe, program=program_path), program_path,
                          credential.secrets())
        status, drop = load_runner(runner)(program_path, credential.to_dict(), list(args), recipe["options"])
        if drop:
            self._forget(profile, credential)
        return status

    def _forget(self, profile: str, credential: Credential) -> None:
        """Drop ``profile``'s cache entry if it still holds ``credential`` (no upstream revocation)."""
        app = self._app
        with app.profile_lock(profile):
            cached = app.cached(app.config.profile(profile))
            if cached is not None and cached.to_dict() == credential.to_dict():
                app.store.remove(profile)

    def _record_exec(self, profile: str, kind: str, recipe: dict[str, Any], program: str,
                     credential_secrets: Sequence[str]) -> None:
        """Write this command's exec recipe for ``profile`` when the fast path could use it.

        Only for a top-level command, a program found by an absolute path, the file key
        store and a cache entry that is this profile's current one; an unchanged recipe
        is left alone. Any failure just leaves the fast path without a recipe.
        """
        import json
        import os

        from .fastpath import command_word
        from .store import RECIPE_VERSION

        app = self._app
        name = self._command or ""
        if not command_word(name) or not os.path.isabs(program):
            return
        try:
            config = app.config
            store = app.store
            header = store.header(profile)
            digest = config.profile(profile).digest
            if config.settings.key_store != "file" or header is None or header.digest != digest or header.kind != kind:
                return
            recipe.update(version=RECIPE_VERSION, command=name, profile=profile, config=config.path, kind=kind, digest=digest)
            key = app.key()
            if store.read_recipe(name, profile, key) == recipe:
                return
            body = json.dumps(recipe, sort_keys=True, separators=(",", ":"))
            scrubber = app.ui.scrubber
            for value in credential_secrets:
                scrubber.add(value)
            if scrubber.scrub(body) != body:  # a secret written literally into argv or env: no recipe
                return
            store.write_recipe(name, profile, key, body.encode())
        except Exception:  # an optimisation only: the command still runs
            return


def app_of(context: object) -> App:
    """The App behind ``context``: for the ``core`` plugin's own commands (:mod:`gw.commands`),
    which are part of gw; a plugin's command has only the :class:`gw.plugin.CommandContext`."""
    if not isinstance(context, AppCommandContext):
        raise TypeError(f"a core command runs with gw's own CommandContext, not {type(context).__name__}")
    return context._app


def _exec_failure(message: str, code: int) -> Exception:
    """A one-line GwError ending gw with ``code`` (the shell's 126/127 for exec failures)."""
    from .errors import GwError

    error = GwError(message)
    error.exit_code = code
    return error
