"""The Endorse emulator's wire behaviour, and the verifier's key cache (TTL, single fetch)."""

from __future__ import annotations

import jwt
import pytest
import requests

from gw_plugins.endorse.verify import AUDIENCE, ExchangeError, KeyStore, Verifier


def test_get_and_post_issue_tokens_with_request_parameters(endorse, ca):
    verify = str(ca.ca_path)
    got = requests.get(endorse.url + "/", params={"nonce": "n1"}, verify=verify, timeout=10)
    posted = requests.post(endorse.url + "/", json={"nonce": "n2", "note": "x"}, verify=verify, timeout=10)
    assert got.status_code == posted.status_code == 200
    key = requests.get(f"{endorse.key_store_url}/{endorse.kid}", verify=verify, timeout=10)
    assert key.status_code == 200 and key.text.startswith("-----BEGIN CERTIFICATE-----")
    from cryptography import x509

    public = x509.load_pem_x509_certificate(key.content).public_key()
    for response, params in ((got, {"nonce": "n1"}), (posted, {"nonce": "n2", "note": "x"})):
        token = response.json()["token"]
        assert jwt.get_unverified_header(token) == {"alg": "RS256", "kid": endorse.kid}
        claims = jwt.decode(token, public, algorithms=["RS256"], audience=AUDIENCE)
        assert claims["nbf"] == claims["iat"] - 60 and claims["sub"] == "soracom-endorse"
        assert claims["soracom-endorse-claim"]["imsi"] == endorse.default_imsi
        assert claims["soracom-endorse-claim"]["requestParameters"] == params


def test_sim_choice_and_refusals(endorse, ca):
    verify = str(ca.ca_path)
    endorse.add_sim("440105555555555", imei="351111111111111")
    other = requests.get(endorse.url + "/", headers={"X-Emulator-Imsi": "440105555555555"}, verify=verify, timeout=10)
    claim = jwt.decode(other.json()["token"], options={"verify_signature": False})["soracom-endorse-claim"]
    assert claim["imsi"] == "440105555555555" and claim["imei"] == "351111111111111"
    stranger = requests.get(endorse.url + "/", headers={"X-Emulator-Imsi": "001010000000000"}, verify=verify, timeout=10)
    assert stranger.status_code == 403
    assert requests.post(endorse.url + "/", data=b"[1]", verify=verify, timeout=10).status_code == 400
    assert requests.get(f"{endorse.key_store_url}/v1-{'a' * 32}-x509.pem", verify=verify, timeout=10).status_code == 403


def test_key_cache_ttl_and_unknown_kid_memory(endorse, ca):
    now = [1000.0]
    keys = KeyStore(endorse.key_store_url, verify=str(ca.ca_path), ttl=3600, clock=lambda: now[0])
    verifier = Verifier(keys)
    verifier.verify(endorse.mint())
    verifier.verify(endorse.mint())
    assert endorse.calls["public-key"] == 1
    now[0] += 3601
    verifier.verify(endorse.mint())
    assert endorse.calls["public-key"] == 2
    unknown = endorse.mint(header={"kid": "v1-" + "b" * 32 + "-x509.pem"})
    for _ in range(3):
        with pytest.raises(ExchangeError, match="unknown"):
            verifier.verify(unknown)
    assert endorse.calls["public-key"] == 3  # an unknown kid is asked for once a minute at most
    endorse.rotate_key()
    verifier.verify(endorse.mint())  # a rotated key has a new kid: fetched at once
    assert endorse.calls["public-key"] == 4


def test_key_store_answering_a_small_or_foreign_key_is_502(endorse, ca, monkeypatch):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    foreign = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    monkeypatch.setattr(endorse, "public_key_pem", lambda form=None: foreign)
    verifier = Verifier(KeyStore(endorse.key_store_url, verify=str(ca.ca_path)))
    with pytest.raises(ExchangeError) as exc:
        verifier.verify(endorse.mint())
    assert exc.value.status == 502 and exc.value.code == "key_store_error"


def _claim(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})["soracom-endorse-claim"]


def test_form_bodies_json_labelled_as_a_form_and_no_parameters(endorse, ca):
    """docs/protocols.md section 5: a form body (``username=sora``) and JSON both land in
    ``requestParameters``; without parameters the claim has no ``requestParameters``."""
    verify = str(ca.ca_path)
    form = requests.post(endorse.url + "/", data={"username": "sora", "sessionId": "123"}, verify=verify, timeout=10)
    assert form.status_code == 200, form.text
    assert _claim(form.json()["token"])["requestParameters"] == {"username": "sora", "sessionId": "123"}
    labelled = requests.post(endorse.url + "/", data=b'{"username": "sora"}', verify=verify, timeout=10,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert _claim(labelled.json()["token"])["requestParameters"] == {"username": "sora"}
    for bare in (requests.get(endorse.url + "/", verify=verify, timeout=10),
                 requests.post(endorse.url + "/", verify=verify, timeout=10)):
        assert bare.status_code == 200 and "requestParameters" not in _claim(bare.json()["token"])
    xml = requests.post(endorse.url + "/", data=b"<a/>", headers={"Content-Type": "application/xml"}, verify=verify,
                        timeout=10)
    assert xml.status_code == 400
    token = form.json()["token"]
    assert list(jwt.get_unverified_header(token)) == ["kid", "alg"]  # as in SORACOM's sample token
    assert len(jwt.decode(token, options={"verify_signature": False})["jti"]) == 22


def _auto_post_form(page: str) -> tuple[str, dict[str, str]]:
    """(action, fields) of the first form of an HTML page, read with the stdlib's HTML parser."""
    from html.parser import HTMLParser

    found: dict = {"action": None, "fields": {}, "onload": None}

    class Form(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list) -> None:
            a = dict(attrs)
            if tag == "body":
                found["onload"] = a.get("onload")
            elif tag == "form" and found["action"] is None:
                assert (a.get("method") or "").lower() == "post"
                found["action"] = a.get("action")
            elif tag == "input" and a.get("type") == "hidden":
                found["fields"][a["name"]] = a.get("value", "")

    Form().feed(page)
    assert found["onload"] == "document.forms[0].submit()"
    return found["action"], found["fields"]


@pytest.mark.parametrize("delivery", ["query", "post"])
def test_both_redirect_deliveries_reach_the_exchange_service(endorse, ca, base_settings, exchange_server, delivery):
    server = exchange_server(base_settings)
    endorse.authorized_redirects = (server.exchange_url,)
    endorse.redirect_delivery = delivery
    first = requests.get(endorse.url + "/", params={"redirect_url": server.exchange_url, "nonce": "n"},
                         verify=str(ca.ca_path), allow_redirects=False, timeout=10)
    if delivery == "query":
        assert first.status_code == 302
        landed = requests.get(first.headers["Location"], timeout=30)  # what a browser does with a 302
    else:
        assert first.status_code == 200 and first.headers["Content-Type"].startswith("text/html")
        action, fields = _auto_post_form(first.text)
        assert action == server.exchange_url and list(fields) == ["soracom_endorse_token"]
        landed = requests.post(action, data=fields, timeout=30)  # what the page's form submits
    assert landed.status_code == 200, landed.text
    assert landed.json()["Imsi"] == endorse.default_imsi


def test_redirect_delivery_default_is_query_and_unknown_is_refused(ca):
    from gw_emulators.endorse import EndorseEmulator

    assert EndorseEmulator(ca).redirect_delivery == "query"
    with pytest.raises(ValueError, match="redirect_delivery"):
        EndorseEmulator(ca, redirect_delivery="fragment")
