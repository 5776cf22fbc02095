"""Issue 8, file items: 0700 directories under any umask, unsafe existing directories refused
with the fixing command, FIFOs and directories at file paths, read-only state, a full disk,
and temp files of killed writers.

gw runs as a real process; where modes must bite, as an unprivileged user (root ignores them).
"""

from __future__ import annotations

import os
import resource
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.core.gw_test_support import (
    GW,
    NOBODY,
    as_unprivileged,
    assert_clean_failure,
    cache_file,
    chown_tree,
    keys_from_env,
    role_profile,
)

TIMEOUT = 30  # a FIFO that blocked gw would hit this and fail the test
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
TOTP_PROFILE = """
[profiles.t]
steps = [
  {{ use = "soracom-keys", operator_id = "OP0000000001", username = "u", password = "vault:x", mfa_code = "totp:vault:seed" }},
  {{ use = "soracom-auth", endpoint = "{endpoint}" }},
]
"""


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# -- directories gw creates --------------------------------------------------------------------
@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_every_directory_gw_creates_is_0700(gw_home, tmp_path, umask):
    deep = tmp_path / "a" / "b" / "state"
    xdg = tmp_path / "xdg-state"
    env = dict(gw_home.env, GW_HOME=str(deep))
    old = os.umask(umask)
    try:
        result = subprocess.run([GW, "vault", "set", "x"], check=False, input="value-1234", text=True, capture_output=True,
                                env=env, timeout=TIMEOUT)
        assert result.returncode == 0, result.stderr
        env2 = {k: v for k, v in env.items() if k != "GW_HOME"} | {"XDG_STATE_HOME": str(xdg / "s"),
                                                                     "XDG_CACHE_HOME": str(xdg / "c")}
        result = subprocess.run([GW, "vault", "set", "y"], check=False, input="value-5678", text=True, capture_output=True,
                                env=env2, timeout=TIMEOUT)
        assert result.returncode == 0, result.stderr
    finally:
        os.umask(old)
    for directory in (tmp_path / "a", tmp_path / "a" / "b", deep, deep / "locks", xdg, xdg / "s", xdg / "s" / "gw"):
        assert _mode(directory) == 0o700, (directory, oct(_mode(directory)))
    for file in (deep / "key", deep / "vault", xdg / "s" / "gw" / "vault"):
        assert _mode(file) == 0o600


# -- existing directories that are not safe ------------------------------------------------------
@pytest.mark.parametrize("which", ["state", "cache", "locks", "totp"])
@pytest.mark.parametrize("problem", ["group-writable", "world-writable", "foreign", "symlink"])
def test_an_unsafe_existing_directory_is_refused_with_the_fix(gw_home, tmp_path, which, problem):
    home = gw_home
    home.vault_set("x", "value-1234")  # creates state, key, vault, locks
    home.vault_set("seed", SEED)
    home.write_config(role_profile("p"))
    directory = home.state if which == "state" else home.state / which
    directory.mkdir(exist_ok=True, mode=0o700)
    if problem == "group-writable":
        directory.chmod(0o770)
    elif problem == "world-writable":
        directory.chmod(0o777)
    elif problem == "foreign":
        os.chown(directory, NOBODY, NOBODY)
    else:
        if which == "state":
            pytest.skip("GW_HOME itself may be a link to a private directory (its target is checked)")
        elsewhere = tmp_path / f"elsewhere-{which}"
        elsewhere.mkdir(mode=0o700)
        directory.rmdir() if not any(directory.iterdir()) else subprocess.run(["rm", "-rf", str(directory)], check=False)
        directory.symlink_to(elsewhere)
    args = {"state": ("vault", "list"), "cache": ("cache", "list"), "locks": ("vault", "set", "y"),
            "totp": None}[which]
    if args is None:
        home.write_config(TOTP_PROFILE.format(endpoint="https://127.0.0.1:9"))
        args = ("env", "--profile", "t")
    result = home.run_in_process(*args, input="value-5678" if args[:2] == ("vault", "set") else None)
    line = assert_clean_failure(result)
    fix = {"group-writable": f"chmod 700 {directory}", "world-writable": f"chmod 700 {directory}",
           "foreign": f"chown {os.getuid()} {directory}", "symlink": "symlink"}[problem]
    assert fix in line, line


