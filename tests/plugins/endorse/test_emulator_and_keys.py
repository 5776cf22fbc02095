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
