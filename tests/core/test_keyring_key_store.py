"""settings.key_store = "keyring": the cache key lives in the OS keyring, not in a file."""

from __future__ import annotations

import json
from pathlib import Path

from tests.core.core_helpers import admin_profile, parse_credential_process, store_user


def test_cache_and_vault_work_with_the_key_in_the_keyring(aws_home, iam_user, askpass, moto, tmp_path):
    home = aws_home
    keyring_file = tmp_path / "keyring.json"
    home.env.update(
        PYTHON_KEYRING_BACKEND="gw_test_keyring.FileKeyring",
        GW_TEST_KEYRING_FILE=str(keyring_file),
        PYTHONPATH=str(Path(__file__).parent),
    )
    home.extra_settings.update(askpass=askpass[0], key_store="keyring")
    home.write_config(admin_profile())
    store_user(home, iam_user)
    before = moto.count("AssumeRole")
    first = home.run("credential-process", "--profile", "admin")
    second = home.run("credential-process", "--profile", "admin")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert parse_credential_process(second.stdout) == parse_credential_process(first.stdout)
    assert moto.count("AssumeRole") == before + 1  # the second call was a cache hit
    assert not (home.state / "key").exists()
    stored = json.loads(keyring_file.read_text())
    assert list(stored) == ["gw/cache-key"] and len(stored["gw/cache-key"]) == 44  # base64 of 32 bytes
    # Without the keyring's key the cache and the vault cannot be read: a clear one-line error.
    keyring_file.write_text("{}")
    failed = home.run("vault", "list")
    assert failed.returncode != 0 and failed.stderr.count("\n") == 1
    assert "cannot be decrypted" in failed.stderr
