"""The op emulator speaks the 1Password CLI protocol of protocols.md section 4."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

import pyotp
import pytest

from tests.plugins.soracom.soracom_testdata import PERIOD, ROOT, SAM, SEED

ERROR_LINE = re.compile(r"^\[ERROR\] \d{4}/\d\d/\d\d \d\d:\d\d:\d\d .+")


def _op(op_shim, *args, **env):
    bindir, _ = op_shim
    return subprocess.run([str(bindir / "op"), *args], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env={**os.environ, **env}, timeout=30, check=False)


def test_op_item_get_json_shape(op_shim):
    r = _op(op_shim, "item", "get", "SORACOM root", "--vault", "Private", "--format", "json")
    assert r.returncode == 0, r.stderr
    item = json.loads(r.stdout)
    assert item["title"] == "SORACOM root" and item["vault"]["name"] == "Private"
    for field in item["fields"]:
        assert {"id", "label", "type"} <= set(field)
    otp = next(f for f in item["fields"] if f["type"] == "OTP")
    assert otp["value"].startswith("otpauth://totp/") and re.fullmatch(r"\d{6}", otp["totp"])
    assert otp["totp"] in {pyotp.TOTP(SEED, interval=PERIOD).at(time.time(), counter_offset=o) for o in (-1, 0)}
    password = next(f for f in item["fields"] if f["label"] == "password")
    assert password["type"] == "CONCEALED" and password["value"] == ROOT[1]


def test_op_otp_and_read(op_shim):
    r = _op(op_shim, "item", "get", "SORACOM SAM deploy", "--vault=Private", "--otp")
    assert r.returncode == 0 and re.fullmatch(r"\d{6}\n", r.stdout)
    r = _op(op_shim, "read", "op://Private/SORACOM SAM deploy/operator id")
    assert r.returncode == 0 and r.stdout == SAM[0] + "\n"
    r = _op(op_shim, "read", "--no-newline", "op://Private/SORACOM root/password")
    assert r.stdout == ROOT[1]
    r = _op(op_shim, "read", "op://Private/SORACOM root/one-time password?attribute=otp")
    assert re.fullmatch(r"\d{6}\n", r.stdout)


@pytest.mark.parametrize(
    "args,env,pattern",
    [
        (("item", "get", "SORACOM root", "--format", "json"), {"GW_OP_SIGNED_OUT": "1"}, r"not currently signed in"),
        (("item", "get", "nope", "--vault", "Private", "--format", "json"), {}, r'"nope" isn\'t an item'),
        (("item", "get", "x", "--vault", "Nowhere", "--format", "json"), {}, r"isn't a vault"),
        (("read", "op://Private/SORACOM root/pin"), {}, r"isn't a field"),
        (("item", "get", "AWS ci", "--otp"), {}, r"one-time password"),
    ],
)
def test_op_failures(op_shim, args, env, pattern):
    r = _op(op_shim, *args, **env)
    assert r.returncode == 1 and r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and ERROR_LINE.match(lines[0]) and re.search(pattern, lines[0]), r.stderr


def test_op_delay(op_shim):
    start = time.monotonic()
    r = _op(op_shim, "whoami", GW_OP_DELAY="1.5")
    assert r.returncode == 0 and time.monotonic() - start >= 1.5
