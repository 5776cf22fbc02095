"""Helpers and fixtures for the foundation tests (cache robustness, hot path, errors, login ...).

Fixtures defined here are imported by the test modules that use them
(``from tests.core.gw_test_support import ...``); fixtures live in tests/conftest.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gw.crypto import read_key_file, unseal
from gw.store import EntryHeader, read_entry
from gw.testing import assert_clean_failure, gw_executable  # noqa: F401 (re-exported for the tests)

GW = gw_executable()
ROLE = "arn:aws:iam::123456789012:role/Admin"
OTHER_ROLE = "arn:aws:iam::123456789012:role/Other"
NOBODY = 65534


def keys_from_env(home, iam_user) -> None:
    """Put the IAM user's keys in the home's environment (GWT_AKID / GWT_SECRET).

    The robustness tests use env: references, not the vault: replacing the key
    file must only break the cache, not the source of the long-term keys.
    """
    home.env["GWT_AKID"], home.env["GWT_SECRET"] = iam_user


def role_profile(name: str = "role", *, keys: str = "env", session_name: str | None = None,
                 duration: int | None = None, extra: str = "") -> str:
    """aws-keys (from env: or vault: references) -> assume-role, no MFA."""
    if keys == "env":
        source = '{ use = "aws-keys", access_key_id = "env:GWT_AKID", secret_access_key = "env:GWT_SECRET" }'
    else:
        source = '{ use = "aws-keys", access_key_id = "vault:akid", secret_access_key = "vault:secret" }'
    options = f'role_arn = "{ROLE}"'
    if session_name:
        options += f', session_name = "{session_name}"'
    if duration:
        options += f", duration = {duration}"
    return f"""
[profiles.{name}]
steps = [
  {source},
  {{ use = "assume-role", {options} }},
]
{extra}
"""


def imported_modules(importtime_stderr: str) -> set[str]:
    """Module names from ``python -X importtime`` output."""
    modules = set()
    for line in importtime_stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "package":  # the header line
                modules.add(name)
    return modules


def run_importtime(home, *args: str) -> subprocess.CompletedProcess:
    """Run gw under ``python -X importtime``; stderr holds the import log."""
    return subprocess.run(
        [sys.executable, "-X", "importtime", GW, *args], env=home.env, capture_output=True, text=True,
        timeout=60, stdin=subprocess.DEVNULL, start_new_session=True, cwd=home.root,
    )


# -- the cache, seen from the outside ------------------------------------------------
def cache_file(home, profile: str) -> Path:
    return home.cache_file(profile)


def cache_key(home) -> bytes:
    key = read_key_file(str(home.state / "key"))
    assert key is not None
    return key


def read_cached(home, profile: str) -> tuple[EntryHeader, bytes]:
    """(header, plaintext) of a profile's cache entry, decrypted with the home's key file."""
    entry = read_entry(str(cache_file(home, profile)))
    assert entry is not None, "no readable cache entry"
    header, line, body = entry
    return header, unseal(cache_key(home), body, line)


# -- running gw as an unprivileged user ------------------------------------------------
def as_unprivileged(command: list[str]) -> list[str]:
    """``command`` run as uid/gid 65534 when we are root (where chmod does not stop writes)."""
    if os.geteuid() == 0:
        return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command]
    return command


def chown_tree(path: Path) -> None:
    """Hand ``path`` (recursively) to the unprivileged user when we are root."""
    if os.geteuid() != 0:
        return
    for root, dirs, files in os.walk(path):
        os.chown(root, NOBODY, NOBODY)
        for name in dirs + files:
            os.chown(os.path.join(root, name), NOBODY, NOBODY, follow_symlinks=False)
