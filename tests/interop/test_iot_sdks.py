"""AWS's own IoT device SDKs through the IoT data emulator (MQTT over WebSocket), with gw's credentials.

Upstream parts (PyPI, the ``test`` extra): ``awsiotsdk`` (AWS IoT Device SDK v2, signing by
``awscrt``) and ``AWSIoTPythonSDK`` (SDK v1, its own SigV4 and WebSocket code). Each one
connects through :class:`gw_emulators.iot_data.IotDataEmulator` to a real mosquitto,
subscribes, and exchanges a message with paho-mqtt talking to the broker directly.

The credentials come from gw: a device certificate is exchanged at the IoT credentials
provider emulator (which mints them with STS on moto) by an ``iot-certificate`` profile; SDK
v2 gets them through ``credential_process`` in ``~/.aws/config`` (written by ``gw setup
aws``, read by awscrt's process provider), SDK v1 from ``gw env --format json``.

Each SDK trusts the emulator's local CA the way it takes a custom CA: awscrt's
``ca_filepath`` builder argument, SDK v1's ``configureCredentials(CAFilePath)``.
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from gw_emulators.iot import IotCredentialsEmulator
from gw_emulators.iot_data import IotDataEmulator, verify_presigned
from tests.browser import iot_fixtures as fx
from tests.browser.iot_fixtures import Creds, MqttPeer

REGION = "us-east-1"
#: SDK v1 insists on an AWS-shaped endpoint name (cores.py ``IOT_ENDPOINT_PATTERN``) and takes
#: the region from it; the socket goes to 127.0.0.1 through its socket factory.
ATS_HOST = "a1gwinterop-ats.iot.us-east-1.amazonaws.com"
mosquitto = fx.mosquitto


@pytest.fixture
def data_plane(ca: Any, moto: Any, mosquitto: Any) -> Iterator[IotDataEmulator]:
    with IotDataEmulator(ca, moto.lookup, mosquitto.address, region=REGION, hosts=(ATS_HOST,)) as emulator:
        yield emulator


@pytest.fixture
def gw_device(aws_home: Any, ca: Any, moto: Any, tmp_path: Any) -> Iterator[Any]:
    """A gw home with profile ``device`` (iot-certificate through the credentials provider
    emulator) and ``gw setup aws --profile device`` done."""
    role = moto.create_role(f"IotSdk{uuid.uuid4().hex[:8]}")
    with IotCredentialsEmulator(ca, tmp_path / "iot-credentials", aws_endpoint=moto.url) as provider:
        provider.add_role_alias("sdk-alias", role)
        cert = provider.create_certificate("sdk-device", thing_name="sdk-thing")
        aws_home.write_config(
            "[profiles.device]\n"
            f'steps = [{{ use = "iot-certificate", endpoint = "{provider.endpoint}", role_alias = "sdk-alias", '
            f'thing_name = "sdk-thing", certificate = "{cert.cert_path}", private_key = "{cert.key_path}" }}]\n')
        setup = aws_home.run("setup", "aws", "--profile", "device", "--region", REGION)
        assert setup.returncode == 0, setup.stderr
        # awscrt runs credential_process synchronously on its event loop, holding the GIL, so
        # this process's emulator threads cannot answer then: gw's cache, filled here, does.
        warm = aws_home.run("credential-process", "--profile", "device")
        assert warm.returncode == 0, warm.stderr
        yield aws_home
        assert provider.calls["credentials"] == 1  # every SDK run was served by gw's cache


def _gw_credentials(home: Any) -> dict[str, str]:
    result = home.run("env", "--profile", "device", "--format", "json")
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["AWS_ACCESS_KEY_ID"].startswith("ASIA")
    return values


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.arrived = threading.Condition()

    def add(self, topic: str, payload: bytes) -> None:
        with self.arrived:
            self.messages.append((topic, bytes(payload)))
            self.arrived.notify_all()

    def wait_for(self, payload: bytes, timeout: float = 15.0) -> None:
        with self.arrived:
            assert self.arrived.wait_for(lambda: any(p == payload for _, p in self.messages), timeout), \
                f"not received; got {self.messages!r}"


def _exchange(mosquitto: Any, subscribe: Any, publish: Any, inbox: _Inbox) -> None:
    """The SDK subscribes through the emulator; paho on the broker publishes to it, and
    receives what the SDK publishes."""
    topic = f"interop/{uuid.uuid4().hex[:8]}"
    subscribe(topic)
    direct = MqttPeer(f"paho-{uuid.uuid4().hex[:8]}").start(*mosquitto.address)
    try:
        direct.subscribe(topic)
        direct.client.publish(topic, b"to the SDK from paho", qos=1).wait_for_publish(10)
        inbox.wait_for(b"to the SDK from paho")
        publish(topic, b"to paho from the SDK")
        assert direct.wait_for(b"to paho from the SDK")[0] == topic
    finally:
        direct.stop()


def test_sdk_v2_awscrt_websocket_signing(ca, mosquitto, data_plane, gw_device, monkeypatch):
    """awsiotsdk's ``websockets_with_default_aws_signing``: awscrt signs ``connection;host``
    without X-Amz-Expires and sends Host without the port; credentials via credential_process."""
    from awscrt import auth, mqtt
    from awsiot import mqtt_connection_builder

    for key, value in gw_device.env.items():  # awscrt's process provider runs `gw credential-process`
        monkeypatch.setenv(key, value)
    provider = auth.AwsCredentialsProvider.new_process(profile_to_use="device")
    inbox = _Inbox()
    connection = mqtt_connection_builder.websockets_with_default_aws_signing(
        region=REGION, credentials_provider=provider, endpoint="127.0.0.1", port=data_plane.port,
        ca_filepath=str(ca.ca_path), client_id=f"sdk-v2-{uuid.uuid4().hex[:8]}", clean_session=True,
        keep_alive_secs=30)
    connection.connect().result(20)
    try:
        def subscribe(topic: str) -> None:
            future, _ = connection.subscribe(topic, mqtt.QoS.AT_LEAST_ONCE,
                                             lambda topic, payload, **kw: inbox.add(topic, payload))
            future.result(10)

        def publish(topic: str, payload: bytes) -> None:
            connection.publish(topic, payload, mqtt.QoS.AT_LEAST_ONCE)[0].result(10)

        _exchange(mosquitto, subscribe, publish, inbox)
    finally:
        connection.disconnect().result(10)
    seen = data_plane.accepted_requests[-1]
    assert seen["signed_headers"] == "connection;host" and not seen["expires"]
    assert seen["host"] == "127.0.0.1" and seen["service"] == "iotdevicegateway"
    assert data_plane.calls["bridged"] == 1 and data_plane.refusals() == 0


def test_sdk_v1_websocket_client(ca, mosquitto, data_plane, gw_device):
    """AWSIoTPythonSDK's AWSIoTMQTTClient(useWebsocket=True): service ``iotdata``,
    X-Amz-Expires=86400, a 172-character key, subprotocol ``mqttv3.1``, a case-sensitive
    search for ``sec-websocket-accept``; credentials from ``gw env``."""
    from AWSIoTPythonSDK.MQTTLib import AWSIoTMQTTClient

    creds = _gw_credentials(gw_device)
    inbox = _Inbox()
    client = AWSIoTMQTTClient(f"sdk-v1-{uuid.uuid4().hex[:8]}", useWebsocket=True)
    client.configureEndpoint(ATS_HOST, data_plane.port)
    client.configureCredentials(str(ca.ca_path))
    client.configureIAMCredentials(creds["AWS_ACCESS_KEY_ID"], creds["AWS_SECRET_ACCESS_KEY"],
                                   creds["AWS_SESSION_TOKEN"])
    client.configureSocketFactory(lambda: socket.create_connection(("127.0.0.1", data_plane.port), timeout=10))
    client.configureConnectDisconnectTimeout(15)
    client.configureMQTTOperationTimeout(10)
    client.configureAutoReconnectBackoffTime(1, 2, 20)
    assert client.connect(keepAliveIntervalSecond=30)
    try:
        _exchange(mosquitto,
                  lambda topic: client.subscribe(topic, 1, lambda c, u, m: inbox.add(m.topic, m.payload)),
                  lambda topic, payload: client.publish(topic, payload, 1), inbox)
    finally:
        client.disconnect()
    seen = data_plane.accepted_requests[-1]
    assert seen == {"host": ATS_HOST, "service": "iotdata", "signed_headers": "host", "expires": "86400",
                    "subprotocol": "mqttv3.1", "key_length": 172}
    assert data_plane.calls["bridged"] == 1 and data_plane.refusals() == 0


# -- the verifier alone, on URLs the SDKs' own signers make (no network) ---------------------
_STATIC_KEY, _STATIC_SECRET, _STATIC_TOKEN = "ASIAINTEROPEXAMPLE01", "w" * 40, "tok/en+=" + "x" * 30


def _static(akid: str) -> Any:
    return Creds(_STATIC_KEY, _STATIC_SECRET, _STATIC_TOKEN) if akid == _STATIC_KEY else None


def test_urls_signed_by_awscrt_verify_and_tampering_is_refused():
    """awscrt's signer as awsiotsdk configures it (HTTP_REQUEST_QUERY_PARAMS, omit_session_token)."""
    import time

    from awscrt import auth, http

    from gw_emulators.iot_data import Refused

    request = http.HttpRequest("GET", "/mqtt", http.HttpHeaders([("Host", "127.0.0.1"), ("Connection", "Upgrade"),
                                                                  ("Upgrade", "websocket")]))
    config = auth.AwsSigningConfig(
        algorithm=auth.AwsSigningAlgorithm.V4, signature_type=auth.AwsSignatureType.HTTP_REQUEST_QUERY_PARAMS,
        credentials_provider=auth.AwsCredentialsProvider.new_static(_STATIC_KEY, _STATIC_SECRET, _STATIC_TOKEN),
        region=REGION, service="iotdevicegateway", omit_session_token=True)
    auth.aws_sign_request(request, config).result(10)
    target = request.path  # awscrt adds the token itself, unsigned (omit_session_token)
    assert "&X-Amz-Security-Token=" + quote(_STATIC_TOKEN, safe="") in target
    assert "X-Amz-Expires" not in target and "X-Amz-SignedHeaders=connection%3Bhost" in target

    def headers(values: dict[str, str]) -> Any:
        return lambda name: [v for k, v in values.items() if k.lower() == name]

    sent = {"Host": "127.0.0.1", "Connection": "Upgrade"}
    now = time.time()
    assert verify_presigned(target, headers(sent), lookup=_static, region=REGION, now=now) == _STATIC_KEY
    for changed in ({"Host": "127.0.0.1", "Connection": "keep-alive"}, {"Host": "localhost", "Connection": "Upgrade"},
                    {"Host": "127.0.0.1"}):
        with pytest.raises(Refused) as refused:
            verify_presigned(target, headers(changed), lookup=_static, region=REGION, now=now)
        assert refused.value.reason == "signature"
    with pytest.raises(Refused) as refused:  # without X-Amz-Expires the URL lives as long as the skew
        verify_presigned(target, headers(sent), lookup=_static, region=REGION, now=now + 301)
    assert refused.value.reason == "expired"


