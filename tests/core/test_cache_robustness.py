"""The encrypted cache under damage, killed writers, read-only dirs, expiry and config edits.

Every damaged entry must be a plain cache miss: the command still succeeds, fetches
anew from (moto's) STS, replaces the entry, and prints no traceback.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from gw.store import EntryHeader, Store, refresh_margin
from tests.core.core_helpers import parse_credential_process
from tests.core.gw_test_support import (
    GW,
    as_unprivileged,
    cache_file,
    cache_key,
    chown_tree,
    imported_modules,
    keys_from_env,
    read_cached,
    role_profile,
    run_importtime,
)


def _fetch(home, moto, profile: str = "role", *, fetches: int) -> dict:
    """Run credential-process; assert it succeeded cleanly with ``fetches`` new AssumeRole calls."""
    before = moto.count("AssumeRole")
    result = home.run_in_process("credential-process", "--profile", profile)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert all(line.startswith("gw: warning: ") for line in result.stderr.splitlines()), result.stderr
    assert moto.count("AssumeRole") == before + fetches
    return parse_credential_process(result.stdout)


@pytest.fixture
def role_home(aws_home, iam_user, moto):
    keys_from_env(aws_home, iam_user)
    aws_home.write_config(role_profile())
    return aws_home


def _reseal(home, profile: str, **times: int) -> None:
    """Rewrite a cache entry with other times; the header is authenticated, so seal it again."""
    header, plaintext = read_cached(home, profile)
    fields = {name: getattr(header, name) for name in EntryHeader.__slots__}
    fields.update(times)
    Store(str(home.cache_dir), str(home.config_path)).store(profile, EntryHeader(**fields), plaintext, cache_key(home))


# -- damaged entries -----------------------------------------------------------------------------
def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


def _push_expiry_later(path: Path) -> None:
    line, _, body = path.read_bytes().partition(b"\n")
    parts = line.split(b" ")
    parts[2] = str(int(parts[2]) + 86400).encode()  # refresh_at
    parts[3] = str(int(parts[3]) + 86400).encode()  # expires_at
    path.write_bytes(b" ".join(parts) + b"\n" + body)


def _truncate_body(path: Path) -> None:
    data = path.read_bytes()
    line_end = data.index(b"\n") + 1
    path.write_bytes(data[: line_end + 20])


def _truncate_header(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:30])


def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(300))


def _replace_key(path: Path) -> None:
    key = path.parent.parent / "key"
    key.unlink()
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, os.urandom(32))
    os.close(fd)


@pytest.mark.parametrize(
    "damage",
    [_flip_last_byte, _push_expiry_later, _truncate_body, _truncate_header, _garbage, _replace_key],
    ids=["ciphertext-byte", "header-expiry-pushed", "truncated-body", "truncated-header", "garbage", "wrong-key"],
)
def test_a_damaged_entry_is_a_cache_miss(role_home, moto, damage):
    home = role_home
    first = _fetch(home, moto, fetches=1)
    damage(cache_file(home, "role"))
    second = _fetch(home, moto, fetches=1)
    assert second["AccessKeyId"] != first["AccessKeyId"]
    # the entry was replaced by one that authenticates under the current key ...
    header, plaintext = read_cached(home, "role")
    assert json.loads(plaintext.partition(b"\n")[0])["AccessKeyId"] == second["AccessKeyId"]
    assert header.expires_at - time.time() < 3700  # not the pushed-out expiry
    # ... and serves the next call without a fetch
    assert _fetch(home, moto, fetches=0) == second


# -- killed writers and lock holders -------------------------------------------------------------------
def test_a_leftover_temp_file_of_a_killed_writer_is_harmless(role_home, moto):
    home = role_home
    home.cache_dir.mkdir(parents=True)
    leftover = home.cache_dir / ".role.gwc.4194301.tmp"
    leftover.write_bytes(os.urandom(200))
    doc = _fetch(home, moto, fetches=1)
    assert _fetch(home, moto, fetches=0) == doc
    listing = home.run_in_process("cache", "list", env={"COLUMNS": "200"})
    assert listing.returncode == 0, listing.stderr
    # a pipe gets plain tab-separated lines
    assert any(line.startswith("role\taws-credentials\t") for line in listing.stdout.splitlines())
    assert "4194301" not in listing.stdout


def test_a_lock_holder_killed_with_sigkill_leaves_no_stale_lock(aws_home, iam_user, moto, tmp_path):
    home = aws_home
    keys_from_env(home, iam_user)
    flag, log = tmp_path / "slow", tmp_path / "askpass.log"
    askpass = tmp_path / "askpass.sh"
    askpass.write_text(f'#!/bin/sh\necho "$1" >> "{log}"\nif [ -e "{flag}" ]; then sleep 60; fi\necho 123456\n')
    askpass.chmod(0o700)
    home.extra_settings.update(askpass=str(askpass), lock_timeout=8)
    home.write_config(role_profile().replace(
        'role_arn = "', 'mfa_serial = "arn:aws:iam::123456789012:mfa/me", mfa_code = "prompt", role_arn = "'))
    flag.touch()
    holder = home.popen("credential-process", "--profile", "role")
    deadline = time.monotonic() + 30
    while not (log.exists() and log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log.exists(), "the holder never asked for the MFA code"
    os.killpg(holder.pid, signal.SIGKILL)  # gw and its askpass, mid-fetch, holding the profile lock
    holder.wait(timeout=10)
    flag.unlink()
    started = time.monotonic()
    doc = _fetch(home, moto, fetches=1)
    assert time.monotonic() - started < 7.5, "the next call waited for a dead lock holder"
    assert doc["AccessKeyId"].startswith("ASIA")
    assert len(log.read_text().splitlines()) == 2


# -- read-only state ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("populated", [True, False], ids=["key-and-cache-dir-exist", "empty-state-dir"])
def test_a_read_only_state_dir_still_gives_credentials_with_a_warning(aws_home, iam_user, moto, populated):
    """Run as an unprivileged user (root ignores modes) against state/cache dirs it cannot write."""
    keys_from_env(aws_home, iam_user)
    root = Path(tempfile.mkdtemp(prefix="gw-ro-"))
    try:
        os.chmod(root, 0o755)
        env = {**aws_home.env, "HOME": str(root), "GW_HOME": str(root / "state"), "GW_CONFIG": str(root / "config.toml")}
        (root / "config.toml").write_text(role_profile())
        state = root / "state"
        (state / "cache").mkdir(parents=True)
        chown_tree(root)
        cmd = as_unprivileged([GW, "credential-process", "--profile", "role"])

        def run():
            return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60,
                                  stdin=subprocess.DEVNULL, cwd=root)

        if populated:
            warm = run()  # creates the key and the lock file, caches the entry
            assert warm.returncode == 0, warm.stderr
            Path(Store(str(state / "cache"), str(root / "config.toml")).path("role")).unlink()
            os.chmod(state / "cache", 0o500)
        else:
            (state / "cache").rmdir()
        os.chmod(state, 0o500)
        before = moto.count("AssumeRole")
        for attempt in (1, 2):
            result = run()
            assert result.returncode == 0, result.stderr
            parse_credential_process(result.stdout)
            assert "Traceback" not in result.stderr
            lines = result.stderr.splitlines()
            assert lines and all(line.startswith("gw: warning: ") for line in lines), result.stderr
            assert any("were not cached" in line for line in lines), result.stderr
            assert moto.count("AssumeRole") == before + attempt  # nothing was cached
        assert not list((state / "cache").glob("role.*gwc"))
    finally:
        for dirpath, _dirs, _ in os.walk(root):
            os.chmod(dirpath, 0o700)
        subprocess.run(["rm", "-rf", str(root)], check=False)


# -- expiry and the refresh window ------------------------------------------------------------------------------
def test_an_entry_due_for_refresh_is_refetched(role_home, moto):
    home = role_home
    first = _fetch(home, moto, fetches=1)
    now = int(time.time())
    _reseal(home, "role", refresh_at=now - 5, expires_at=now + 600)
    second = _fetch(home, moto, fetches=1)
    assert second["AccessKeyId"] != first["AccessKeyId"]


def test_an_expired_entry_is_refetched(role_home, moto):
    home = role_home
    _fetch(home, moto, fetches=1)
    now = int(time.time())
    _reseal(home, "role", refresh_at=now - 700, expires_at=now - 60, issued_at=now - 3660)
    _fetch(home, moto, fetches=1)


def test_a_15_minute_credential_is_served_from_cache_for_half_its_life(aws_home, iam_user, moto):
    home = aws_home
    keys_from_env(home, iam_user)
    home.write_config(role_profile(duration=900))
    _fetch(home, moto, fetches=1)
    header, _ = read_cached(home, "role")
    assert header.expires_at - header.issued_at == pytest.approx(900, abs=2)
    assert header.expires_at - header.refresh_at == pytest.approx(450, abs=2)
    # issued 5 minutes ago, expires in 10: still served (no fetch on every SDK call)
    shift = 300
    _reseal(home, "role", issued_at=header.issued_at - shift, refresh_at=header.refresh_at - shift,
            expires_at=header.expires_at - shift)
    _fetch(home, moto, fetches=0)
    # issued 8 minutes ago, expires in 7: past half its life, fetched anew
    shift = 180
    header, _ = read_cached(home, "role")
    _reseal(home, "role", issued_at=header.issued_at - shift, refresh_at=header.refresh_at - shift,
            expires_at=header.expires_at - shift)
    _fetch(home, moto, fetches=1)


@pytest.mark.parametrize(
    "lifetime, margin",
    [(15 * 60, 450), (20 * 60, 600), (3600, 960), (12 * 3600, 960)],
    ids=["15min", "20min", "1h", "12h"],
)
def test_refresh_margin(lifetime, margin):
    assert refresh_margin(lifetime) == margin
    left_at_refresh = margin
    if lifetime >= 3600:  # long sessions: never handed out inside botocore's 15-minute advisory window
        assert left_at_refresh > 15 * 60
    assert lifetime - margin >= 5 * 60  # and always at least 5 minutes of use per fetch


# -- config edits -----------------------------------------------------------------------------------------------------------
def test_editing_another_profile_keeps_the_entry_and_restamps_it(role_home, moto):
    home = role_home
    first = _fetch(home, moto, fetches=1)
    hot = run_importtime(home, "credential-process", "--profile", "role")
    assert hot.returncode == 0 and json.loads(hot.stdout) == first
    assert "gw.config" not in imported_modules(hot.stderr)  # served by the fast path
    with open(home.config_path, "a") as f:
        f.write(role_profile("other", session_name="other"))
    before = moto.count("AssumeRole")
    slow = run_importtime(home, "credential-process", "--profile", "role")
    assert slow.returncode == 0, slow.stderr
    assert json.loads(slow.stdout) == first
    assert "gw.config" in imported_modules(slow.stderr)  # the stamp no longer matched
    assert moto.count("AssumeRole") == before  # served from the cache all the same
    header, _ = read_cached(home, "role")
    st = os.stat(home.config_path)
    assert header.stamp == (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)  # re-stamped
    again = run_importtime(home, "credential-process", "--profile", "role")
    assert again.returncode == 0 and json.loads(again.stdout) == first
    assert "gw.config" not in imported_modules(again.stderr)  # the fast path serves it again


def test_editing_the_profile_itself_refetches(role_home, moto):
    home = role_home
    first = _fetch(home, moto, fetches=1)
    home.write_config(role_profile(session_name="renamed"))
    second = _fetch(home, moto, fetches=1)
    assert second["AccessKeyId"] != first["AccessKeyId"]
    assert moto.lookup(second["AccessKeyId"]).arn.endswith(":assumed-role/Admin/renamed")
