"""Regression tests for defects found in the independent review (one test per fix)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import GW


# -- TOTP: one seed, however it is spelled, never yields the same code twice ----------------
def test_totp_code_not_reused_when_the_seed_is_spelled_differently(tmp_path):
    from gw.totp import fresh_code, generator, seed_account

    canonical = "JBSWY3DPEHPK3PXPJBSWY3DP"
    spaced = "jbsw y3dp ehpk 3pxp jbsw y3dp"  # the same key as authenticator apps show it
    first = fresh_code(seed_account(canonical), generator(canonical, period=2), str(tmp_path), period=2)
    second = fresh_code(seed_account(spaced), generator(spaced, period=2), str(tmp_path), period=2)
    assert first != second


# -- fast path: a reader that went away is exit 1 and silence, not a traceback ----------------
MAKE_ENTRY = textwrap.dedent(
    """
    from datetime import timedelta
    from gw.app import App
    from gw.credentials import AwsCredentials, utcnow
    app = App()
    credential = AwsCredentials("AKIAREVIEWTEST", "review-secret-key", "review-session-token",
                                utcnow() + timedelta(hours=1), utcnow(), "assume-role")
    app._store(app.config.profile("p"), credential)
    """
)


def test_cache_hit_into_a_closed_pipe_is_quiet(gw_home):
    gw_home.write_config(
        '[profiles.p]\nsteps = [{ use = "aws-keys", access_key_id = "env:AK", secret_access_key = "env:SK" }]\n'
    )
    subprocess.run([sys.executable, "-c", MAKE_ENTRY], env=gw_home.env, check=True, timeout=60)
    assert gw_home.run_in_process("credential-process", "--profile", "p", check=True).stdout.startswith('{"Version":1')
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [GW, "credential-process", "--profile", "p"],
            env=gw_home.env, stdin=subprocess.DEVNULL, stdout=write_end, stderr=subprocess.PIPE,
            text=True, timeout=60,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 1
    assert done.stderr == ""


# -- CLI: a command group without its action says so, not the top-level help -----------------
@pytest.mark.parametrize("group, word", [("cache", "ACTION"), ("vault", "ACTION"), ("setup", "TARGET")])
def test_command_group_without_action_names_the_missing_action(gw_home, group, word):
    gw_home.write_config('[profiles.p]\nsteps = [{ use = "aws-keys", access_key_id = "env:A", secret_access_key = "env:S" }]\n')
    done = gw_home.run_in_process(group)
    assert done.returncode == 2
    assert f"usage: gw {group}" in done.stderr
    assert f"required: {word}" in done.stderr


# -- gw setup aws: the backup of ~/.aws/config is never readable by others -------------------
class Interrupted(BaseException):
    pass


def test_aws_config_backup_is_private_from_the_start(tmp_path, monkeypatch):
    from gw_plugins.aws.awsconfig import set_credential_process

    path = tmp_path / "config"
    path.write_text("[profile other]\naws_secret_access_key = not-for-others\n")
    path.chmod(0o600)
    real_chmod = os.chmod

    def chmod(target, mode, *args, **kwargs):  # gw is interrupted before it can tighten the backup
        if str(target).endswith(".gw-backup"):
            raise Interrupted()
        return real_chmod(target, mode, *args, **kwargs)

    monkeypatch.setattr(os, "chmod", chmod)
    old_umask = os.umask(0o022)
    try:
        set_credential_process(str(path), "p", "/usr/bin/gw credential-process --profile p")
    except Interrupted:
        pass
    finally:
        os.umask(old_umask)
    backup = tmp_path / "config.gw-backup"
    assert backup.exists()
    assert stat.S_IMODE(backup.stat().st_mode) & 0o077 == 0