def test_urls_signed_by_sdk_v1_verify_and_tampering_is_refused():
    """AWSIoTPythonSDK v1's SigV4Core.createWebsocketEndpoint (service iotdata, 86400 s)."""
    import time

    from AWSIoTPythonSDK.core.protocol.connection.cores import SigV4Core

    from gw_emulators.iot_data import Refused

    signer = SigV4Core()
    signer.setIAMCredentials(_STATIC_KEY, _STATIC_SECRET, _STATIC_TOKEN)
    url = signer.createWebsocketEndpoint(ATS_HOST, 443, REGION, "GET", "iotdata", "/mqtt")
    target = url[url.index("/mqtt"):]
    now = time.time()
    assert verify_presigned(target, ATS_HOST, lookup=_static, region=REGION, now=now) == _STATIC_KEY
    assert verify_presigned(target, ATS_HOST, lookup=_static, region=REGION, now=now + 86000) == _STATIC_KEY
    with pytest.raises(Refused) as refused:
        verify_presigned(target, ATS_HOST, lookup=_static, region=REGION, now=now + 86401)
    assert refused.value.reason == "expired"
    with pytest.raises(Refused) as refused:
        verify_presigned(target, f"{ATS_HOST}:443", lookup=_static, region=REGION, now=now)
    assert refused.value.reason == "signature"


