"""Keep it fixed (issue 8): a permissions / ownership / symlink / FIFO matrix over every path
gw reads or writes. Each cell runs the real gw on a warm home after making one path
group-readable, world-writable, another user's, a symlink, a FIFO or a directory, and checks
the outcome the threat model (docs/security.md) promises:

- R: refused, one ``gw: ...`` line naming the path (and, for modes and owners, the fixing command);
- W: works (perhaps with a warning), nothing followed, nothing loosened;
and for symlink cells that the link's target is untouched.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.core.gw_test_support import (
    NOBODY,
    assert_clean_failure,
    cache_file,
    role_profile,
)

CONDITIONS = ("group-readable", "world-writable", "foreign", "symlink", "fifo", "directory")
TOTP = """
[profiles.t]
steps = [
  { use = "soracom-keys", operator_id = "OP0000000001", username = "u", password = "vault:secret", mfa_code = "totp:vault:seed" },
  { use = "soracom-auth", endpoint = "https://127.0.0.1:9" },
]
"""

# path -> (is a directory, {condition: expected}); conditions not listed do not apply.
MATRIX: dict[str, tuple[bool, dict[str, str]]] = {
    "state": (True, {"group-readable": "W", "world-writable": "R", "foreign": "R", "symlink": "W"}),
    "cache": (True, {"group-readable": "W", "world-writable": "R", "foreign": "R", "symlink": "R"}),
    "locks": (True, {"group-readable": "W", "world-writable": "R", "foreign": "R", "symlink": "R"}),
    "totp": (True, {"group-readable": "W", "world-writable": "R", "foreign": "R", "symlink": "R"}),
    "iot": (True, {"world-writable": "R", "foreign": "R", "symlink": "R"}),
    "key": (False, dict.fromkeys(CONDITIONS, "R")),
    "vault": (False, dict.fromkeys(CONDITIONS, "R")),
    "entry": (False, {"group-readable": "W", "world-writable": "W", "foreign": "W", "symlink": "W", "fifo": "W",
                      "directory": "W"}),
    "lock": (False, {"group-readable": "W", "world-writable": "W", "foreign": "W", "symlink": "W", "fifo": "W",
                     "directory": "W"}),
    "config": (False, {"group-readable": "W", "world-writable": "R", "foreign": "R", "symlink": "W", "fifo": "R",
                       "directory": "R"}),
    "aws-config": (False, {"group-readable": "W", "world-writable": "W", "symlink": "W", "fifo": "R",
                           "directory": "R", "foreign": "W"}),
    "aws-backup": (False, {"group-readable": "W", "world-writable": "W", "foreign": "W", "symlink": "W", "fifo": "W",
                           "directory": "R"}),
}
CELLS = [(path, cond, expected) for path, (_, row) in MATRIX.items() for cond, expected in row.items()]


@pytest.fixture
def warm(warm_home):
    home = warm_home  # key and vault (akid, secret, seed) copied from the session's warmed home
    home.write_config(role_profile("p", keys="vault") + TOTP)
    assert home.run_in_process("credential-process", "--profile", "p").returncode == 0
    (home.state / "totp").mkdir(mode=0o700, exist_ok=True)
    (home.state / "iot").mkdir(mode=0o700, exist_ok=True)
    return home


def _where(home, name: str) -> Path:
    return {
        "state": home.state, "cache": home.cache_dir, "locks": home.state / "locks", "totp": home.state / "totp",
        "iot": home.state / "iot", "key": home.state / "key", "vault": home.state / "vault",
        "entry": cache_file(home, "p"), "lock": home.state / "locks" / "p.lock", "config": home.config_path,
        "aws-config": home.aws_config, "aws-backup": home.aws_config.with_name("config.gw-backup"),
    }[name]


def _spoil(path: Path, is_dir: bool, condition: str, elsewhere: Path) -> Path | None:
    """Apply ``condition`` to ``path``; returns a symlink's target (to check it stays untouched)."""
    if not path.exists() and not path.is_symlink():
        path.mkdir(mode=0o700) if is_dir else path.write_text("[profile other]\nregion = us-east-1\n")
    if condition == "group-readable":
        path.chmod(0o750 if is_dir else 0o640)
    elif condition == "world-writable":
        path.chmod(0o777 if is_dir else 0o666)
    elif condition == "foreign":
        os.chown(path, NOBODY, NOBODY)
    elif condition == "symlink":
        target = elsewhere / f"target-{path.name}"
        os.rename(path, target)  # the link points at the real thing, moved away
        path.symlink_to(target)
        return target
    elif condition in ("fifo", "directory"):
        subprocess.run(["rm", "-rf", str(path)], check=True)
        os.mkfifo(path, 0o600) if condition == "fifo" else path.mkdir(mode=0o700)
    return None


def _snapshot(target: Path) -> list[tuple[str, int, bytes]]:
    found = []
    for p in sorted([target, *target.rglob("*")]) if target.is_dir() else [target]:
        st = os.lstat(p)
        found.append((str(p), stat.S_IMODE(st.st_mode), p.read_bytes() if stat.S_ISREG(st.st_mode) else b""))
    return found


def _run(home, name: str):
    if name == "totp":
        return home.run_in_process("env", "--profile", "t", timeout=30)
    if name == "vault":
        return home.run_in_process("vault", "list", timeout=30)
    if name in ("aws-config", "aws-backup"):
        return home.run_in_process("setup", "aws", "--profile", "p", timeout=30)
    return home.run_in_process("credential-process", "--profile", "p", timeout=30)


@pytest.mark.parametrize(("name", "condition", "expected"), CELLS, ids=[f"{p}-{c}" for p, c, _ in CELLS])
def test_permission_matrix(warm, tmp_path, name, condition, expected, monkeypatch):
    home = warm
    path = _where(home, name)
    is_dir = MATRIX[name][0]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    if name == "aws-backup":  # a backup is written when there is a config to back up
        home.aws_config.parent.mkdir(mode=0o700, exist_ok=True)
        home.aws_config.write_text("[profile other]\nregion = us-east-1\n")
    target = _spoil(path, is_dir, condition, elsewhere)
    before = _snapshot(target) if target is not None and name != "state" else None
    if name == "iot":  # the Krypton IoT step creates <state>/iot/<device> with gw.plugin.private_dir
        from gw.errors import GwError
        from gw.plugin import private_dir

        monkeypatch.setenv("GW_HOME", str(home.state))
        with pytest.raises(GwError) as refused:
            private_dir(str(path / "device"))
        assert str(path) in str(refused.value)
        assert not (elsewhere / f"target-{path.name}" / "device").exists()
        return
    if name in ("locks", "lock"):  # a cache hit takes no lock: make gw fetch
        cache_file(home, "p").unlink()
    result = _run(home, name)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    if expected == "R":
        line = assert_clean_failure(result)
        assert str(path) in line, line
        if condition == "world-writable":
            assert "chmod" in line
        if condition == "foreign":
            assert f"chown {os.getuid()}" in line
    elif name == "totp":  # got past its TOTP bookkeeping to the (closed) upstream
        assert_clean_failure(result, contains="cannot reach the SORACOM API")
    else:
        assert result.returncode == 0, result.stderr
        assert all(ln.startswith("gw: warning: ") for ln in result.stderr.splitlines()), result.stderr
    if before is not None and name not in ("aws-config",):
        assert _snapshot(target) == before, "gw wrote through a symlink it should not follow"
    if condition in ("group-readable", "world-writable") and expected == "R" and path.exists():
        assert stat.S_IMODE(os.lstat(path).st_mode) in (0o750, 0o640, 0o777, 0o666)  # gw never changes modes itself
