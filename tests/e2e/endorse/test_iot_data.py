"""The AWS IoT MQTT-over-WebSocket emulator (gw_emulators.iot_data) against real clients.

A good presigned URL gives paho-mqtt (transport="websockets", TLS with the test CA) a
working MQTT session bridged to a real mosquitto; every bad URL is refused with HTTP
403 before anything reaches the broker (checked in mosquitto's own log).
"""

from __future__ import annotations

import os
import socket
import ssl
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gw_emulators.iot_data import (
    IotDataEmulator,
    Refused,
    start_iot_stack,
    verify_presigned,
)
from tests.browser import iot_fixtures as fx
from tests.browser.iot_fixtures import (
    Clock,
    Creds,
    MqttPeer,
    assume_role,
    presign,
    require_mosquitto,
)

REGION = "us-east-1"
# fixtures shared with the browser test
mosquitto = fx.mosquitto
clock = fx.clock
temp_creds = fx.temp_creds


@pytest.fixture
def iot(ca: Any, moto: Any, mosquitto: Any, clock: Clock) -> Iterator[IotDataEmulator]:
    with IotDataEmulator(ca, moto.lookup, mosquitto.address, region=REGION, clock=clock) as emulator:
        yield emulator


def _tls(ca: Any) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca.ca_path))


