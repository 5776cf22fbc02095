"""gw.store: the one owner of every entry kind in the cache directory (unit tests, in-process)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import pytest

from gw.credentials import AwsCredentials
from gw.crypto import KEY_SIZE
from gw.store import Store, kind_of, prefix_digests, prefix_name, state_name

KEY = b"k" * KEY_SIZE


@pytest.fixture
def store(tmp_path):
    directory = tmp_path / "cache"
    directory.mkdir(mode=0o700)
    return Store(str(directory), str(tmp_path / "config.toml"))


def _creds(minutes: float | None) -> AwsCredentials:
    now = datetime.now(UTC)
    return AwsCredentials(access_key_id="ASIAEXAMPLE000000001", secret_access_key="s" * 40,
                          session_token="t" * 60, issued_at=now,
                          expiration=None if minutes is None else now + timedelta(minutes=minutes))


def test_every_kind_has_its_own_names(store):
    digest = prefix_digests([{"use": "aws-keys"}, {"use": "session-token"}])[0]
    assert kind_of("admin") == "profile"
    assert kind_of(prefix_name(digest)) == "prefix" and prefix_name(digest) == "_prefix." + digest[:40]
    assert kind_of(state_name("krypton", "session/1")) == "state" and state_name("krypton", "a/b") == "_state.krypton.a_b"
    assert os.path.basename(store.recipe_path("soracom", "p")).startswith("_exec.soracom.")
    assert store.recipe_path("soracom", "p") != store.recipe_path("soracom", "P")  # case-safe, as entries


def test_listing_by_kind(store):
    digest = prefix_digests([{"use": "aws-keys"}])[0]
    for name in ("admin", prefix_name(digest)):
        store.store_credential(name, _creds(60), digest="d", stamp=(0, 0, 0, 0), config_path=store.config_path,
                               fast="{}", key_store="file", key=KEY)
    store.state_put("krypton", "session", {"a": 1}, time.time() + 60, "file", KEY)
    assert store.names() == sorted(["admin", prefix_name(digest), state_name("krypton", "session")])
    assert store.names("profile") == ["admin"]
    assert store.names("prefix") == [prefix_name(digest)]
    assert store.names("state") == [state_name("krypton", "session")]
    other = Store(store.directory, store.config_path + ".other")  # another config: its own profiles only
    assert other.names("profile") == [] and other.names("prefix") == [prefix_name(digest)]


def test_long_lived_and_expired_credentials_are_not_written(store):
    for minutes in (None, -1):  # no expiry; already expired
        store.store_credential("p", _creds(minutes), digest="d", stamp=(0, 0, 0, 0), config_path=store.config_path,
                               fast="", key_store="file", key=KEY)
    assert store.names() == []
    store.store_credential("p", _creds(60), digest="d", stamp=(0, 0, 0, 0), config_path=store.config_path,
                           fast="{}", key_store="file", key=KEY)
    header, plaintext = store.load("p", KEY)
    assert header.name == "p" and header.kind == "aws-credentials" and plaintext.startswith(b"{}\n")


def test_state_expires_and_a_damaged_one_is_dropped(store):
    store.state_put("x", "s", {"v": 1}, time.time() + 60, "file", KEY)
    assert store.state_get("x", "s", KEY) == {"v": 1}
    assert store.state_get("x", "s", b"o" * KEY_SIZE) is None  # another key: damaged, dropped
    assert store.names("state") == []
    store.state_put("x", "s", {"v": 1}, time.time() - 1, "file", KEY)
    assert store.state_get("x", "s", KEY) is None


def test_recipes_are_authenticated_private_and_cleared_per_profile(store):
    store.write_recipe("soracom", "p", KEY, b'{"version":1,"argv":["x"]}')
    store.write_recipe("soracom", "q", KEY, b'{"version":1,"argv":["y"]}')
    assert store.read_recipe("soracom", "p", KEY) == {"version": 1, "argv": ["x"]}
    assert store.read_recipe("soracom", "p", b"o" * KEY_SIZE) is None
    path = store.recipe_path("soracom", "p")
    assert os.stat(path).st_mode & 0o777 == 0o600
    os.chmod(path, 0o640)
    assert store.read_recipe("soracom", "p", KEY) is None  # not private: never trusted
    store.remove_recipes("p")
    assert not os.path.exists(path) and os.path.exists(store.recipe_path("soracom", "q"))
    store.remove_recipes()
    assert not os.path.exists(store.recipe_path("soracom", "q"))


def test_legacy_entries_are_listed_and_removed_never_read(store):
    legacy = os.path.join(store.directory, "admin.gwc")
    with open(legacy, "wb") as f:
        f.write(b"gw1 aws-credentials 1 2 3 file\nbody")
    assert store.names() == [] and store.legacy_files() == [legacy] and store.legacy_files("other") == []
    assert store.remove_legacy("admin") == 1 and not os.path.exists(legacy)