def test_a_symlinked_iot_directory_is_refused_before_anything_is_written(gw_home, tmp_path, monkeypatch):
    """The Krypton IoT step creates <state>/iot/<device> with gw.plugin.private_dir."""
    from gw.errors import GwError
    from gw.plugin import private_dir

    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    target = tmp_path / "attacker"
    target.mkdir(mode=0o700)
    (state / "iot").symlink_to(target)
    monkeypatch.setenv("GW_HOME", str(state))
    with pytest.raises(GwError, match="symlink"):
        private_dir(str(state / "iot" / "device"))
    assert list(target.iterdir()) == []
    assert _mode(target) == 0o700


# -- FIFOs and directories where files belong -------------------------------------------------------
def _warm(home, iam_user) -> None:
    keys_from_env(home, iam_user)
    home.write_config(role_profile("p"))
    assert home.run_in_process("credential-process", "--profile", "p").returncode == 0


@pytest.mark.parametrize("what", ["key", "vault", "config"])
@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_fifo_or_directory_at_a_file_path_is_one_clear_line(aws_home, iam_user, what, kind):
    home = aws_home
    home.vault_set("x", "value-1234")
    _warm(home, iam_user)
    path = {"key": home.state / "key", "vault": home.state / "vault", "config": home.config_path}[what]
    path.unlink()
    os.mkfifo(path, 0o600) if kind == "fifo" else path.mkdir(mode=0o700)
    args = ("credential-process", "--profile", "p") if what == "config" else ("vault", "list")
    result = home.run_in_process(*args, timeout=TIMEOUT)
    line = assert_clean_failure(result)
    assert str(path) in line and ("FIFO" in line or "directory" in line), line
    assert "internal error" not in line