def _handshake(url: str, ca: Any, port: int, *, host: str | None = None,
               subprotocols: list[str] | None = None) -> tuple[int, str]:
    """Open a WebSocket to the emulator on ``port``, whatever host ``url`` names; the Host
    header is ``host``, by default ``127.0.0.1:<port>``.

    Returns (101, "") on success, else the refusal's (status, body)."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    uri = url.replace(url.split("/")[2], host or f"127.0.0.1:{port}", 1)
    try:
        with connect(uri, sock=sock, ssl=_tls(ca), server_hostname="localhost", open_timeout=10,
                     subprotocols=_subprotocols(["mqtt"] if subprotocols is None else subprotocols)):
            return 101, ""
    except InvalidStatus as refused:
        return refused.response.status_code, bytes(refused.response.body).decode()


def _subprotocols(names: list[str]) -> list[Any]:
    from websockets.typing import Subprotocol

    return [Subprotocol(name) for name in names]


def _ws_peer(url: str, ca: Any, port: int, client_id: str) -> MqttPeer:
    peer = MqttPeer(client_id, transport="websockets")
    peer.client.tls_set(ca_certs=str(ca.ca_path))
    peer.client.ws_set_options(path=url[url.index("/mqtt"):])
    return peer.start("127.0.0.1", port)


# -- a good URL: a real MQTT session through the bridge ----------------------------------
def test_good_url_bridges_connect_subscribe_publish(ca, moto, mosquitto, iot, temp_creds):
    client_id = f"ws-{uuid.uuid4().hex[:8]}"
    url = presign(temp_creds, iot.endpoint, REGION)
    topic = f"chat/{uuid.uuid4().hex[:8]}"

    ws = _ws_peer(url, ca, iot.port, client_id)
    direct = MqttPeer(f"tcp-{uuid.uuid4().hex[:8]}").start(*mosquitto.address)
    try:
        ws.subscribe(topic)
        direct.subscribe(topic)
        assert mosquitto.wait_for_log(f"as {client_id}"), "mosquitto never saw the bridged client"

        direct.client.publish(topic, b"from the broker side", qos=1)
        assert ws.wait_for(b"from the broker side")[0] == topic

        big = os.urandom(200_000)  # spans many WebSocket frames and TCP reads: byte for byte
        ws.client.publish(topic, big, qos=1)
        assert direct.wait_for(big)[1] == big
        assert ws.wait_for(big)[1] == big
    finally:
        ws.stop()
        direct.stop()
    assert iot.calls["accepted"] == 1 and iot.calls["bridged"] == 1
    assert iot.refusals() == 0
    assert iot.bytes_to_broker > 200_000 and iot.bytes_to_client > 200_000


def test_long_term_keys_without_token_are_accepted(ca, moto, iot):
    akid, secret = moto.create_user(f"iot-longterm-{uuid.uuid4().hex[:8]}")
    url = presign(Creds(akid, secret), iot.endpoint, REGION)
    assert _handshake(url, ca, iot.port) == (101, "")
    assert iot.calls["accepted"] == 1 and iot.refusals() == 0


# -- refusals: HTTP 403, nothing bridged ----------------------------------------------------
def _flip_signature(url: str) -> str:
    head, sig = url.split("X-Amz-Signature=", 1)
    value, sep, rest = sig.partition("&")
    flipped = value[:-1] + ("0" if value[-1] != "0" else "1")
    return f"{head}X-Amz-Signature={flipped}{sep}{rest}"


def _drop_token(url: str) -> str:
    return url[: url.index("&X-Amz-Security-Token=")]


REFUSALS = {
    "bad signature": (lambda c, e, m: _flip_signature(presign(c, e)), "signature"),
    "wrong secret": (lambda c, e, m: presign(Creds(c.access_key_id, "x" * 40, c.session_token), e), "signature"),
    "missing security token": (lambda c, e, m: _drop_token(presign(c, e)), "token-missing"),
    "another session's token": (
        lambda c, e, m: presign(Creds(c.access_key_id, c.secret_access_key,
                                      assume_role(m, uuid.uuid4().hex[:10]).session_token), e),
        "token-mismatch"),
    "expired URL": (lambda c, e, m: presign(c, e, now=datetime.now(UTC) - timedelta(seconds=400)), "expired"),
    "URL dated in the future": (lambda c, e, m: presign(c, e, now=datetime.now(UTC) + timedelta(minutes=10)),
                                "not-yet-valid"),
    "signed for another service": (lambda c, e, m: presign(c, e, service="iot"), "scope"),
    "signed for another region": (lambda c, e, m: presign(c, e, "eu-west-1"), "scope"),
    "unknown access key": (lambda c, e, m: presign(Creds("ASIA" + "Z" * 16, "s" * 40, "t"), e), "unknown-key"),
    "another path": (lambda c, e, m: presign(c, e, path="/other"), "path"),
    "signed for another host": (lambda c, e, m: presign(c, "a1b2c3-ats.iot.us-east-1.amazonaws.com"), "signature"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_bad_url_is_refused_with_403_and_nothing_bridged(case, ca, moto, mosquitto, iot, temp_creds):
    make, reason = REFUSALS[case]
    url = make(temp_creds, iot.endpoint, moto)
    connections_before = len(mosquitto.lines("New connection from"))

    status, body = _handshake(url, ca, iot.port)

    assert status == 403, body
    assert iot.calls[f"refused:{reason}"] == 1, dict(iot.calls)
    assert iot.calls["accepted"] == 0 and iot.calls["bridged"] == 0 and iot.bytes_to_broker == 0
    assert len(mosquitto.lines("New connection from")) == connections_before
    for secret in (temp_creds.secret_access_key, temp_creds.session_token):
        assert secret not in body


def test_wrong_host_header_is_refused(ca, iot, temp_creds):
    """Signed for the real AWS endpoint and sent with its Host: this emulator is not that host."""
    host = "a1b2c3-ats.iot.us-east-1.amazonaws.com"
    url = presign(temp_creds, host)
    assert _handshake(url, ca, iot.port, host=host)[0] == 403
    assert iot.calls["refused:host"] == 1 and iot.calls["bridged"] == 0


def test_expiry_follows_the_injected_clock(ca, iot, clock, temp_creds):
    url = presign(temp_creds, iot.endpoint, expires=60)
    assert _handshake(url, ca, iot.port)[0] == 101
    clock.advance(seconds=61)
    assert _handshake(url, ca, iot.port)[0] == 403
    assert iot.calls["refused:expired"] == 1


def test_expired_credentials_are_refused_even_with_a_live_url(ca, iot, clock, temp_creds):
    clock.advance(hours=2)  # moto's AssumeRole credentials last one hour
    url = presign(temp_creds, iot.endpoint, now=datetime.fromtimestamp(clock(), UTC))
    assert _handshake(url, ca, iot.port)[0] == 403
    assert iot.calls["refused:credentials-expired"] == 1


def test_the_mqtt_subprotocol_is_required(ca, iot, temp_creds):
    url = presign(temp_creds, iot.endpoint)
    assert _handshake(url, ca, iot.port, subprotocols=[])[0] == 403
    assert iot.calls["refused:subprotocol"] == 1 and iot.calls["bridged"] == 0


def test_injected_faults_hit_the_next_handshakes(ca, iot, temp_creds):
    """The WebSocket emulator shares the emulators' base: status, delay, garbage and drop faults
    on the route ``upgrade`` hit the next handshakes, then a good URL connects again."""
    import time

    url = presign(temp_creds, iot.endpoint)
    iot.inject("upgrade", status=503)
    assert _handshake(url, ca, iot.port)[0] == 503
    iot.inject("upgrade", garbage=True, status=502)
    status, body = _handshake(url, ca, iot.port)
    assert status == 502 and "not what you expected" in body
    iot.inject("upgrade", drop=True)
    with pytest.raises(Exception) as dropped:  # the connection closes during the opening handshake
        _handshake(url, ca, iot.port)
    assert not isinstance(dropped.value, AssertionError)
    iot.inject("upgrade", delay=0.5, status=429)
    started = time.monotonic()
    assert _handshake(url, ca, iot.port)[0] == 429 and time.monotonic() - started >= 0.5
    assert iot.calls["fault"] == 4 and iot.calls["bridged"] == 0
    assert _handshake(url, ca, iot.port)[0] == 101


def test_an_injected_redirect_carries_its_location(ca, iot, temp_creds):
    """(websockets' own client would follow it: this reads the raw answer.)"""
    import requests

    iot.inject("upgrade", status=307, location="http://127.0.0.1:9/mqtt")
    url = presign(temp_creds, iot.endpoint)
    response = requests.get(url.replace(url.split("/")[2], f"127.0.0.1:{iot.port}", 1).replace("wss://", "https://"),
                            headers={"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                                     "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": "mqtt"},
                            verify=str(ca.ca_path), allow_redirects=False, timeout=10)
    assert response.status_code == 307 and response.headers["Location"] == "http://127.0.0.1:9/mqtt"
    assert iot.calls["fault"] == 1 and iot.calls["bridged"] == 0


def test_paho_with_a_bad_url_gets_no_session(ca, mosquitto, iot, temp_creds):
    peer = MqttPeer(f"ws-{uuid.uuid4().hex[:8]}", transport="websockets")
    peer.client.tls_set(ca_certs=str(ca.ca_path))
    url = _flip_signature(presign(temp_creds, iot.endpoint))
    peer.client.ws_set_options(path=url[url.index("/mqtt"):])
    with pytest.raises(Exception, match="(?i)websocket|handshake|403"):
        peer.client.connect("127.0.0.1", iot.port)
    assert iot.calls["refused:signature"] == 1 and iot.calls["bridged"] == 0


# -- the bridge's edges ------------------------------------------------------------------
def test_broker_down_closes_the_websocket(ca, moto, clock, temp_creds):
    from websockets.sync.client import connect

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    with IotDataEmulator(ca, moto.lookup, ("127.0.0.1", dead), clock=clock) as emulator:
        url = presign(temp_creds, emulator.endpoint)
        with connect(url, ssl=_tls(ca), subprotocols=_subprotocols(["mqtt"]), open_timeout=10) as ws:
            from websockets.exceptions import ConnectionClosed

            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
        assert emulator.calls["broker-unreachable"] == 1


def test_text_frames_are_refused(ca, mosquitto, iot, temp_creds):
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    with connect(presign(temp_creds, iot.endpoint), ssl=_tls(ca), subprotocols=_subprotocols(["mqtt"]),
                 open_timeout=10) as ws:
        ws.send("not mqtt")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003
    assert iot.bytes_to_broker == 0


def test_verify_presigned_names_the_reason_without_secrets(temp_creds, moto):
    url = presign(temp_creds, "127.0.0.1:4443")
    target = url[url.index("/mqtt"):]
    now = datetime.now(UTC).timestamp()
    assert verify_presigned(target, "127.0.0.1:4443", lookup=moto.lookup, region=REGION, now=now) \
        == temp_creds.access_key_id
    with pytest.raises(Refused) as refused:
        verify_presigned(target + "&X-Amz-Date=20200101T000000Z", "127.0.0.1:4443", lookup=moto.lookup,
                         region=REGION, now=now)
    assert refused.value.reason == "malformed"
    with pytest.raises(Refused) as refused:
        verify_presigned(target, "127.0.0.1:4444", lookup=moto.lookup, region=REGION, now=now)
    assert refused.value.reason == "signature"
    assert temp_creds.secret_access_key not in str(refused.value)


def test_start_iot_stack_starts_and_stops_both(ca, moto, tmp_path, temp_creds):
    require_mosquitto()
    stack = start_iot_stack(ca, moto, directory=tmp_path / "mq")
    try:
        assert stack.url == f"wss://127.0.0.1:{stack.emulator.port}/mqtt"
        assert stack.endpoint == f"127.0.0.1:{stack.emulator.port}"
        peer = _ws_peer(presign(temp_creds, stack.endpoint), ca, stack.emulator.port, "stack-check")
        peer.stop()
        assert (tmp_path / "mq" / "mosquitto.conf").read_text().count("127.0.0.1") == 1
        assert oct((tmp_path / "mq").stat().st_mode & 0o777) == "0o700"
    finally:
        stack.stop()
    assert stack.broker.process.poll() is not None
    with pytest.raises(OSError):
        socket.create_connection(stack.broker.address, timeout=2).close()


# -- the verifier alone: any change to a signed part is refused ------------------------------
_STATIC = Creds("ASIAEXAMPLEEXAMPLE12", "s3cr3t/" + "k" * 33, "token+/=" + "t" * 40)
_HOST = "127.0.0.1:8883"


def _static_lookup(akid: str) -> Any:
    return _STATIC if akid == _STATIC.access_key_id else None


def _target(url: str) -> str:
    return url[url.index("/mqtt"):]


def test_extra_query_parameters_are_covered_by_the_signature():
    now = datetime.now(UTC)
    url = presign(_STATIC, _HOST, now=now, path="/mqtt?room=a%20b&x=1")
    stamp = now.timestamp()
    assert verify_presigned(_target(url), _HOST, lookup=_static_lookup, region=REGION, now=stamp) \
        == _STATIC.access_key_id
    with pytest.raises(Refused) as refused:
        verify_presigned(_target(url).replace("room=a%20b", "room=c"), _HOST, lookup=_static_lookup,
                         region=REGION, now=stamp)
    assert refused.value.reason == "signature"


def test_the_signed_text_counts_not_its_value():
    """X-Amz-Expires=0300 means 300 but is not what was signed: AWS compares canonical text."""
    now = datetime.now(UTC)
    target = _target(presign(_STATIC, _HOST, now=now, expires=300))
    assert "X-Amz-Expires=300&" in target
    with pytest.raises(Refused) as refused:
        verify_presigned(target.replace("X-Amz-Expires=300&", "X-Amz-Expires=0300&"), _HOST,
                         lookup=_static_lookup, region=REGION, now=now.timestamp())
    assert refused.value.reason == "signature"


@given(name=st.sampled_from(["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                             "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token"]),
       replacement=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=80))
@settings(max_examples=150, deadline=None)
def test_any_changed_parameter_is_refused(name: str, replacement: str):
    from urllib.parse import parse_qsl, urlencode

    now = datetime.now(UTC)
    target = _target(presign(_STATIC, _HOST, now=now))
    path, query = target.split("?", 1)
    params = dict(parse_qsl(query, keep_blank_values=True))
    assume(params[name] != replacement)
    params[name] = replacement
    tampered = f"{path}?{urlencode(params)}"
    with pytest.raises(Refused) as refused:
        verify_presigned(tampered, _HOST, lookup=_static_lookup, region=REGION, now=now.timestamp())
    assert _STATIC.secret_access_key not in str(refused.value)
    assert str(_STATIC.session_token) not in str(refused.value)


def test_the_exchange_services_presigner_is_accepted(ca, mosquitto, iot, temp_creds):
    """The URL the Endorse exchange service hands out (gw_plugins.endorse.iot_url) opens a session.

    Skipped until the endorse branch is merged (the module does not exist before)."""
    iot_url = pytest.importorskip("gw_plugins.endorse.iot_url")
    url = iot_url.presign_mqtt_url(temp_creds, iot.endpoint, REGION)
    assert url.startswith(f"wss://{iot.endpoint}/mqtt?") and "X-Amz-Security-Token=" in url
    peer = _ws_peer(url, ca, iot.port, f"exchange-{uuid.uuid4().hex[:8]}")
    peer.stop()
    assert iot.calls["accepted"] == 1 and iot.refusals() == 0


def test_nothing_secret_is_logged_even_at_debug(ca, iot, temp_creds, caplog):
    """The emulator's side (its own loggers and the websockets server's) logs no token or
    signature. (The test's websockets client and botocore log theirs at DEBUG: not the emulator.)"""
    import logging

    caplog.set_level(logging.DEBUG)
    good = presign(temp_creds, iot.endpoint)
    assert _handshake(good, ca, iot.port)[0] == 101
    assert _handshake(_flip_signature(good), ca, iot.port)[0] == 403
    signature = good.split("X-Amz-Signature=", 1)[1].split("&", 1)[0]
    server_side = "\n".join(r.getMessage() for r in caplog.records
                            if r.name.startswith(("gw_emulators", "websockets.server")))
    for secret in (temp_creds.session_token, temp_creds.secret_access_key, signature):
        assert str(secret) not in server_side
    assert iot.calls["accepted"] == 1 and iot.calls["refused:signature"] == 1
