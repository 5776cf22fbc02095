"""An example third-party gw plugin: what a newcomer copies (docs/plugins.md, "Start here").

It registers through the ``gw`` entry-point group (``pyproject.toml``) exactly as gw's
built-in plugins do, and imports one module of gw: ``gw.plugin``. Each contribution
lives in a module of its own, and this module hands them to gw through the hooks:

- ``step.py``: the step type ``example-token`` (a bearer token from the example token service);
- ``scheme.py``: the secret scheme ``rot13:VAR`` (an environment variable, rot13-decoded);
- ``command.py``: the command ``gw example-whoami`` (uses a profile's token);
- an audit hook, below: one line per issuance in ``$GW_EXAMPLE_AUDIT``.

The fourth thing a newcomer adds, an emulator of the upstream, is test code: it lives beside
the tests (``../example_emulator.py``), never in this package.

Only cheap imports at module level: gw imports every plugin on each slow-path run.
"""

from __future__ import annotations

import os

from gw.plugin import Command, Credential, SecretScheme, StepType, hookimpl

from .command import COMMAND
from .scheme import SCHEME
from .step import STEP_TYPE

AUDIT_ENV = "GW_EXAMPLE_AUDIT"


@hookimpl
def gw_step_types() -> list[StepType]:
    return [STEP_TYPE]


@hookimpl
def gw_secret_schemes() -> list[SecretScheme]:
    return [SCHEME]


@hookimpl
def gw_commands() -> list[Command]:
    return [COMMAND]


@hookimpl
def gw_credentials_issued(profile: str, credential: Credential, from_cache: bool) -> None:
    """Audit: one line per issuance. Never writes a secret field."""
    path = os.environ.get(AUDIT_ENV)
    if not path:
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"{profile}\t{credential.KIND}\tfrom_cache={str(from_cache).lower()}\n")
