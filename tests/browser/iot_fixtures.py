"""Shared pieces of the AWS IoT MQTT-over-WebSocket tests (emulator tests and the browser test).

- :func:`require`: a system tool the tests need; skip when it is missing, except under
  CI=true, where a missing tool fails the test (``make test`` installs them:
  tests/browser/install.sh).
- :func:`presign`: a presigned ``wss://`` URL made with botocore exactly as the Endorse
  exchange service does (``gw_plugins.endorse.iot_url.presign_mqtt_url``: SigV4 query
  auth for ``iotdevicegateway``, signed header ``host``, ``X-Amz-Security-Token``
  appended after signing). Once the endorse branch is merged, tests may call that
  function instead; this one stays as the independent reference.
- Fixtures: ``mosquitto`` (a real broker per module), ``clock``, ``temp_creds``.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(ok: bool, what: str) -> None:
    """Skip (or, under CI=true, fail) when a needed tool is missing."""
    if ok:
        return
    message = f"{what} is missing (make test installs it: tests/browser/install.sh)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def require_mosquitto() -> None:
    from gw_emulators.iot_data import mosquitto_path

    require(mosquitto_path() is not None, "mosquitto")


@dataclass
class Clock:
    """Real UTC time plus an offset a test can move (both ways)."""

    offset: timedelta = field(default_factory=timedelta)

    def __call__(self) -> float:
        return (datetime.now(UTC) + self.offset).timestamp()

    def advance(self, **kwargs: float) -> None:
        self.offset += timedelta(**kwargs)


@dataclass(frozen=True)
class Creds:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:
        return f"Creds({self.access_key_id!r})"


def presign(creds: Creds, endpoint: str, region: str = "us-east-1", *, service: str = "iotdevicegateway",
            now: datetime | None = None, expires: int = 300, path: str = "/mqtt") -> str:
    """``wss://<endpoint>/mqtt?X-Amz-...`` presigned with botocore (the exchange service's recipe)."""
    from botocore.auth import SIGV4_TIMESTAMP, SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    stamp = (now or datetime.now(UTC)).strftime(SIGV4_TIMESTAMP)

    class _At(SigV4QueryAuth):
        def _modify_request_before_signing(self, request: Any) -> None:
            request.context["timestamp"] = stamp
            super()._modify_request_before_signing(request)

    request = AWSRequest(method="GET", url=f"https://{endpoint}{path}")
    _At(Credentials(creds.access_key_id, creds.secret_access_key), service, region, expires=expires).add_auth(request)
    url = "wss://" + request.url[len("https://"):]
    if creds.session_token:
        url += "&X-Amz-Security-Token=" + quote(creds.session_token, safe="")
    return url


def assume_role(moto: Any, name: str) -> Creds:
    """Temporary credentials from moto's STS AssumeRole (moto records them for the emulator)."""
    akid, secret = moto.create_user(f"iot-user-{name}")
    arn = moto.create_role(f"iot-role-{name}")
    answer = moto.client("sts", akid, secret).assume_role(RoleArn=arn, RoleSessionName=f"iot-{name}")
    c = answer["Credentials"]
    return Creds(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real mosquitto on 127.0.0.1 (random port) for this module."""
    require_mosquitto()
    from gw_emulators.iot_data import start_mosquitto

    broker = start_mosquitto(tmp_path_factory.mktemp("mosquitto"))
    yield broker
    broker.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def temp_creds(moto: Any) -> Creds:
    return assume_role(moto, uuid.uuid4().hex[:10])


class MqttPeer:
    """A paho-mqtt client (MQTT 3.1.1) that records what it receives; waits use events, not sleeps."""

    def __init__(self, client_id: str, *, transport: Literal["tcp", "websockets"] = "tcp") -> None:
        import paho.mqtt.client as paho

        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, transport=transport,
                                  protocol=paho.MQTTv311)
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.connect_result: Any = None
        self.messages: list[tuple[str, bytes]] = []
        self._arrived = threading.Condition()
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self.connect_result = reason
        self.connected.set()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self._arrived:
            self.messages.append((message.topic, bytes(message.payload)))
            self._arrived.notify_all()

    def start(self, host: str, port: int) -> MqttPeer:
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        assert self.connected.wait(10), "no CONNACK"
        assert not self.connect_result.is_failure, f"CONNACK refused: {self.connect_result}"
        return self

    def subscribe(self, topic: str) -> None:
        self.subscribed.clear()
        self.client.subscribe(topic, qos=1)
        assert self.subscribed.wait(10), "no SUBACK"

    def wait_for(self, payload: bytes, timeout: float = 10.0) -> tuple[str, bytes]:
        with self._arrived:
            found = self._arrived.wait_for(lambda: any(p == payload for _, p in self.messages), timeout)
            assert found, f"message not received; got {len(self.messages)} other(s)"
            return next(m for m in self.messages if m[1] == payload)

    def wait_for_match(self, match: Callable[[bytes], bool], timeout: float = 10.0) -> tuple[str, bytes]:
        """The first message whose payload ``match`` accepts."""
        with self._arrived:
            found = self._arrived.wait_for(lambda: any(match(p) for _, p in self.messages), timeout)
            assert found, f"message not received; got {len(self.messages)} other(s)"
            return next(m for m in self.messages if match(m[1]))

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def chromium_paths() -> tuple[str | None, str | None]:
    """(chromium, chromedriver) from Debian's packages."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None)
    return browser, driver
