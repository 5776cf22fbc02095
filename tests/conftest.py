"""Shared fixtures: a moto STS server, a local CA, and an isolated gw home.

Every test runs the real ``gw`` executable in a temporary HOME with its own
config, state dir and ``~/.aws`` files, against emulators on 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

VENV_BIN = Path(sys.executable).parent
GW = str(VENV_BIN / "gw")
AWS_CLI = shutil.which("aws", path=str(VENV_BIN)) or shutil.which("aws")

# Variables from the developer's own environment that must never leak into a test.
SCRUBBED_PREFIXES = ("AWS_", "GW_", "XDG_", "SORACOM_", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@pytest.fixture(scope="session")
def ca(tmp_path_factory):
    from gw_emulators.tls import LocalCA

    return LocalCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="session")
def moto():
    from gw_emulators.aws import MotoStack

    stack = MotoStack().start()
    yield stack
    stack.stop()


@pytest.fixture(scope="session")
def iam_user(moto):
    """Long-term keys of an IAM user in moto: (access key id, secret)."""
    return moto.create_user("gw-test-user")


@dataclass
class GwHome:
    """An isolated user: HOME, gw config and state, ~/.aws, and a way to run gw."""

    root: Path
    env: dict[str, str]
    ca_path: str | None = None
    extra_settings: dict[str, object] = field(default_factory=dict)

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
            [GW, *args],
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

    def vault_set(self, name: str, value: str) -> None:
        self.run("vault", "set", name, input=value, check=True)

    def popen(self, *args: str, **kwargs) -> subprocess.Popen:
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        env = {**self.env, **kwargs.pop("env", {})}
        kwargs.setdefault("start_new_session", True)
        return subprocess.Popen([GW, *args], env=env, cwd=self.root, text=True, **kwargs)


def clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_PREFIXES)}


@pytest.fixture
def gw_home(tmp_path, ca) -> GwHome:
    root = tmp_path
    home = root / "home"
    (home / ".aws").mkdir(parents=True)
    env = clean_environ()
    env.update(
        HOME=str(home),
        GW_HOME=str(root / "state"),
        GW_CONFIG=str(root / "config.toml"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(home / ".aws" / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / ".aws" / "credentials"),
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        GW_QUIET="1",
    )
    return GwHome(root=root, env=env, ca_path=str(ca.ca_path))


@pytest.fixture
def aws_home(gw_home, moto) -> GwHome:
    """A gw home whose AWS calls go to the moto server."""
    gw_home.env["AWS_ENDPOINT_URL"] = moto.url
    gw_home.env["AWS_DEFAULT_REGION"] = "us-east-1"
    return gw_home


@pytest.fixture
def askpass(tmp_path) -> tuple[str, Path]:
    """An askpass program that answers a fixed MFA code and logs each call: (path, log)."""
    log = tmp_path / "askpass.log"
    script = tmp_path / "askpass.sh"
    script.write_text(f'#!/bin/sh\necho "$1" >> "{log}"\necho 123456\n')
    script.chmod(0o700)
    return str(script), log
