"""A testing kit for gw plugin authors: pytest fixtures and a step-context stand-in.

Enable it in a plugin's ``conftest.py``::

    pytest_plugins = ["gw.testing"]

Fixtures:

- ``gw_home``: a :class:`GwHome` - an isolated user (temporary ``HOME``,
  ``GW_HOME``, ``GW_CONFIG``, ``~/.aws``), with ``write_config(text)``,
  ``run(*args)`` (the real ``gw`` executable, stdin from /dev/null, no
  controlling terminal), ``run_in_process(*args)`` (the same command line through
  ``gw.cli.main`` in the test's own process, for speed: :func:`run_in_process`),
  ``popen(*args)`` and
  ``vault_set(name, value)``. A plugin project is registered through its
  entry points with ``gw_home.install_plugin(project_dir)``, as installing it would;
  a bare module is loaded with ``gw_home.load_plugin("module")`` (``GW_PLUGINS``).
  Neither installs anything into the running venv.
- ``step_context``: a :class:`StubStepContext`, for calling a step's ``run``
  directly in a unit test: secrets are resolved from a dict, state is kept in
  memory, messages are recorded.

Test through real parts wherever you can: run the real ``gw`` against a local
emulator and count the calls it receives. ``run_in_process`` is to ``run`` what pytest's
``runpytest_inprocess`` is to ``runpytest_subprocess``: the same command line and
result, without starting an interpreter; keep ``run`` for what crosses a process
boundary (the launcher and the hot path's ``os._exit``, signals, ``/dev/tty``,
locks between processes, ``gw exec``, a process ended on purpose).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._inprocess import InProcessExit, run_in_process

__all__ = ["GwHome", "InProcessExit", "StubStepContext", "assert_clean_failure", "clean_environ", "gw_executable",
           "run_in_process"]

import pytest

# Variables from the developer's own environment that must never leak into a test.
SCRUBBED_PREFIXES = ("AWS_", "GW_", "XDG_", "SORACOM_", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def gw_executable() -> str:
    """The ``gw`` executable of the running interpreter's environment."""
    return str(Path(sys.executable).parent / "gw")


def clean_environ() -> dict[str, str]:
    """``os.environ`` without any AWS, gw, XDG or SORACOM variable of the developer's."""
    return {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_PREFIXES)}


