"""The SORACOM API emulator speaks protocols.md section 3 (as the real clients showed it)."""

from __future__ import annotations

import base64
import json

import pyotp
import pytest
import requests

from tests.plugins.soracom.soracom_testdata import (
    AUTHKEY,
    IMSIS,
    PERIOD,
    READER_PW,
    ROOT,
    SAM,
    SEED,
)


def _post(emu, path, body, headers=None):
    return requests.post(emu.url + path, json=body, headers=headers or {}, verify=str(emu.ca.ca_path), timeout=10)


def _get(emu, path, headers, **params):
    return requests.get(emu.url + path, headers=headers, params=params, verify=str(emu.ca.ca_path), timeout=10)


def _advance_to_next_step(emu, period=PERIOD):
    """Move the emulator's clock to just after the start of its next TOTP step (no real wait)."""
    emu.advance(period - (emu.clock() % period) + 0.05)


def _login(emu, user="reader", password=READER_PW):
    doc = _post(emu, "/v1/auth", {"operatorId": SAM[0], "userName": user, "password": password}).json()
    return doc, {"X-Soracom-API-Key": doc["apiKey"], "X-Soracom-Token": doc["token"]}


BODIES = {
    "root": {"email": ROOT[0], "password": ROOT[1]},
    "sam": {"operatorId": SAM[0], "userName": SAM[1], "password": SAM[2]},
}


@pytest.mark.parametrize("kind", ["root", "sam"])
def test_auth_with_mfa(soracom_api, kind):
    body = BODIES[kind]
    missing = _post(soracom_api, "/v1/auth", body)
    assert missing.status_code == 401
    assert missing.json() == {"code": "AUM0063", "message": "MFA OTP code is required."}
    ja = _post(soracom_api, "/v1/auth", body, {"X-Soracom-Lang": "ja"})
    assert ja.json() == {"code": "AUM0063", "message": "MFA OTPコードが必要です。"}  # the reported real answer

    _advance_to_next_step(soracom_api)
    code = pyotp.TOTP(SEED, interval=PERIOD).at(soracom_api.clock())
    ok = _post(soracom_api, "/v1/auth", {**body, "mfaOTPCode": code, "tokenTimeoutSeconds": 600})
    assert ok.status_code == 200, ok.text
    doc = ok.json()
    assert doc["operatorId"] == "OP0012345678" and doc["apiKey"] and doc["token"]
    assert (doc.get("userName") == "deploy") if kind == "sam" else "userName" not in doc
    assert soracom_api.accepted_codes == [code]

    replay = _post(soracom_api, "/v1/auth", {**body, "mfaOTPCode": code})
    assert replay.status_code == 401 and replay.json()["code"] == "AUM0002"


def test_authkey_takes_no_mfa_code(soracom_api):
    ok = _post(soracom_api, "/v1/auth", {"authKeyId": AUTHKEY[0], "authKey": AUTHKEY[1]})
    assert ok.status_code == 200 and ok.json()["operatorId"] == AUTHKEY[2]


