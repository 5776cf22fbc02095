"""The exchange service as deployed locally: the real ``gw serve endorse-exchange`` over HTTP,
the Endorse emulator's key bucket over HTTPS, and moto's STS.

Each attack is refused with the right status and code, and neither the token nor any
credential appears in the answer or in the service's log.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC

import pytest
import requests

from tests.plugins.endorse.conftest import fetch_token


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def part(token: str, index: int) -> dict:
    piece = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(piece + "=" * (-len(piece) % 4)))


def forge(header: dict, payload: dict, signature: bytes = b"") -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}.{b64(signature)}"


def assert_nothing_leaked(server, response: requests.Response, token: str) -> None:
    assert token not in response.text
    for line in server.log:
        assert token not in line
        signature = token.split(".")[-1]
        assert len(signature) < 16 or signature not in line


def test_token_exchanged_for_role_credentials_tagged_with_the_imsi(endorse, ca, moto, base_settings, exchange_server):
    server = exchange_server(base_settings)
    token = fetch_token(endorse, ca)
    response = server.post(token)
    assert response.status_code == 200, response.text
    doc = response.json()
    assert set(doc) == {"AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration", "Region", "Imsi"}
    assert doc["Imsi"] == endorse.default_imsi and doc["Region"] == "us-east-1"
    assert doc["Expiration"].endswith("Z")
    issued = moto.lookup(doc["AccessKeyId"])
    assert issued is not None and issued.kind == "assume-role"
    assert issued.arn.endswith(f":assumed-role/endorse-device/endorse-{endorse.default_imsi}")
    identity = moto.client("sts", doc["AccessKeyId"], doc["SecretAccessKey"], doc["SessionToken"]).get_caller_identity()
    assert identity["Arn"] == issued.arn
    # one JSON log line for the request, without the token or the credentials
    records = [r for r in server.records() if r.get("path") == "/exchange"]
    assert records and records[-1]["status"] == 200 and records[-1]["imsi"] == endorse.default_imsi
    for line in server.log:
        assert doc["SecretAccessKey"] not in line and doc["SessionToken"] not in line
    assert_nothing_leaked(server, requests.Response(), token)


def test_token_accepted_from_query_form_and_bearer_and_cors(endorse, ca, base_settings, exchange_server):
    server = exchange_server(base_settings)
    # the Endorse redirect_url flow lands on GET /exchange?soracom_endorse_token=...
    r = requests.get(server.exchange_url, params={"soracom_endorse_token": fetch_token(endorse, ca)}, timeout=30)
    assert r.status_code == 200, r.text
    r = requests.post(server.exchange_url, data={"token": fetch_token(endorse, ca)}, timeout=30)
    assert r.status_code == 200, r.text
    r = requests.post(server.exchange_url, headers={"Authorization": f"Bearer {fetch_token(endorse, ca)}",
                                                    "Origin": "http://127.0.0.1:9"}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:9"
    pre = requests.options(server.exchange_url, headers={"Origin": "http://127.0.0.1:9",
                                                         "Access-Control-Request-Method": "POST"}, timeout=10)
    assert pre.status_code == 204 and "POST" in pre.headers["Access-Control-Allow-Methods"]
    other = requests.options(server.exchange_url, headers={"Origin": "https://evil.example"}, timeout=10)
    assert "Access-Control-Allow-Origin" not in other.headers


def test_redirect_flow_end_to_end(endorse, ca, base_settings, exchange_server):
    server = exchange_server(base_settings)
    endorse.authorized_redirects = (server.exchange_url,)
    first = requests.get(endorse.url + "/", params={"redirect_url": server.exchange_url}, verify=str(ca.ca_path),
                         allow_redirects=False, timeout=10)
    assert first.status_code == 302 and first.headers["Location"].startswith(server.exchange_url + "?soracom_endorse_token=")
    landed = requests.get(first.headers["Location"], timeout=30)
    assert landed.status_code == 200 and landed.json()["Imsi"] == endorse.default_imsi
    refused = requests.get(endorse.url + "/", params={"redirect_url": "https://evil.example/"}, verify=str(ca.ca_path),
                           allow_redirects=False, timeout=10)
    assert refused.status_code == 400


ATTACKS = [
    # (name, status, code)
    ("alg-none", 401, "invalid_token"),
    ("alg-none-with-signature", 401, "invalid_alg"),
    ("hs256-public-key", 401, "invalid_alg"),
    ("kid-traversal", 401, "invalid_kid"),
    ("kid-url", 401, "invalid_kid"),
    ("kid-unknown", 401, "unknown_kid"),
    ("expired", 401, "token_expired"),
    ("not-yet-valid", 401, "token_not_yet_valid"),
    ("wrong-audience", 401, "wrong_audience"),
    ("other-service", 401, "wrong_audience"),
    ("wrong-subject", 401, "wrong_subject"),
    ("wrong-signature", 401, "bad_signature"),
    ("tampered-imsi", 401, "bad_signature"),
    ("missing-jti", 401, "invalid_token"),
    ("imsi-not-allowed", 403, "sim_not_allowed"),
    ("oversized", 400, "token_too_large"),
    ("header-without-kid", 401, "invalid_kid"),
    ("garbage", 401, "invalid_token"),
]


def make_attack(name: str, endorse) -> str:
    good = endorse.mint()
    payload = part(good, 1)
    if name == "alg-none":
        return forge({"alg": "none", "kid": endorse.kid}, payload)
    if name == "alg-none-with-signature":
        return forge({"alg": "none", "kid": endorse.kid}, payload, b"x" * 32)
    if name == "hs256-public-key":
        head = {"alg": "HS256", "kid": endorse.kid, "typ": "JWT"}
        signing_input = f"{b64(json.dumps(head).encode())}.{b64(json.dumps(payload).encode())}"
        mac = hmac.new(endorse.public_key_pem(), signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64(mac)}"
    if name == "kid-traversal":
        return endorse.mint(header={"kid": "../../../etc/passwd"})
    if name == "kid-url":
        return endorse.mint(header={"kid": "https://evil.example/key.pem"})
    if name == "kid-unknown":
        return endorse.mint(header={"kid": "v1-" + "0" * 32 + "-x509.pem"})
    if name in ("expired", "not-yet-valid", "wrong-audience", "other-service", "wrong-signature"):
        return endorse.mint(mode=name)
    if name == "wrong-subject":
        return endorse.mint(claims={"sub": "soracom-funk"})
    if name == "tampered-imsi":
        payload["soracom-endorse-claim"]["imsi"] = "440109999999999"
        head, _, sig = good.split(".")
        return f"{head}.{b64(json.dumps(payload).encode())}.{sig}"
    if name == "missing-jti":
        return endorse.mint(claims={"jti": None})
    if name == "imsi-not-allowed":
        endorse.add_sim("440108888888888")
        return endorse.mint("440108888888888")
    if name == "oversized":
        return endorse.mint(claims={"padding": "A" * 5000})
    if name == "header-without-kid":
        return "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2lnbmF0dXJl"
    if name == "garbage":
        return "<script>alert(1)</script>\r\nX-Injected: 1"
    raise AssertionError(name)


@pytest.fixture
def attack_server(base_settings, exchange_server):
    return exchange_server(base_settings)


@pytest.mark.parametrize("name,status,code", ATTACKS, ids=[a[0] for a in ATTACKS])
def test_attack_refused(name, status, code, endorse, attack_server):
    token = make_attack(name, endorse)
    before = endorse.calls["public-key"]
    response = attack_server.post(token)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert set(response.json()) == {"code", "message"}
    assert_nothing_leaked(attack_server, response, token)
    if name in ("kid-traversal", "kid-url", "alg-none", "hs256-public-key"):
        assert endorse.calls["public-key"] == before  # the bad kid never went into a URL


def test_replay_refused_on_the_same_instance(endorse, ca, base_settings, exchange_server):
    server = exchange_server(base_settings)
    token = fetch_token(endorse, ca)
    assert server.post(token).status_code == 200
    again = server.post(token)
    assert again.status_code == 401 and again.json()["code"] == "token_replayed"
    assert_nothing_leaked(server, again, token)


def test_key_fetched_once_and_public_key_form_accepted(endorse, ca, base_settings, exchange_server):
    endorse.key_form = "public-key"
    server = exchange_server(base_settings)
    for _ in range(3):
        assert server.post(fetch_token(endorse, ca)).status_code == 200
    assert endorse.calls["public-key"] == 1


def test_key_store_failure_is_502(endorse, ca, base_settings, exchange_server):
    server = exchange_server(base_settings)
    endorse.inject("public-key", status=500)
    response = server.post(fetch_token(endorse, ca))
    assert response.status_code == 502 and response.json()["code"] == "key_store_error"


def test_sts_refusal_is_502(endorse, ca, base_settings, exchange_server):
    settings = {**base_settings, "role_arn": "arn:aws:iam::123456789012:role/does-not-exist",
                "sts_endpoint": "http://127.0.0.1:9"}
    server = exchange_server(settings)
    response = server.post(fetch_token(endorse, ca))
    assert response.status_code == 502 and response.json()["code"] in ("sts_unreachable", "sts_refused")


@pytest.mark.parametrize("kwargs,code", [
    ({}, "missing_token"),
    ({"data": b"{not json", "headers": {"Content-Type": "application/json"}}, "malformed_body"),
    ({"json": ["token"]}, "malformed_body"),
    ({"json": {"token": 12}}, "malformed_token"),
    ({"json": {"token": "a.b.c", "output": "s3"}}, "unknown_output"),
    ({"headers": {"Authorization": "Basic dXNlcjpwYXNz"}}, "malformed_authorization"),
    ({"data": b"\xff\xfe", "headers": {"Content-Type": "text/plain"}}, "malformed_body"),
    ({"data": b"token=a.b.c", "headers": {"Content-Type": "application/xml"}}, "unsupported_body"),
], ids=["empty", "bad-json", "json-list", "token-int", "bad-output", "basic-auth", "binary", "xml"])
def test_malformed_requests_are_400(kwargs, code, attack_server):
    response = requests.post(attack_server.exchange_url, timeout=10, **kwargs)
    assert response.status_code == 400 and response.json()["code"] == code


def test_iot_wss_output_url_verifies_with_botocore(endorse, ca, moto, base_settings, exchange_server):
    from datetime import datetime
    from urllib.parse import parse_qs, urlsplit

    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    server = exchange_server(base_settings)
    response = requests.post(server.exchange_url, params={"output": "iot-wss"},
                             json={"token": fetch_token(endorse, ca)}, timeout=30)
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["clientId"] == endorse.default_imsi and doc["expiration"].endswith("Z")
    url = urlsplit(doc["url"])
    assert url.scheme == "wss" and url.netloc == "example-ats.iot.us-east-1.amazonaws.com" and url.path == "/mqtt"
    query = parse_qs(url.query)
    assert list(parse_qs(url.query))[-1] == "X-Amz-Security-Token"  # appended after signing
    akid, _date, region, service, _ = query["X-Amz-Credential"][0].split("/")
    assert (region, service, query["X-Amz-SignedHeaders"][0]) == ("us-east-1", "iotdevicegateway", "host")
    issued = moto.lookup(akid)
    assert issued is not None and query["X-Amz-Security-Token"][0] == issued.session_token
    # independently: botocore signs the same request at the same instant with the issued secret
    when = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)

    class AtTime(SigV4QueryAuth):
        def _modify_request_before_signing(self, request):
            request.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
            super()._modify_request_before_signing(request)

    request = AWSRequest(method="GET", url=f"https://{url.netloc}/mqtt")
    AtTime(Credentials(akid, issued.secret_access_key), "iotdevicegateway", "us-east-1",
           expires=int(query["X-Amz-Expires"][0])).add_auth(request)
    assert parse_qs(urlsplit(request.url).query)["X-Amz-Signature"] == query["X-Amz-Signature"]


def test_static_page_and_unknown_paths(attack_server):
    assert requests.get(attack_server.url + "/static/..%2f__init__.py", timeout=10).status_code == 404
    assert requests.get(attack_server.url + "/nope", timeout=10).status_code == 404
    assert requests.get(attack_server.url + "/healthz", timeout=10).json() == {"status": "ok"}
    huge = requests.post(attack_server.exchange_url, data=b"x" * 70000, timeout=10)
    assert huge.status_code == 413
