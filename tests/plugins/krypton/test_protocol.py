"""The Krypton protocol client against the emulator over real HTTPS, with a virtual USIM."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
import requests

from gw_emulators.krypton import KryptonEmulator
from gw_emulators.milenage import Milenage
from gw_plugins.krypton.protocol import (
    OPERATION_PATHS,
    KeyRejected,
    KryptonClient,
    KryptonError,
    KryptonSession,
    MemorySessionStore,
    call_body,
    endpoint_for,
    fetch,
    signature,
    signed_headers,
)

from .conftest import IMSI, OPC, SET1, K, write_sim

METADATA = OPERATION_PATHS["subscriber-metadata"]


def open_emulated(path: str):
    from gw_emulators.usim import EmulatedReader
    from gw_plugins.krypton.sim import open_sim

    return open_sim("emulated", options={"sim_file": path}, readers={"emulated": EmulatedReader()})


@pytest.fixture
def client(krypton: KryptonEmulator, ca) -> KryptonClient:
    with KryptonClient(krypton.url, verify=str(ca.ca_path), timeout=3) as c:
        yield c


def test_signature_worked_example() -> None:
    ck = Milenage(K, opc=OPC).f2345(bytes.fromhex("23553cbe9637a89d218ae64dae47bf35"))[1]
    assert ck.hex() == SET1["f3"]
    # krypton-client-go leaves out an empty requestParameters (`json:"requestParameters,omitempty"`)
    assert call_body("key-0001", None) == b'{"keyId":"key-0001"}'
    body = b'{"keyId":"key-0001","requestParameters":null}'  # any exact bytes: the worked example's
    assert signature(body, "1700000000000", ck) == "OyUk0jCbl4rLa2DwxPAtvbOf3zqyr3m6hup4HjylmIw="
    headers = signed_headers(body, ck, now_ms=1700000000000)
    assert headers["x-soracom-timestamp"] == "1700000000000"
    assert headers["x-soracom-digest-algorithm"] == "SHA-256"
    assert headers["x-soracom-signature"] == "OyUk0jCbl4rLa2DwxPAtvbOf3zqyr3m6hup4HjylmIw="


def test_endpoints() -> None:
    assert endpoint_for(None) == "https://g.api.soracom.io"
    assert endpoint_for("g") == "https://g.api.soracom.io"
    assert endpoint_for("jp") == "https://api.soracom.io"
    assert endpoint_for("jp", "https://example.test/") == "https://example.test"


def test_happy_path_and_session_reuse(krypton: KryptonEmulator, client: KryptonClient, sim_file: str) -> None:
    sim = open_emulated(sim_file)
    store = MemorySessionStore()
    reply, session = fetch(client, sim, METADATA, None, store)
    assert reply.json()["imsi"] == IMSI
    assert session.imsi == IMSI and len(session.ck) == 16
    assert 3590 < session.expires_at - time.time() <= 3600
    assert (krypton.handshakes, krypton.verifies) == (1, 1)
    # second call within the hour: no handshake, signed with the stored CK
    reply, again = fetch(client, sim, OPERATION_PATHS["userdata"], None, store)
    assert reply.document() == '{"greeting": "hello"}'
    assert again is session
    assert (krypton.handshakes, krypton.verifies) == (1, 1)
    assert json.loads(Path(sim_file).read_text())["sqn"] == 1  # the SIM accepted SQN 1


def test_challenge_on_401_is_accepted(krypton: KryptonEmulator, client: KryptonClient, sim_file: str) -> None:
    krypton.challenge_status = 401
    reply, _ = fetch(client, open_emulated(sim_file), METADATA, None, MemorySessionStore())
    assert reply.json()["imsi"] == IMSI


def test_resync_when_sim_is_ahead(krypton: KryptonEmulator, client: KryptonClient, tmp_path: Path) -> None:
    path = write_sim(tmp_path / "ahead.json", sqn=5000)
    reply, _ = fetch(client, open_emulated(path), METADATA, None, MemorySessionStore())
    assert reply.json()["imsi"] == IMSI
    assert (krypton.handshakes, krypton.resyncs, krypton.verifies) == (2, 1, 1)
    assert krypton.subscribers[IMSI].sqn == 5001
    assert json.loads(Path(path).read_text())["sqn"] == 5001


def test_mac_failure_is_clear_and_nothing_stored(
    krypton: KryptonEmulator, client: KryptonClient, tmp_path: Path
) -> None:
    path = write_sim(tmp_path / "wrong.json", k=bytes(16))
    store = MemorySessionStore()
    with pytest.raises(KryptonError, match="MAC failure") as info:
        fetch(client, open_emulated(path), METADATA, None, store)
    assert "\n" not in str(info.value)
    assert store.sessions == {}
    assert krypton.verifies == 0


def test_revoked_key_triggers_exactly_one_new_handshake(
    krypton: KryptonEmulator, client: KryptonClient, sim_file: str
) -> None:
    sim = open_emulated(sim_file)
    store = MemorySessionStore()
    _, first = fetch(client, sim, METADATA, None, store)
    krypton.revoke(first.key_id)
    reply, second = fetch(client, sim, METADATA, None, store)
    assert reply.json()["imsi"] == IMSI
    assert second.key_id != first.key_id
    assert store.load(IMSI) is second
    assert krypton.handshakes == 2
    assert krypton.calls["soracom/air/subscriber_metadata"] == 3  # ok, refused, retried


def test_expired_keys_also_renew(krypton: KryptonEmulator, client: KryptonClient, sim_file: str) -> None:
    sim = open_emulated(sim_file)
    store = MemorySessionStore()
    fetch(client, sim, METADATA, None, store)
    krypton.expire_all()
    fetch(client, sim, METADATA, None, store)
    assert krypton.handshakes == 2


def test_fresh_key_refused_is_not_retried_again(
    krypton: KryptonEmulator, client: KryptonClient, sim_file: str
) -> None:
    store = MemorySessionStore()
    krypton.inject("soracom/air/subscriber_metadata", status=403, count=5,
                   body=json.dumps({"code": "KRY0403", "message": "forbidden"}))
    with pytest.raises(KeyRejected, match=r"HTTP 403 KRY0403: forbidden"):
        fetch(client, open_emulated(sim_file), METADATA, None, store)
    assert krypton.handshakes == 1
    assert krypton.calls["soracom/air/subscriber_metadata"] == 1
    # the verified session was stored: the next run reuses it (then renews once after the 4xx)
    assert store.load(IMSI) is not None


def test_unknown_subscriber(krypton: KryptonEmulator, client: KryptonClient, tmp_path: Path) -> None:
    path = write_sim(tmp_path / "other.json", imsi="440109999999999")
    with pytest.raises(KryptonError, match=r"keys API refused the SIM \(HTTP 404 KRY0404: no such subscriber\)"):
        fetch(client, open_emulated(path), METADATA, None, MemorySessionStore())


def test_server_error_on_keys(krypton: KryptonEmulator, client: KryptonClient, sim_file: str) -> None:
    krypton.inject("keys", status=500)
    store = MemorySessionStore()
    with pytest.raises(KryptonError, match=r"HTTP 500 FAULT500: injected fault"):
        fetch(client, open_emulated(sim_file), METADATA, None, store)
    assert store.sessions == {}


def test_server_error_on_operation(krypton: KryptonEmulator, client: KryptonClient, sim_file: str) -> None:
    krypton.inject("soracom/air/subscriber_metadata", status=503, body="<html>down</html>", content_type="text/html")
    with pytest.raises(KryptonError, match=r"subscriber_metadata failed \(HTTP 503\)$"):
        fetch(client, open_emulated(sim_file), METADATA, None, MemorySessionStore())


def test_verify_failure_stores_nothing(krypton: KryptonEmulator, client: KryptonClient, sim_file: str) -> None:
    krypton.inject("verify", status=401, body=json.dumps({"code": "KRY0007", "message": "verification failed"}))
    store = MemorySessionStore()
    with pytest.raises(KryptonError, match="refused the SIM's response"):
        fetch(client, open_emulated(sim_file), METADATA, None, store)
    assert store.sessions == {}


def test_garbage_json(krypton: KryptonEmulator, client: KryptonClient, sim_file: str) -> None:
    krypton.inject("keys", status=200, body="{not json")
    with pytest.raises(KryptonError, match=r"keys API returned an unreadable answer \(not JSON\)"):
        fetch(client, open_emulated(sim_file), METADATA, None, MemorySessionStore())


def test_bad_challenge_fields(krypton: KryptonEmulator, client: KryptonClient, sim_file: str) -> None:
    krypton.inject("keys", status=200, body=json.dumps({"keyId": "k1", "rand": "AAAA", "autn": "AAAA"}))
    with pytest.raises(KryptonError, match="invalid rand"):
        fetch(client, open_emulated(sim_file), METADATA, None, MemorySessionStore())


def test_timeout(krypton: KryptonEmulator, ca, sim_file: str) -> None:
    krypton.inject("keys", status=None, delay=2.5)
    with KryptonClient(krypton.url, verify=str(ca.ca_path), timeout=0.5) as slow:
        started = time.monotonic()
        with pytest.raises(KryptonError, match=r"no answer from 127\.0\.0\.1:\d+ within 0\.5 s"):
            fetch(slow, open_emulated(sim_file), METADATA, None, MemorySessionStore())
    assert time.monotonic() - started < 2.4


def test_untrusted_tls(krypton: KryptonEmulator, sim_file: str) -> None:
    with KryptonClient(krypton.url, verify=True, timeout=3) as c:
        with pytest.raises(KryptonError, match="TLS verification of 127.0.0.1"):
            fetch(c, open_emulated(sim_file), METADATA, None, MemorySessionStore())


def test_connection_refused(sim_file: str) -> None:
    with KryptonClient("https://127.0.0.1:9", timeout=2) as c:
        with pytest.raises(KryptonError, match=r"cannot connect to 127\.0\.0\.1:9"):
            fetch(c, open_emulated(sim_file), METADATA, None, MemorySessionStore())


def test_emulator_checks_signature_and_timestamp(krypton: KryptonEmulator, ca, sim_file: str, client) -> None:
    session = client.handshake(open_emulated(sim_file))
    url = krypton.url + METADATA
    body = call_body(session.key_id, None)
    verify = str(ca.ca_path)
    ok = requests.post(url, data=body, headers=signed_headers(body, session.ck), verify=verify, timeout=5)
    assert ok.status_code == 200
    tampered = requests.post(url, data=body + b" ", headers=signed_headers(body, session.ck), verify=verify, timeout=5)
    assert tampered.status_code == 401 and tampered.json()["code"] == "KRY0015"
    stale = signed_headers(body, session.ck, now_ms=int(time.time() * 1000) - 6 * 60 * 1000)
    old = requests.post(url, data=body, headers=stale, verify=verify, timeout=5)
    assert old.status_code == 401 and old.json()["code"] == "KRY0012"
    wrong_key = requests.post(url, data=body, headers=signed_headers(body, bytes(16)), verify=verify, timeout=5)
    assert wrong_key.status_code == 401


def test_emulator_verify_accepts_xres(krypton: KryptonEmulator, ca) -> None:
    verify = str(ca.ca_path)
    challenge = requests.post(krypton.url + "/v1/keys", json={"imsi": IMSI}, verify=verify, timeout=5).json()
    rand = base64.b64decode(challenge["rand"])
    res = Milenage(K, opc=OPC).f2345(rand)[0]
    bad = requests.post(f"{krypton.url}/v1/keys/{challenge['keyId']}/verify",
                        json={"xres": base64.b64encode(bytes(8)).decode()}, verify=verify, timeout=5)
    assert bad.status_code == 401
    good = requests.post(f"{krypton.url}/v1/keys/{challenge['keyId']}/verify",
                         json={"xres": base64.b64encode(res).decode()}, verify=verify, timeout=5)
    assert good.status_code == 200


def test_session_state_round_trip() -> None:
    session = KryptonSession(IMSI, "key-1", bytes(range(16)), "https://x", time.time() + 100)
    assert KryptonSession.from_state(json.loads(json.dumps(session.to_state()))) == session
    assert KryptonSession.from_state({**session.to_state(), "expiresAt": time.time() - 1}) is None
    assert KryptonSession.from_state({"imsi": IMSI}) is None