def test_gws_presigned_url_is_byte_identical_to_the_sdk_v1_recipe(monkeypatch):
    """gw's URL (botocore) and AWSIoTPythonSDK's hand-made one, for the same inputs (date,
    service, 86400 s, host), have the same query byte for byte: signature and token included."""
    from datetime import UTC, datetime

    from AWSIoTPythonSDK.core.protocol.connection.cores import SigV4Core

    from gw_plugins.endorse.iot_url import presign_mqtt_url

    at = datetime(2026, 3, 1, 12, 34, 56, tzinfo=UTC)
    creds = Creds(_STATIC_KEY, _STATIC_SECRET, "token-without-slash+=" + "y" * 20)
    monkeypatch.setattr(SigV4Core, "_createAmazonDate", lambda self: ["20260301", "20260301T123456Z"])
    monkeypatch.setattr("gw_plugins.endorse.iot_url.SERVICE", "iotdata")
    signer = SigV4Core()
    signer.setIAMCredentials(creds.access_key_id, creds.secret_access_key, creds.session_token)
    theirs = signer.createWebsocketEndpoint(ATS_HOST, 443, REGION, "GET", "iotdata", "/mqtt")
    ours = presign_mqtt_url(creds, ATS_HOST, REGION, now=at, expires=86400)
    assert ours.split("?", 1)[1] == theirs.split("?", 1)[1]
    assert ours.split("?", 1)[0] == f"wss://{ATS_HOST}/mqtt" and theirs.split("?", 1)[0] == f"wss://{ATS_HOST}:443/mqtt"


