"""The cache-hit path of ``gw credential-process`` stays light, and unsafe key/vault files are refused."""

from __future__ import annotations

import json

import pytest

from tests.core.core_helpers import parse_credential_process
from tests.core.gw_test_support import (
    assert_clean_failure,
    cache_file,
    imported_modules,
    keys_from_env,
    role_profile,
    run_importtime,
)

FORBIDDEN = ("pluggy", "boto3", "botocore", "requests", "importlib.metadata", "tomllib", "argparse", "rich", "json")


@pytest.fixture
def warm_home(aws_home, iam_user, moto):
    """A home whose profile ``role`` has a fresh cache entry."""
    keys_from_env(aws_home, iam_user)
    aws_home.write_config(role_profile())
    first = aws_home.run("credential-process", "--profile", "role")
    assert first.returncode == 0, first.stderr
    aws_home.first_output = first.stdout
    return aws_home


def _forbidden(module: str) -> bool:
    return module.startswith(("gw_plugins", "gw_example_plugin")) or any(module == f or module.startswith(f + ".") for f in FORBIDDEN)


def test_a_cache_hit_imports_nothing_heavy(warm_home, moto):
    before = moto.count("AssumeRole")
    hit = run_importtime(warm_home, "credential-process", "--profile", "role")
    assert hit.returncode == 0
    assert hit.stdout == warm_home.first_output
    parse_credential_process(hit.stdout)
    assert moto.count("AssumeRole") == before
    modules = imported_modules(hit.stderr)
    assert {"gw", "gw.fastpath", "gw.store"} <= modules  # the import log was read correctly
    assert sorted(m for m in modules if _forbidden(m)) == []
    other = [line for line in hit.stderr.splitlines() if not line.startswith("import time:")]
    assert other == []


def test_the_slow_path_does_import_them(warm_home):
    """Guards the test above: the same probe does see heavy imports when the cache cannot serve."""
    cache_file(warm_home, "role").unlink()
    miss = run_importtime(warm_home, "credential-process", "--profile", "role")
    assert miss.returncode == 0, miss.stderr
    modules = imported_modules(miss.stderr)
    assert {"pluggy", "boto3", "tomllib", "argparse", "json"} <= modules
    assert any(m.startswith("gw_plugins") for m in modules)
    assert any(_forbidden(m) for m in modules)


def test_a_world_readable_key_file_is_refused(warm_home):
    key = warm_home.state / "key"
    key.chmod(0o644)
    result = warm_home.run("credential-process", "--profile", "role")
    line = assert_clean_failure(result, contains="chmod 600")
    assert str(key) in line and "readable by others" in line
    assert result.returncode == 1
    # gw never loosens or fixes the mode itself
    assert key.stat().st_mode & 0o777 == 0o644


def test_a_world_readable_vault_is_refused(aws_home, iam_user):
    home = aws_home
    home.vault_set("akid", iam_user[0])
    home.vault_set("secret", iam_user[1])
    home.write_config(role_profile(keys="vault"))
    vault = home.state / "vault"
    vault.chmod(0o644)
    for args in (("vault", "list"), ("credential-process", "--profile", "role")):
        result = home.run(*args)
        line = assert_clean_failure(result, contains="chmod 600")
        assert "refusing to use the vault" in line and str(vault) in line
    assert iam_user[1] not in json.dumps([result.stdout, result.stderr])
