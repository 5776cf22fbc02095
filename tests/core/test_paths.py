"""gw.paths: where gw keeps its files and how it writes them (core/paths.py), as functions."""

from __future__ import annotations

import os
import stat

import pytest

from gw import paths
from gw.errors import CacheError


@pytest.fixture
def environ(monkeypatch, tmp_path):
    for name in ("GW_CONFIG", "GW_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


def test_defaults_follow_xdg_under_home(environ, tmp_path):
    home = tmp_path / "home"
    assert paths.config_path() == str(home / ".config" / "gw" / "config.toml")
    assert paths.state_dir() == str(home / ".local" / "state" / "gw")
    assert paths.cache_dir() == str(home / ".cache" / "gw")


def test_xdg_variables_count_only_when_absolute(environ, tmp_path):
    environ.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    environ.setenv("XDG_STATE_HOME", "relative/state")  # the XDG spec: ignore a relative path
    assert paths.config_path() == str(tmp_path / "cfg" / "gw" / "config.toml")
    assert paths.state_dir() == str(tmp_path / "home" / ".local" / "state" / "gw")


def test_gw_home_holds_state_and_cache(environ, tmp_path):
    environ.setenv("GW_HOME", str(tmp_path / "gw"))
    environ.setenv("GW_CONFIG", str(tmp_path / "c.toml"))
    assert paths.state_dir() == str(tmp_path / "gw")
    assert paths.cache_dir() == str(tmp_path / "gw" / "cache")
    assert paths.config_path() == str(tmp_path / "c.toml")


def test_ensure_dir_makes_every_missing_parent_0700_even_under_a_loose_umask(tmp_path):
    old = os.umask(0o000)
    try:
        made = paths.ensure_dir(str(tmp_path / "a" / "b" / "c"))
    finally:
        os.umask(old)
    assert made == str(tmp_path / "a" / "b" / "c")
    for path in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "c"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700


def test_ensure_dir_refuses_a_world_writable_directory_with_the_fix(environ, tmp_path):
    loose = tmp_path / "loose"
    environ.setenv("GW_HOME", str(loose))  # gw judges its own directories, from its roots down
    loose.mkdir(mode=0o700)
    loose.chmod(0o777)
    with pytest.raises(CacheError) as refused:
        paths.ensure_dir(str(loose / "inner"))
    assert str(loose) in str(refused.value) and "chmod" in str(refused.value)
    assert not (loose / "inner").exists()  # nothing created inside it


def test_atomic_write_replaces_with_mode_and_leaves_no_temp(tmp_path):
    target = tmp_path / "file"
    target.write_bytes(b"old")
    target.chmod(0o644)
    paths.atomic_write(str(target), b"new", mode=0o600)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_stale_temps_of_dead_writers_go_fresh_or_live_ones_stay(tmp_path):
    dead_pid = 2**22 + 12345  # above the default pid_max: no such process
    stale = tmp_path / f".cache.{dead_pid}.tmp"
    fresh = tmp_path / f".other.{dead_pid}.tmp"
    live = tmp_path / f".mine.{os.getppid()}.tmp"
    for path in (stale, fresh, live):
        path.write_bytes(b"x")
    old = os.stat(stale).st_mtime - 3600
    os.utime(stale, (old, old))
    os.utime(live, (old, old))
    assert paths.clean_stale_temps(str(tmp_path)) == 1
    assert not stale.exists() and fresh.exists() and live.exists()


def test_open_regular_refuses_a_symlink_fifo_and_directory(tmp_path):
    real = tmp_path / "real"
    real.write_text("data")
    link = tmp_path / "link"
    link.symlink_to(real)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    fd = paths.open_regular(str(real))
    try:
        assert os.read(fd, 10) == b"data"
    finally:
        os.close(fd)
    with pytest.raises(paths.UnsafePath, match="is a symlink"):
        paths.open_regular(str(link))
    with pytest.raises(paths.UnsafePath, match="is a FIFO"):  # refused at once, never waited on
        paths.open_regular(str(fifo))
    with pytest.raises(paths.UnsafePath, match="is a directory"):
        paths.open_regular(str(tmp_path))
    fd = paths.open_regular(str(link), follow=True)
    os.close(fd)
    with pytest.raises(FileNotFoundError):
        paths.open_regular(str(tmp_path / "missing"))


def test_private_file_problem_names_the_fix(tmp_path):
    key = tmp_path / "key"
    key.write_bytes(b"k")
    key.chmod(0o600)
    assert paths.private_file_problem(str(key), key.stat()) is None
    key.chmod(0o640)
    problem = paths.private_file_problem(str(key), key.stat())
    assert problem is not None and "mode 0640" in problem and f"chmod 600 {key}" in problem
