"""The 1Password plugin through the real gw and the op emulator: op:// and op-otp://
references, the onepassword step, one-time codes per account, failures as one line."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.plugins.soracom.soracom_testdata import IMSIS, SAM


def _setup(sora, profile: str, *extra: str) -> None:
    proc = sora.run("setup", "soracom", "--profile", profile, "--endpoint", sora.api.url, *extra)
    assert proc.returncode == 0, proc.stderr


def _list(sora, name: str) -> list[str]:
    proc = sora.soracom("--profile", name, "subscribers", "list")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [row["imsi"] for row in json.loads(proc.stdout)]


def test_op_schemes_and_item_step(sora):
    # op:// and op-otp:// references; two calls in a row never reuse the item's code
    _setup(sora, "sora-op")
    _setup(sora, "sora-op-item", "--coverage", "g")
    for name in ("sora-op", "sora-op", "sora-op-item", "sora-op-item"):
        assert _list(sora, name) == sorted(IMSIS)
    codes = sora.api.accepted_codes  # root twice, then the SAM user twice (same seed, other account)
    assert len(codes) == 4 and codes[0] != codes[1] and codes[2] != codes[3] and sora.api.rejected_codes == []
    doc = json.loads(sora.run("soracom-profile", "--profile", "sora-op-item").stdout)
    assert doc["operatorId"] == SAM[0] and doc["username"] == SAM[1] and "coverageType" not in doc


def test_vault_seed_and_1password_item_for_one_account_never_share_a_code(sora):
    # sora-root (vault seed), sora-op-root (onepassword step) and sora-op (op-otp:// in
    # soracom-keys) are the same root account: the no-reuse record is keyed on it.
    for name in ("sora-root", "sora-op-root", "sora-op"):
        _setup(sora, name)
    for name in ("sora-root", "sora-op-root", "sora-op", "sora-root", "sora-op-root"):
        assert _list(sora, name) == sorted(IMSIS)  # the emulator refuses a code used twice for one user
    assert len(sora.api.accepted_codes) == 5 and len(set(sora.api.accepted_codes)) == 5
    assert sora.api.rejected_codes == []


def test_vault_seed_and_1password_item_for_one_sam_user_never_share_a_code(sora):
    # The same SAM user (OP.../deploy) three ways: a vault seed (sora-sam), the onepassword
    # step (sora-op-item) and op-otp:// in soracom-keys (sam-op-otp). The no-reuse record is
    # keyed on operator_id/username, whichever source the code came from.
    from tests.plugins.soracom.conftest import sora_config

    sora.home.write_config(sora_config(sora.api.url) + f'''
[profiles.sam-op-otp]
steps = [{{ use = "soracom-keys", operator_id = "{SAM[0]}", username = "{SAM[1]}", password = "vault:sam-pw", mfa_code = "op-otp://Private/SORACOM SAM deploy" }}]
''')
    for name in ("sora-sam", "sora-op-item", "sam-op-otp"):
        _setup(sora, name)
    for name in ("sora-sam", "sora-op-item", "sam-op-otp", "sora-sam", "sora-op-item", "sam-op-otp"):
        assert _list(sora, name) == sorted(IMSIS)  # the emulator refuses a code used twice for one user
    assert len(sora.api.accepted_codes) == 6 and len(set(sora.api.accepted_codes)) == 6
    assert sora.api.rejected_codes == []


def test_onepassword_aws_credentials(sora):
    proc = sora.run("env", "--profile", "aws-op", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    env = json.loads(proc.stdout)
    assert env["AWS_ACCESS_KEY_ID"] == "AKIAEMULATOR00000001"
    assert env["AWS_SECRET_ACCESS_KEY"] == "emuSecretKey/abcdefghijklmnopqrstuvwxyz0"


def test_authkey_item_with_otp_is_a_warning_and_reads_no_code(sora):
    from tests.plugins.soracom.conftest import sora_config

    sora.home.write_config(sora_config(sora.api.url) + '''
[profiles.op-authkey-otp]
steps = [{ use = "onepassword", item = "SORACOM root", vault = "Private", otp = true, fields = { auth_key_id = "username", auth_key = "password" } }]
''')
    proc = sora.run("check")
    assert proc.returncode == 0 and "gw: warning: " in proc.stderr and "otp is ignored" in proc.stderr, proc.stderr
    proc = sora.run("soracom-profile", "--profile", "op-authkey-otp")
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads(proc.stdout)) == {"authKeyId", "authKey"}
    totp = sora.home.state / "totp"
    assert not totp.exists() or not list(totp.glob("*.last"))  # no one-time code was read or spent


@pytest.mark.parametrize(
    "profile,extra,pattern",
    [
        ("sora-op-item", {"GW_OP_SIGNED_OUT": "1"}, r"1Password CLI is signed out"),
        ("op-missing-item", {}, r"1Password item not found"),
        ("op-missing-field", {}, r"1Password field missing.*'e-mail'"),
        ("op-slow", {"GW_OP_DELAY": "4"}, r"1Password CLI timed out after 1 s"),
        ("sora-op", {"GW_OP_PATH": "/nonexistent/op"}, r"1Password CLI not found"),
    ],
)
def test_op_failures_are_one_clear_line(sora, profile, extra, pattern):
    start = time.monotonic()
    proc = sora.run("soracom-profile", "--profile", profile, extra=extra)
    assert proc.returncode != 0 and proc.stdout == ""
    lines = sora.errors(proc)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("gw: ") and re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in proc.stderr
    assert time.monotonic() - start < 30
