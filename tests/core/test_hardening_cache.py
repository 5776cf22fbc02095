"""Issue 8, cache items: entries bound to their profile and config, case-safe names,
ctime in the stamp, a size cap, and two config files sharing one GW_HOME.

Each test runs the real gw against moto's STS and counts the AssumeRole calls moto saw.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from gw.store import MAX_ENTRY, Store
from tests.core.core_helpers import parse_credential_process
from tests.core.gw_test_support import (
    OTHER_ROLE,
    ROLE,
    cache_file,
    keys_from_env,
    read_cached,
    role_profile,
)


def _two_roles(home, iam_user) -> None:
    keys_from_env(home, iam_user)
    other = role_profile("readonly").replace(ROLE, OTHER_ROLE)
    home.write_config(role_profile("admin") + other)


def _get(home, profile: str) -> dict:
    result = home.run_in_process("credential-process", "--profile", profile)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return parse_credential_process(result.stdout)


def _arn_of(moto, doc: dict) -> str:
    import boto3

    sts = boto3.client("sts", endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id=doc["AccessKeyId"],
                       aws_secret_access_key=doc["SecretAccessKey"], aws_session_token=doc["SessionToken"])
    return sts.get_caller_identity()["Arn"]


def test_an_entry_copied_to_another_profile_is_never_served_for_it(aws_home, iam_user, moto):
    home = aws_home
    _two_roles(home, iam_user)
    admin = _get(home, "admin")
    readonly = _get(home, "readonly")
    assert ":assumed-role/Admin/" in _arn_of(moto, admin)
    # the attack: the admin entry copied over the readonly one
    shutil.copyfile(cache_file(home, "admin"), cache_file(home, "readonly"))
    before = moto.count("AssumeRole")
    again = _get(home, "readonly")
    assert again["AccessKeyId"] not in (admin["AccessKeyId"],)
    assert ":assumed-role/Other/" in _arn_of(moto, again)
    assert moto.count("AssumeRole") == before + 1  # a miss: fetched anew, not the admin credentials
    assert readonly["AccessKeyId"] != admin["AccessKeyId"]


def test_an_entry_is_not_served_for_a_profile_missing_from_the_config(aws_home, iam_user, moto):
    home = aws_home
    _two_roles(home, iam_user)
    _get(home, "admin")
    ghost = Path(Store(str(home.cache_dir), str(home.config_path)).path("ghost"))
    shutil.copyfile(cache_file(home, "admin"), ghost)
    result = home.run_in_process("credential-process", "--profile", "ghost")
    assert result.returncode != 0 and result.stdout == ""
    assert "no profile named 'ghost'" in result.stderr


def test_profile_names_differing_only_in_case_have_distinct_files(aws_home, iam_user, moto):
    home = aws_home
    keys_from_env(home, iam_user)
    home.write_config(role_profile("Admin") + role_profile("admin").replace(ROLE, OTHER_ROLE))
    upper, lower = cache_file(home, "Admin"), cache_file(home, "admin")
    assert upper.name.lower() != lower.name.lower()  # would not collide on a case-insensitive filesystem
    a, b = _get(home, "Admin"), _get(home, "admin")
    assert a["AccessKeyId"] != b["AccessKeyId"]
    before = moto.count("AssumeRole")
    assert _get(home, "Admin") == a and _get(home, "admin") == b
    assert moto.count("AssumeRole") == before
    assert read_cached(home, "Admin")[0].name == "Admin"


def test_a_same_size_edit_that_restores_the_mtime_is_noticed(aws_home, iam_user, moto):
    home = aws_home
    keys_from_env(home, iam_user)
    home.write_config(role_profile("p"))
    first = _get(home, "p")
    st = home.config_path.stat()
    text = home.config_path.read_text()
    edited = text.replace(ROLE, OTHER_ROLE)
    assert len(edited) == len(text)
    home.config_path.write_text(edited)
    os.utime(home.config_path, ns=(st.st_atime_ns, st.st_mtime_ns))  # the mtime put back, size unchanged
    assert home.config_path.stat().st_mtime_ns == st.st_mtime_ns and home.config_path.stat().st_size == st.st_size
    before = moto.count("AssumeRole")
    second = _get(home, "p")
    assert second["AccessKeyId"] != first["AccessKeyId"]
    assert ":assumed-role/Other/" in _arn_of(moto, second)
    assert moto.count("AssumeRole") == before + 1


def test_a_huge_entry_is_not_read(aws_home, iam_user, moto):
    home = aws_home
    keys_from_env(home, iam_user)
    home.write_config(role_profile("p"))
    first = _get(home, "p")
    entry = cache_file(home, "p")
    with open(entry, "ab") as f:
        f.truncate(64 * 1024 * 1024)  # sparse: 64 MiB, far above the cap
    assert entry.stat().st_size > MAX_ENTRY
    started = time.monotonic()
    second = _get(home, "p")  # a miss that replaces the entry
    assert time.monotonic() - started < 10
    assert second["AccessKeyId"] != first["AccessKeyId"]
    assert entry.stat().st_size < MAX_ENTRY


def test_two_configs_sharing_a_profile_name_and_gw_home_keep_their_entries(aws_home, iam_user, moto, tmp_path):
    home = aws_home
    keys_from_env(home, iam_user)
    home.write_config(role_profile("p"))
    other = tmp_path / "other.toml"
    other.write_text(role_profile("p").replace(ROLE, OTHER_ROLE))
    env_other = {"GW_CONFIG": str(other)}
    a = _get(home, "p")
    result = home.run_in_process("credential-process", "--profile", "p", env=env_other)
    b = parse_credential_process(result.stdout)
    before = moto.count("AssumeRole")
    for _ in range(3):
        assert _get(home, "p") == a
        assert parse_credential_process(home.run_in_process("credential-process", "--profile", "p", env=env_other).stdout) == b
    assert moto.count("AssumeRole") == before  # neither evicts the other


def test_cache_clear_removes_the_entries_an_older_gw_wrote(aws_home, iam_user, moto):
    """Entries of the gw1 format (``<profile>.gwc``) are never read again; ``gw cache clear`` removes
    them (all, or the named profile's) and leaves any other file alone."""
    home = aws_home
    _two_roles(home, iam_user)
    _get(home, "admin")
    cache = home.state / "cache"
    old_admin, old_other, foreign = cache / "admin.gwc", cache / "old-profile.gwc", cache / "notes.gwc"
    for path in (old_admin, old_other):
        path.write_bytes(b"gw1 aws 1 2 3 file 4 5 6 digest /cfg\n" + os.urandom(64))
        path.chmod(0o600)
    foreign.write_bytes(b"not an entry")
    result = home.run_in_process("cache", "clear", "--profile", "admin")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "cleared 1 cached profile(s) and 1 entry of an older gw"
    assert not old_admin.exists() and old_other.exists() and foreign.exists()
    result = home.run_in_process("cache", "clear")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "cleared 0 cached profile(s) and 1 entry of an older gw"
    assert not old_other.exists() and foreign.exists()
    assert home.run_in_process("cache", "clear").stdout.strip() == "cleared 0 cached profile(s)"
