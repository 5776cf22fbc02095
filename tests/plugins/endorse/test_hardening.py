"""Hardening of the Endorse exchange (issue 15: findings 2, 3, 5 and 6), each through real HTTP(S)
on 127.0.0.1:

* 15.2 - the live SIM check and the key store never follow a redirect: a 302/307 (the
  emulators' fault injection) to another host (a tripwire listener) is one 502 naming that
  host, and the tripwire receives nothing;
* 15.3 - key-store fetches for kids not seen before are budgeted, the maps are bounded, and a
  genuine token verifies during a spray of random kids;
* 15.5 - stalled clients hold no thread, are closed at the deadline, the body limit is checked
  before the body is read, and hang-ups never print a traceback;
* 15.6 - a jti is recorded only once the SIM is authorized.
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest
import requests

from gw_emulators.soracom_api import SoracomApiEmulator
from gw_plugins.endorse.server import make_server
from gw_plugins.endorse.service import ExchangeService
from gw_plugins.endorse.settings import build
from gw_plugins.endorse.verify import ExchangeError, KeyStore, Verifier
from tests.plugins.endorse.conftest import SERVICE_KEYS, fetch_token
from tests.plugins.endorse.test_fleet_and_sim_check import make_table


# -- parts ------------------------------------------------------------------------------------
def serve(service: ExchangeService, **options: Any) -> Any:
    httpd = make_server(service, "127.0.0.1", 0, **options)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    return httpd


def stop(httpd: Any) -> None:
    httpd.shutdown()
    httpd.server_close()


# -- 15.2: no redirect followed -------------------------------------------------------------------
POLICY = "gw does not follow redirects for requests that carry secrets or decide trust"


@pytest.mark.parametrize("status", [302, 307])
@pytest.mark.parametrize("scheme", ["https", "http"])
def test_key_store_redirect_is_refused_and_its_target_gets_nothing(endorse, ca, tripwire, status, scheme):
    endorse.inject("public-key", status=status, location=tripwire.url(scheme, "/soracom-public-keys/" + endorse.kid))
    verifier = Verifier(KeyStore(endorse.key_store_url, verify=str(ca.ca_path)))
    with pytest.raises(ExchangeError) as refused:
        verifier.verify(endorse.mint())
    assert endorse.calls["public-key"] == 1  # the key store was asked ...
    assert tripwire.contacts() == []  # ... and where it pointed was not
    assert refused.value.status == 502 and refused.value.code == "key_store_redirect"
    message = refused.value.message
    assert f"answered {status}, a redirect to {scheme}://127.0.0.1:{tripwire.port}" in message and POLICY in message


def test_key_store_is_https_only(endorse, ca):
    with pytest.raises(ValueError, match="https"):
        KeyStore(endorse.key_store_url.replace("https://", "http://"))
    from gw_plugins.endorse.client import check_endorse

    with pytest.raises(ValueError, match="key_store_url must be an https URL"):
        check_endorse({"key_store_url": "http://127.0.0.1:9/soracom-public-keys"})


@pytest.mark.parametrize("status", [302, 307])
def test_sim_check_redirect_is_refused_and_the_api_key_goes_nowhere_else(endorse, ca, base_settings, tripwire, status,
                                                                         monkeypatch):
    for key, value in SERVICE_KEYS.items():
        monkeypatch.setenv(key, value)
    settings = {k: v for k, v in base_settings.items() if k != "allowed_imsis"} | {"soracom_profile": "sora"}
    with SoracomApiEmulator(ca) as api:
        api.add_subscriber(endorse.default_imsi, operator_id="OP0012345678")
        api.inject("subscriber", status=status, location=tripwire.url("https", f"/v1/subscribers/{endorse.default_imsi}"))
        session = SimpleNamespace(api_key="api-key-not-for-others", token="token-not-for-others", endpoint=api.url)
        log: list[str] = []
        service = ExchangeService(build(settings, "test"), soracom_session=lambda refresh: session, log=log.append)
        httpd = serve(service)
        try:
            response = requests.post(httpd.url + "/exchange", json={"token": fetch_token(endorse, ca)}, timeout=30)
        finally:
            stop(httpd)
        assert api.calls["subscriber"] == 1
        api_url = api.url
    assert tripwire.contacts() == []
    assert response.status_code == 502 and response.json()["code"] == "soracom_redirect"
    message = response.json()["message"]
    assert message.startswith(f"the SORACOM API (SIM check): {api_url}/ answered {status}, ")
    assert f"a redirect to https://127.0.0.1:{tripwire.port}" in message and POLICY in message
    assert endorse.default_imsi not in message  # the API path (with the IMSI) is not named
    assert "not-for-others" not in response.text and not any("not-for-others" in line for line in log)


# -- 15.3: the kid spray ------------------------------------------------------------------------------
def random_kid() -> str:
    return f"v1-{secrets.token_hex(16)}-x509.pem"


def test_400_random_kids_cost_at_most_the_budget_and_a_genuine_token_still_verifies(endorse, ca):
    now = [1000.0]
    keys = KeyStore(endorse.key_store_url, verify=str(ca.ca_path), fetch_budget=10, fetch_window=60,
                    clock=lambda: now[0])
    verifier = Verifier(keys)
    assert verifier.verify(endorse.mint()).imsi == endorse.default_imsi  # the genuine kid: 1 fetch
    spray = [endorse.mint(header={"kid": random_kid()}) for _ in range(400)]
    outcomes: list[str] = []
    genuine: list[str] = []
    lock = threading.Lock()

    def attacker(tokens: list[str]) -> None:
        for token in tokens:
            try:
                verifier.verify(token)
                code = "verified"
            except ExchangeError as exc:
                code = exc.code
            with lock:
                outcomes.append(code)

    def device() -> None:
        for _ in range(20):
            claims = verifier.verify(endorse.mint())
            with lock:
                genuine.append(claims.imsi)

    threads = [threading.Thread(target=attacker, args=(spray[i::8],)) for i in range(8)]
    threads.append(threading.Thread(target=device))
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(outcomes) == 400 and "verified" not in outcomes
    assert set(outcomes) == {"unknown_kid", "key_fetch_budget"}
    assert endorse.calls["public-key"] <= 1 + 10  # the genuine kid, then the budget
    assert genuine == [endorse.default_imsi] * 20
    # kids not matching the published format are refused before anything is fetched
    before = endorse.calls["public-key"]
    for kid in ("v1-" + "A" * 32 + "-x509.pem", "../x", "v1-" + "a" * 31 + "-x509.pem"):
        with pytest.raises(ExchangeError, match="key id"):
            verifier.verify(endorse.mint(header={"kid": kid}))
    assert endorse.calls["public-key"] == before
    # the budget comes back with the window; a rotated (new, genuine) kid is then fetched
    now[0] += 61
    endorse.rotate_key()
    assert verifier.verify(endorse.mint()).imsi == endorse.default_imsi


def test_key_maps_are_bounded(endorse, ca):
    keys = KeyStore(endorse.key_store_url, verify=str(ca.ca_path), fetch_budget=10_000, max_keys=2, max_missing=50)
    verifier = Verifier(keys)
    for _ in range(200):
        with pytest.raises(ExchangeError, match="unknown"):
            verifier.verify(endorse.mint(header={"kid": random_kid()}))
    for _ in range(4):
        endorse.rotate_key()
        verifier.verify(endorse.mint())
    assert len(keys._missing) <= 50 and len(keys._keys) <= 2 and not keys._pending
    verifier.verify(endorse.mint())  # the newest key stayed
    assert endorse.calls["public-key"] == 204


def test_spray_through_gw_serve(endorse, ca, base_settings, exchange_server):
    server = exchange_server({**base_settings, "key_fetches_per_minute": 5})
    assert server.post(fetch_token(endorse, ca)).status_code == 200
    spray = [endorse.mint(header={"kid": random_kid()}) for _ in range(400)]
    statuses: list[int] = []
    lock = threading.Lock()

    def attacker(tokens: list[str]) -> None:
        with requests.Session() as http:
            for token in tokens:
                status = http.post(server.exchange_url, json={"token": token}, timeout=30).status_code
                with lock:
                    statuses.append(status)

    threads = [threading.Thread(target=attacker, args=(spray[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    genuine = [server.post(endorse.mint()).status_code for _ in range(5)]
    for t in threads:
        t.join(120)
    assert genuine == [200] * 5
    assert sorted(set(statuses)) == [401, 503] and len(statuses) == 400
    assert endorse.calls["public-key"] <= 1 + 5


# -- 15.5: the local server under stalled and vanishing clients ------------------------------------
def test_stalled_connections_hold_no_thread_and_are_closed_at_the_deadline(endorse, ca, base_settings, local_exchange):
    exchange = local_exchange(base_settings)  # the default server, only to build the service
    httpd = serve(exchange.service, timeout=2.0, workers=4)
    url = httpd.url + "/exchange"
    try:
        assert requests.post(url, json={"token": endorse.mint()}, timeout=30).status_code == 200  # warm
        threads_before = threading.active_count()
        stalled: list[socket.socket] = []
        for i in range(100):
            s = socket.create_connection(("127.0.0.1", httpd.server_address[1]))
            if i % 3 == 1:
                s.sendall(b"POST /exchange HTTP/1.1\r\nHost: x\r\n")  # a head that never ends
            elif i % 3 == 2:
                s.sendall(b"POST /exchange HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Content-Length: 65536\r\n\r\n")  # a body that never comes
            stalled.append(s)
        opened = time.monotonic()
        time.sleep(0.2)
        started = time.monotonic()
        answer = requests.post(url, json={"token": endorse.mint()}, timeout=5)
        assert answer.status_code == 200 and time.monotonic() - started < 1.0
        assert requests.get(httpd.url + "/healthz", timeout=5).json() == {"status": "ok"}
        assert threading.active_count() <= threads_before + 4  # at most the pool, not one per client
        closed_after: list[float] = []
        for s in stalled:
            s.settimeout(max(0.1, opened + 4.0 - time.monotonic()))
            try:
                while s.recv(4096):
                    pass
            except ConnectionResetError:
                pass
            except TimeoutError:
                pytest.fail("a stalled connection was still open 4 s after it stalled (timeout 2 s)")
            closed_after.append(time.monotonic() - opened)
            s.close()
        assert max(closed_after) < 3.5
    finally:
        stop(httpd)


def test_body_limit_is_checked_before_the_body_is_read(base_settings, local_exchange):
    exchange = local_exchange(base_settings)
    httpd = serve(exchange.service, timeout=5.0)
    try:
        with socket.create_connection(("127.0.0.1", httpd.server_address[1]), timeout=3) as s:
            started = time.monotonic()
            s.sendall(b"POST /exchange HTTP/1.1\r\nHost: x\r\nContent-Length: 65537\r\n\r\n")
            answer = s.recv(4096)
            assert answer.startswith(b"HTTP/1.1 413 ") and b"body_too_large" in answer
            assert time.monotonic() - started < 1.0  # answered at once, not after waiting for a body
        with socket.create_connection(("127.0.0.1", httpd.server_address[1]), timeout=3) as s:
            s.sendall(b"POST /exchange HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            assert s.recv(4096).startswith(b"HTTP/1.1 411 ")
    finally:
        stop(httpd)


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset, as a client that vanishes does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()


def test_client_hang_ups_never_print_a_traceback(endorse, ca, base_settings, exchange_server):
    server = exchange_server(base_settings)
    port = int(server.url.rsplit(":", 1)[1])
    token = fetch_token(endorse, ca)
    request = (f"POST /exchange HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(token) + 13}\r\n\r\n").encode() + json.dumps({"token": token}).encode()
    for cut in (0, 10, request.index(b"\r\n\r\n") + 4, len(request) - 5, len(request)):
        for hang_up in (_reset, socket.socket.close):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(request[:cut])
            hang_up(s)
    s = socket.create_connection(("127.0.0.1", port))  # a request whose answer nobody reads
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 50)
    _reset(s)
    time.sleep(1.0)
    after = server.post(fetch_token(endorse, ca))
    assert after.status_code == 200, after.text
    server.stop()
    time.sleep(0.2)
    assert server.log, "the service logged nothing"
    for line in server.log:
        assert line.startswith("{") and "Traceback" not in line, line


# -- 15.6: replay recorded only after authorization --------------------------------------------------
DISALLOWED = "440109999999999"


def test_tokens_of_a_disallowed_sim_do_not_fill_the_memory_replay_store(endorse, ca, base_settings, local_exchange):
    endorse.add_sim(DISALLOWED)
    exchange = local_exchange(base_settings)
    for _ in range(20):
        refused = exchange.post(fetch_token(endorse, ca, DISALLOWED))
        assert refused.status_code == 403 and refused.json()["code"] == "sim_not_allowed"
    assert len(exchange.service.replay) == 0
    token = fetch_token(endorse, ca)
    assert exchange.post(token).status_code == 200 and len(exchange.service.replay) == 1
    assert exchange.post(token).json()["code"] == "token_replayed"


def test_tokens_of_a_disallowed_sim_do_not_fill_the_dynamodb_replay_store(endorse, ca, moto, base_settings,
                                                                         exchange_server):
    endorse.add_sim(DISALLOWED)
    table = make_table(moto)
    server = exchange_server({**base_settings, "replay_store": f"dynamodb:{table}", "dynamodb_endpoint": moto.url})
    for _ in range(5):
        assert server.post(fetch_token(endorse, ca, DISALLOWED)).status_code == 403
    assert moto.client("dynamodb").scan(TableName=table)["Count"] == 0
    assert server.post(fetch_token(endorse, ca)).status_code == 200
    assert moto.client("dynamodb").scan(TableName=table)["Count"] == 1


def test_tokens_of_a_sim_the_live_check_refuses_are_not_recorded(endorse, ca, base_settings, monkeypatch):
    for key, value in SERVICE_KEYS.items():
        monkeypatch.setenv(key, value)
    endorse.add_sim(DISALLOWED)
    with SoracomApiEmulator(ca) as api:
        api.add_auth_key("keyId-check", "secret-auth-key-value", "OP0012345678")
        api.add_subscriber(DISALLOWED, status="suspended", operator_id="OP0012345678")
        signed_in = requests.post(api.url + "/v1/auth", json={"authKeyId": "keyId-check",
                                                               "authKey": "secret-auth-key-value"},
                                  verify=str(ca.ca_path), timeout=10).json()
        session = SimpleNamespace(api_key=signed_in["apiKey"], token=signed_in["token"], endpoint=api.url)
        settings = {k: v for k, v in base_settings.items() if k != "allowed_imsis"} | {"soracom_profile": "sora"}
        service = ExchangeService(build(settings, "test"), soracom_session=lambda refresh: session,
                                  log=lambda line: None)
        httpd = serve(service)
        try:
            for _ in range(5):
                refused = requests.post(httpd.url + "/exchange", json={"token": fetch_token(endorse, ca, DISALLOWED)},
                                        timeout=30)
                assert refused.status_code == 403 and refused.json()["code"] == "sim_inactive"
        finally:
            stop(httpd)
    assert len(service.replay) == 0  # type: ignore[arg-type]