def _raw_upgrade(ca: Any, port: int, target: str, key: str, protocol: str = "mqttv3.1") -> str:
    """The emulator's answer to an upgrade written as SDK v1 writes it (cores.py ``_handShake``)."""
    import ssl

    request = (f"GET {target} HTTP/1.1\r\nHost: {ATS_HOST}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
               f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {protocol}\r\n"
               "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
               f"sec-websocket-key: {key}\r\n\r\n")
    context = ssl.create_default_context(cafile=str(ca.ca_path))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=ATS_HOST) as tls:
        tls.sendall(request.encode())
        return tls.recv(4096).decode("latin-1")


def test_the_upgrade_answer_suits_sdk_v1_and_bad_keys_are_refused(ca, data_plane, moto):
    import base64
    import hashlib
    import os

    from AWSIoTPythonSDK.core.protocol.connection.cores import SigV4Core

    from tests.browser.iot_fixtures import assume_role

    creds = assume_role(moto, uuid.uuid4().hex[:10])
    signer = SigV4Core()
    signer.setIAMCredentials(creds.access_key_id, creds.secret_access_key, creds.session_token)
    url = signer.createWebsocketEndpoint(ATS_HOST, data_plane.port, REGION, "GET", "iotdata", "/mqtt")
    target = url[url.index("/mqtt"):]
    key = base64.b64encode(os.urandom(128)).decode()
    answer = _raw_upgrade(ca, data_plane.port, target, key)
    accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    assert answer.startswith("HTTP/1.1 101 ") and f"\r\nsec-websocket-accept: {accept}\r\n" in answer
    assert "Sec-WebSocket-Protocol: mqttv3.1\r\n" in answer and "extensions" not in answer.lower()
    for bad_key, protocol in (("not base64!", "mqttv3.1"), (key, "wamp")):
        assert _raw_upgrade(ca, data_plane.port, target, bad_key, protocol).startswith("HTTP/1.1 403 ")
    assert data_plane.calls["refused:upgrade"] == 1 and data_plane.calls["refused:subprotocol"] == 1