@dataclass
class GwHome:
    """An isolated user: HOME, gw config and state, ~/.aws, and a way to run gw."""

    root: Path
    env: dict[str, str]
    ca_path: str | None = None
    extra_settings: dict[str, object] = field(default_factory=dict)

    @classmethod
    def create(cls, root: Path, ca_path: str | None = None) -> GwHome:
        """A new isolated home under ``root``."""
        home = root / "home"
        (home / ".aws").mkdir(parents=True, exist_ok=True)
        env = clean_environ()
        env.update(
            HOME=str(home),
            GW_HOME=str(root / "state"),
            GW_CONFIG=str(root / "config.toml"),
            AWS_EC2_METADATA_DISABLED="true",
            AWS_CONFIG_FILE=str(home / ".aws" / "config"),
            AWS_SHARED_CREDENTIALS_FILE=str(home / ".aws" / "credentials"),
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            GW_QUIET="1",
        )
        if os.environ.get("GW_NO_ISOLATION"):  # the suite's choice (PYTHONPATH guards), kept across the scrub
            env["GW_NO_ISOLATION"] = os.environ["GW_NO_ISOLATION"]
        return cls(root=root, env=env, ca_path=ca_path)

    def clone(self, root: Path) -> GwHome:
        """A copy of this home under ``root``: the same key, vault and files, its own paths.

        Build a warmed home once per session and clone it per test. Cache entries are bound to
        their config file's path, so a clone's copies of them are misses, never hits.
        """
        import shutil

        shutil.copytree(self.root, root, symlinks=True, dirs_exist_ok=True)
        old, new = str(self.root), str(root)
        env = {k: v.replace(old, new) if old in v else v for k, v in self.env.items()}
        return GwHome(root=root, env=env, ca_path=self.ca_path, extra_settings=dict(self.extra_settings))

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def config_path(self) -> Path:
        return Path(self.env["GW_CONFIG"])

    @property
    def state(self) -> Path:
        return Path(self.env["GW_HOME"])

    @property
    def cache_dir(self) -> Path:
        return self.state / "cache"

    @property
    def aws_config(self) -> Path:
        return self.home / ".aws" / "config"

    def cache_file(self, profile: str) -> Path:
        """Where gw caches ``profile``'s credentials for this home's config (encrypted)."""
        from .store import Store

        return Path(Store(str(self.cache_dir), str(self.config_path)).path(profile))

    def load_plugin(self, module: str, path: str | Path | None = None) -> None:
        """Load plugin ``module`` (importable from ``path``) in every gw this home runs."""
        names = [n for n in self.env.get("GW_PLUGINS", "").split(",") if n]
        self.env["GW_PLUGINS"] = ",".join([*names, module])
        if path is not None:  # the launcher ignores PYTHONPATH unless asked not to isolate Python
            self.env["GW_NO_ISOLATION"] = "1"
            self.env["PYTHONPATH"] = os.pathsep.join(p for p in (str(path), self.env.get("PYTHONPATH")) if p)

    def install_plugin(self, project: str | Path, path: str | Path | None = None) -> None:
        """Register the plugin project in directory ``project`` in every gw this home runs, through
        its entry points, as installing it would: the ``[project.entry-points.*]`` tables of its
        ``pyproject.toml`` go into a ``.dist-info`` (what pip writes) in a directory of this home on
        ``PYTHONPATH``, beside ``path``, where its modules import from (default ``project``).
        Nothing is installed into the running environment."""
        import re
        import tomllib

        project = Path(project)
        meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
        site = self.root / "site-packages"
        dist = site / f"{re.sub(r'[-_.]+', '_', meta['name'])}-{meta['version']}.dist-info"
        dist.mkdir(parents=True, exist_ok=True)
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n")
        (dist / "entry_points.txt").write_text("".join(
            f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in entries.items()) + "\n"
            for group, entries in meta.get("entry-points", {}).items()))
        self.env["GW_NO_ISOLATION"] = "1"  # the launcher ignores PYTHONPATH unless asked not to isolate Python
        self.env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(site), str(path or project), self.env.get("PYTHONPATH")) if p)

    def write_config(self, text: str, settings: bool = True) -> Path:
        """Write the gw config; a [settings] table with the test CA is prepended unless given."""
        body = textwrap.dedent(text)
        if settings and "[settings]" not in body:
            lines = ["[settings]"]
            if self.ca_path:
                lines.append(f'ca_bundle = "{self.ca_path}"')
            for key, value in self.extra_settings.items():
                lines.append(f"{key} = {value!r}".replace("'", '"'))
            body = "\n".join(lines) + "\n\n" + body
        self.config_path.write_text(body)
        return self.config_path

    def run(self, *args: str, input: str | None = None, timeout: float = 120, env: dict | None = None,
            check: bool = False) -> subprocess.CompletedProcess:
        """Run ``gw ARGS`` as this user; stdin is /dev/null unless ``input`` is given."""
        result = subprocess.run(
            [gw_executable(), *args],
            env={**self.env, **(env or {})},
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.root,
            start_new_session=True,  # no controlling terminal: prompts use settings.askpass
        )
        if check and result.returncode != 0:
            raise AssertionError(f"gw {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def run_in_process(self, *args: str, input: str | None = None, timeout: float | None = 120,
                       env: dict | None = None, check: bool = False) -> subprocess.CompletedProcess:
        """``gw ARGS`` as :meth:`run` does it, in this process (:func:`run_in_process`)."""
        result = run_in_process(list(args), {**self.env, **(env or {})}, input or "", cwd=self.root, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"gw {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def vault_set(self, name: str, value: str) -> None:
        """Store ``value`` in this home's vault."""
        self.run_in_process("vault", "set", name, input=value, check=True)

    def popen(self, *args: str, **kwargs: Any) -> subprocess.Popen:
        """Start ``gw ARGS`` without waiting (pipes for stdout and stderr unless given)."""
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        env = {**self.env, **kwargs.pop("env", {})}
        kwargs.setdefault("start_new_session", True)
        return subprocess.Popen([gw_executable(), *args], env=env, cwd=self.root, text=True, **kwargs)


def assert_clean_failure(result: subprocess.CompletedProcess, *, contains: str | None = None) -> str:
    """A failed gw run: non-zero exit, nothing on stdout, one ``gw: `` error line, no traceback.

    Warning lines (``gw: warning: ...``) may precede the error. Returns the error line.
    """
    assert result.returncode != 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stdout == "", result.stdout
    lines = result.stderr.splitlines()
    assert lines, "no error message"
    assert all(line.startswith("gw: ") for line in lines), result.stderr
    errors = [line for line in lines if not line.startswith("gw: warning: ")]
    assert len(errors) == 1, result.stderr
    if contains is not None:
        assert contains in errors[0], errors[0]
    return errors[0]


class StubStepContext:
    """A stand-in :class:`gw.plugin.StepContext` for unit tests of a step's ``run``.

    ``secrets`` maps references to their values; ``answers`` are what ``ask``
    returns, in order. Messages land in ``infos``/``warnings``; scrubbed values in
    ``added_secrets``; state lives in ``state`` (name -> (data, expires_at));
    ``settings`` are what ``setting`` returns (plugin-declared ``[settings]`` keys).
    """

    def __init__(self, state_dir: Path, *, profile: str = "test", step_type: str = "", plugin: str = "test",
                 secrets: dict[str, str] | None = None, answers: list[str] | None = None,
                 tls_verify: bool | str = True, hooks: dict[str, Callable[..., list[Any]]] | None = None,
                 settings: dict[str, Any] | None = None) -> None:
        self.profile = profile
        self.secret_label = "secret"
        self.code_account: str | None = None
        self.step_index = 0
        self.step_type = step_type
        self.plugin = plugin
        self.state_dir = state_dir
        self._tls_verify = tls_verify
        self.secrets = dict(secrets or {})
        self.answers = list(answers or [])
        self.hooks = dict(hooks or {})
        self.settings = dict(settings or {})
        self.infos: list[str] = []
        self.warnings: list[str] = []
        self.added_secrets: list[str] = []
        self.state: dict[str, tuple[dict[str, Any], float]] = {}
        self.used_codes: dict[str, int] = {}

    @property
    def ca_bundle(self) -> str | None:
        return self._tls_verify if isinstance(self._tls_verify, str) else None

    @property
    def tls_verify(self) -> bool | str:
        return self._tls_verify

    @contextlib.contextmanager
    def status(self, message: str) -> Iterator[None]:
        self.infos.append(message)
        yield

    def info(self, message: str) -> None:
        self.infos.append(message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def resolve_secret(self, ref: Any, *, label: str = "secret") -> str:
        try:
            value = self.secrets[ref]
        except (KeyError, TypeError):
            from .errors import SecretError

            raise SecretError(f"no value for the reference of {label} in the stub context") from None
        self.add_secret(value)
        return value

    def vault_get(self, name: str) -> str:
        """``secrets["vault:NAME"]``, as the vault would hold it."""
        return self.resolve_secret(f"vault:{name}", label=name)

    def add_secret(self, value: str | None) -> None:
        if value:
            self.added_secrets.append(value)

    def ask(self, label: str, secret: bool = True) -> str:
        from .errors import Aborted

        if not self.answers:
            raise Aborted("no answer left in the stub context")
        return self.answers.pop(0)

    @contextlib.contextmanager
    def lock(self, name: str, timeout: float | None = None) -> Iterator[bool]:
        yield True

    def one_time_code(self, account: str, produce: Callable[[float], str], *, period: int = 30,
                      label: str = "one-time code") -> str:
        step = int(time.time() // period)
        if self.used_codes.get(account, -1) >= step:
            step = self.used_codes[account] + 1
        self.used_codes[account] = step
        return produce(step * period)

    def call_hook(self, name: str, **kwargs: Any) -> list[Any]:
        hook = self.hooks.get(name)
        return hook(**kwargs) if hook else []

    def setting(self, name: str) -> Any:
        from .errors import ConfigError

        if name not in self.settings:
            raise ConfigError(f"settings.{name}: not given to the stub context (settings=...)")
        return self.settings[name]

    def state_get(self, name: str) -> dict[str, Any] | None:
        entry = self.state.get(name)
        if entry is None or entry[1] <= time.time():
            return None
        return entry[0]

    def state_put(self, name: str, data: dict[str, Any], expires_at: float) -> None:
        import json

        self.state[name] = (json.loads(json.dumps(data)), expires_at)  # stored as JSON, as gw's cache does

    def state_delete(self, name: str) -> None:
        self.state.pop(name, None)

    def find_step_type(self, name: str) -> Any:
        from .errors import ConfigError

        raise ConfigError(f"the stub context runs no other step ({name})")

    def run_step(self, name: str, options: dict[str, Any], upstream: Any) -> Any:
        return self.find_step_type(name)


@pytest.fixture
def gw_home(tmp_path: Path) -> GwHome:
    """An isolated gw user in a temporary directory."""
    return GwHome.create(tmp_path)


@pytest.fixture
def step_context(tmp_path: Path) -> StubStepContext:
    """A :class:`StubStepContext` with a private state directory."""
    state = tmp_path / "stub-state"
    state.mkdir(mode=0o700)
    return StubStepContext(state)