def test_token_is_a_jwt_carrying_the_operator_id(soracom_api):
    doc, headers = _login(soracom_api)
    payload = doc["token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["operator"]["operatorId"] == SAM[0]
    operator = _get(soracom_api, f"/v1/operators/{SAM[0]}", headers)
    assert operator.status_code == 200 and operator.json()["operatorId"] == SAM[0]
    assert _get(soracom_api, "/v1/operators/OP9999999999", headers).status_code == 404


def test_bad_credentials_and_ranges(soracom_api):
    bad = _post(soracom_api, "/v1/auth", {"email": ROOT[0], "password": "nope", "mfaOTPCode": "123456"})
    assert bad.status_code == 401 and bad.json() == {"code": "AUM0002", "message": "Invalid username/password supplied."}
    wrong_code = _post(soracom_api, "/v1/auth", {**BODIES["root"], "mfaOTPCode": "000000"})
    assert wrong_code.status_code == 401
    for timeout in (179, 172801, "600"):
        r = _post(soracom_api, "/v1/auth", {"operatorId": SAM[0], "userName": "reader",
                                            "password": READER_PW, "tokenTimeoutSeconds": timeout})
        assert r.status_code == 400, timeout
    ok = _post(soracom_api, "/v1/auth", {"operatorId": SAM[0], "userName": "reader",
                                         "password": READER_PW, "tokenTimeoutSeconds": 180})
    assert ok.status_code == 200


def test_switch_user_and_logout(soracom_api):
    login, headers = _login(soracom_api)
    assert _post(soracom_api, "/v1/auth/switch_user",
                 {"operatorId": SAM[0], "userName": "deploy", "tokenTimeoutSeconds": 3601}, headers).status_code == 400
    refused = _post(soracom_api, "/v1/auth/switch_user", {"operatorId": SAM[0], "userName": "nobody"}, headers)
    assert refused.status_code == 400 and refused.json()["code"]
    switched = _post(soracom_api, "/v1/auth/switch_user",
                     {"operatorId": SAM[0], "userName": "deploy", "tokenTimeoutSeconds": 900}, headers)
    assert switched.status_code == 200 and switched.json()["userName"] == "deploy"
    assert _post(soracom_api, "/v1/auth/switch_user", {"operatorId": SAM[0], "userName": "deploy"}).status_code == 401

    assert _get(soracom_api, "/v1/subscribers", {}).status_code == 401
    assert _get(soracom_api, "/v1/subscribers", {**headers, "X-Soracom-Token": "forged"}).status_code == 401
    assert _get(soracom_api, "/v1/subscribers", headers).status_code == 200
    logout = _post(soracom_api, "/v1/auth/logout", None, headers)
    assert logout.status_code == 204 and logout.content == b""
    assert _get(soracom_api, "/v1/subscribers", headers).status_code == 401
    assert soracom_api.logged_out == [login["apiKey"]]


def test_subscribers_paging_and_get(soracom_api):
    _, headers = _login(soracom_api)
    seen: list[str] = []
    key = None
    pages = 0
    while True:
        params = {"limit": 2, **({"last_evaluated_key": key} if key else {})}
        page = _get(soracom_api, "/v1/subscribers", headers, **params)
        assert page.status_code == 200
        seen += [row["imsi"] for row in page.json()]
        pages += 1
        key = page.headers.get("x-soracom-next-key")
        if not key:
            break
    assert seen == sorted(IMSIS) and pages == 3
    one = _get(soracom_api, f"/v1/subscribers/{IMSIS[0]}", headers)
    assert one.status_code == 200 and one.json()["status"] == "active" and one.json()["groupId"] == "grp-1"
    assert _get(soracom_api, "/v1/subscribers/440109999999999", headers).status_code == 404
    assert _get(soracom_api, "/v1/subscribers", headers, limit="0").status_code == 400


def test_add_subscriber_for_the_endorse_exchange(soracom_api):
    sim = soracom_api.add_subscriber("440100000000077", status="suspended", group_id="grp-x")
    _, headers = _login(soracom_api)
    doc = _get(soracom_api, "/v1/subscribers/440100000000077", headers).json()
    assert (doc["status"], doc["groupId"], doc["operatorId"]) == ("suspended", "grp-x", sim.operator_id)


def test_messages_follow_x_soracom_lang(soracom_api):
    en = _post(soracom_api, "/v1/auth", {"email": ROOT[0], "password": "nope"}, {"X-Soracom-Lang": "en"})
    ja = _post(soracom_api, "/v1/auth", {"email": ROOT[0], "password": "nope"}, {"X-Soracom-Lang": "ja"})
    assert en.json()["code"] == ja.json()["code"] == "AUM0002"
    assert en.json()["message"].isascii() and not ja.json()["message"].isascii()
    assert soracom_api.langs[-2:] == ["en", "ja"]