def test_a_fifo_as_cache_entry_is_a_miss(aws_home, iam_user, moto):
    home = aws_home
    _warm(home, iam_user)
    entry = cache_file(home, "p")
    entry.unlink()
    os.mkfifo(entry, 0o600)
    before = moto.count("AssumeRole")
    result = home.run_in_process("credential-process", "--profile", "p", timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert moto.count("AssumeRole") == before + 1
    assert stat.S_ISREG(os.lstat(entry).st_mode)  # replaced by a real entry


# -- read-only state -----------------------------------------------------------------------------------
def _readonly_home(gw_home, tmp_path):
    root = Path(tempfile.mkdtemp(prefix="gw-ro-"))
    os.chmod(root, 0o755)
    env = {**gw_home.env, "HOME": str(root), "GW_HOME": str(root / "state"), "GW_CONFIG": str(root / "config.toml")}
    return root, env


def _run_as_nobody(args, env, root, input=None):
    return subprocess.run(as_unprivileged([GW, *args]), check=False, env=env, capture_output=True, text=True, timeout=TIMEOUT,
                          input=input, stdin=None if input is not None else subprocess.DEVNULL, cwd=root)


def test_a_read_only_state_dir_gives_clear_lines_not_internal_errors(gw_home, tmp_path):
    root, env = _readonly_home(gw_home, tmp_path)
    try:
        (root / "config.toml").write_text(TOTP_PROFILE.format(endpoint="https://127.0.0.1:9").replace("vault:x", "vault:pw"))
        chown_tree(root)
        assert _run_as_nobody(("vault", "set", "pw"), env, root, input="pw-123456").returncode == 0
        assert _run_as_nobody(("vault", "set", "seed"), env, root, input="JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP").returncode == 0
        for dirpath, _, _ in os.walk(root / "state"):
            os.chmod(dirpath, 0o500)
        vault = _run_as_nobody(("vault", "set", "z"), env, root, input="value-1234")
        line = assert_clean_failure(vault)
        assert "cannot write the vault" in line and "internal error" not in line
        clear = _run_as_nobody(("cache", "clear"), env, root)
        assert "Traceback" not in clear.stderr and "internal error" not in clear.stderr
        totp = _run_as_nobody(("env", "--profile", "t"), env, root)
        line = assert_clean_failure(totp)
        assert "internal error" not in line and "cannot reach" in line  # got as far as the upstream
    finally:
        for dirpath, _, _ in os.walk(root):
            os.chmod(dirpath, 0o700)
        subprocess.run(["rm", "-rf", str(root)], check=False)


# -- a full disk (RLIMIT_FSIZE: every write past the limit fails with EFBIG) ------------------------------
def _limited(limit: int):
    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


def test_a_full_disk_during_vault_set_and_key_creation_is_one_line_and_leaves_nothing(gw_home):
    home = gw_home
    result = subprocess.run([GW, "vault", "set", "x"], check=False, input="value-1234", text=True, capture_output=True,
                            env=home.env, timeout=TIMEOUT, preexec_fn=_limited(16))
    line = assert_clean_failure(result)
    assert "key file" in line and "internal error" not in line
    assert sorted(p.name for p in home.state.iterdir() if p.is_file()) == []  # no key, no key.<pid>.new
    home.vault_set("x", "value-1234")  # with room: works, creates the key
    vault_before = (home.state / "vault").read_bytes()
    result = subprocess.run([GW, "vault", "set", "big"], check=False, input="v" * 4096, text=True, capture_output=True,
                            env=home.env, timeout=TIMEOUT, preexec_fn=_limited(len(vault_before) + 10))
    line = assert_clean_failure(result)
    assert "cannot write the vault" in line and "unchanged" in line
    assert (home.state / "vault").read_bytes() == vault_before
    assert [p.name for p in home.state.iterdir() if p.name.endswith((".tmp", ".new"))] == []


# -- temp files of killed writers ----------------------------------------------------------------------------
def test_temp_files_of_dead_writers_are_cleaned_up(aws_home, iam_user):
    home = aws_home
    keys_from_env(home, iam_user)
    home.write_config(role_profile("p"))
    home.vault_set("x", "value-1234")
    dead = subprocess.Popen(["true"])
    dead.wait()
    old = time.time() - 3600
    stale = [home.cache_dir / f".p.x.gwc.{dead.pid}.tmp", home.state / f".vault.{dead.pid}.tmp",
             home.state / f"key.{dead.pid}.new"]
    home.cache_dir.mkdir(exist_ok=True)
    fresh = home.cache_dir / f".q.gwc.{dead.pid + 1}.tmp"
    for path in [*stale, fresh]:
        path.write_bytes(b"partial")
        if path != fresh:
            os.utime(path, (old, old))
    (home.state / "key").unlink()  # the next run creates the key anew (cleaning the state dir) ...
    (home.state / "vault").unlink()
    home.vault_set("x", "value-1234")  # ... and writes the vault
    assert home.run_in_process("credential-process", "--profile", "p").returncode == 0  # and a cache entry
    assert [p for p in stale if p.exists()] == []
    assert fresh.exists()  # too young to judge: its writer may still be at work


@pytest.mark.parametrize("kind", ["fifo", "directory", "symlink"])
def test_a_strange_totp_record_never_blocks_and_is_replaced(tmp_path, kind, monkeypatch):
    """The one-time-code bookkeeping (<state>/totp/<account>.last) reads its record without blocking."""
    from gw.totp import account_id, fresh_code

    state = tmp_path / "state"
    monkeypatch.setenv("GW_HOME", str(state))
    (state / "totp").mkdir(parents=True, mode=0o700)
    state.chmod(0o700)
    record = state / "totp" / f"{account_id('acct')}.last"
    target = tmp_path / "target"
    target.write_text("999999999\n")
    {"fifo": lambda: os.mkfifo(record, 0o600), "directory": lambda: record.mkdir(mode=0o700),
     "symlink": lambda: record.symlink_to(target)}[kind]()
    code = fresh_code("acct", lambda t: f"{int(t) % 1000000:06d}", str(state), period=30, lock_timeout=5)
    assert len(code) == 6
    assert target.read_text() == "999999999\n"  # a symlinked record is replaced, never written through
    if kind != "directory":
        assert stat.S_ISREG(os.lstat(record).st_mode) and int(record.read_text()) >= int(time.time() // 30) - 1
