"""The SORACOM API emulator and the op emulator speak the protocols of protocols.md 3 and 4."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

import pyotp
import pytest
import requests

from tests.plugins.soracom.soracom_testdata import AUTHKEY, PERIOD, ROOT, SAM, SEED

ERROR_LINE = re.compile(r"^\[ERROR\] \d{4}/\d\d/\d\d \d\d:\d\d:\d\d .+")


def _post(emu, path, body, headers=None):
    return requests.post(emu.url + path, json=body, headers=headers or {}, verify=str(emu.ca.ca_path), timeout=10)


def _wait_next_step(period=PERIOD):
    time.sleep(period - (time.time() % period) + 0.05)


BODIES = {
    "root": {"email": ROOT[0], "password": ROOT[1]},
    "sam": {"operatorId": SAM[0], "userName": SAM[1], "password": SAM[2]},
    "authkey": {"authKeyId": AUTHKEY[0], "authKey": AUTHKEY[1]},
}


@pytest.mark.parametrize("kind", ["root", "sam", "authkey"])
def test_auth_with_mfa(soracom_api, kind):
    body = BODIES[kind]
    missing = _post(soracom_api, "/v1/auth", body)
    assert missing.status_code == 401
    assert set(missing.json()) == {"code", "message"} and "MFA" in missing.json()["message"]

    _wait_next_step()
    code = pyotp.TOTP(SEED, interval=PERIOD).now()
    ok = _post(soracom_api, "/v1/auth", {**body, "mfaOTPCode": code, "tokenTimeoutSeconds": 600})
    assert ok.status_code == 200, ok.text
    doc = ok.json()
    assert doc["operatorId"] == "OP0012345678" and doc["apiKey"] and doc["token"]
    assert (doc.get("userName") == "deploy") if kind == "sam" else "userName" not in doc
    assert soracom_api.accepted_codes == [code]

    replay = _post(soracom_api, "/v1/auth", {**body, "mfaOTPCode": code})
    assert replay.status_code == 401 and replay.json()["code"]

    subs = requests.get(soracom_api.url + "/v1/subscribers", verify=str(soracom_api.ca.ca_path), timeout=10,
                        headers={"X-Soracom-API-Key": doc["apiKey"], "X-Soracom-Token": doc["token"]})
    assert subs.status_code == 200 and subs.json()[0]["imsi"].startswith("440")
    assert soracom_api.calls["auth"] == 3 and soracom_api.calls["subscribers"] == 1


def test_bad_credentials_and_ranges(soracom_api):
    bad = _post(soracom_api, "/v1/auth", {"email": ROOT[0], "password": "nope", "mfaOTPCode": "123456"})
    assert bad.status_code == 401 and bad.json()["code"] == "AUM0002"
    wrong_code = _post(soracom_api, "/v1/auth", {**BODIES["root"], "mfaOTPCode": "000000"})
    assert wrong_code.status_code == 401
    for timeout in (179, 172801, "600"):
        r = _post(soracom_api, "/v1/auth", {"operatorId": SAM[0], "userName": "reader",
                                            "password": "reader-Pa55word!z", "tokenTimeoutSeconds": timeout})
        assert r.status_code == 400, timeout
    ok = _post(soracom_api, "/v1/auth", {"operatorId": SAM[0], "userName": "reader",
                                         "password": "reader-Pa55word!z", "tokenTimeoutSeconds": 180})
    assert ok.status_code == 200


def test_switch_user_logout_and_subscribers(soracom_api):
    login = _post(soracom_api, "/v1/auth", {"operatorId": SAM[0], "userName": "reader", "password": "reader-Pa55word!z"}).json()
    headers = {"X-Soracom-API-Key": login["apiKey"], "X-Soracom-Token": login["token"]}
    assert _post(soracom_api, "/v1/auth/switch_user",
                 {"operatorId": SAM[0], "userName": "deploy", "tokenTimeoutSeconds": 3601}, headers).status_code == 400
    switched = _post(soracom_api, "/v1/auth/switch_user",
                     {"operatorId": SAM[0], "userName": "deploy", "tokenTimeoutSeconds": 900}, headers)
    assert switched.status_code == 200 and switched.json()["userName"] == "deploy"
    assert _post(soracom_api, "/v1/auth/switch_user", {"operatorId": SAM[0], "userName": "deploy"}).status_code == 401

    get = lambda h: requests.get(soracom_api.url + "/v1/subscribers", headers=h, verify=str(soracom_api.ca.ca_path), timeout=10)
    assert get({}).status_code == 401
    assert get({**headers, "X-Soracom-Token": "forged"}).status_code == 401
    assert get(headers).status_code == 200
    assert _post(soracom_api, "/v1/auth/logout", None, headers).status_code == 200
    assert get(headers).status_code == 401
    assert soracom_api.logged_out == [login["apiKey"]]


# -- op emulator -------------------------------------------------------------------------
def _op(op_shim, *args, **env):
    bindir, _ = op_shim
    return subprocess.run([str(bindir / "op"), *args], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env={**os.environ, **env}, timeout=30)


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
