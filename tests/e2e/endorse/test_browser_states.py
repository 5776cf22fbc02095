"""The browser page's hard states in headless Chromium: a lost broker, an expired URL, errors.

Real parts only: SORACOM Endorse is the Endorse emulator (HTTPS), the exchange service is
``ExchangeService`` behind its real HTTP front door in this process (``local_exchange``: so a
test can shorten the presigned URL's lifetime or take the service's AWS credentials away),
STS is moto, AWS IoT is the IoT data emulator bridged to a real mosquitto that a test stops
and starts. Screenshots: GW_PAGE_SCREENSHOTS=docs/images (see docs/plugins/endorse.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from gw_emulators.iot_data import IotDataEmulator, MosquittoBroker, start_mosquitto
from tests.browser.iot_fixtures import MqttPeer, require_mosquitto
from tests.browser.page import browser_factory, leaf, shot, spki_sha256, state, status_text, wait_message, wait_state
from tests.plugins.endorse.conftest import fetch_token

__all__ = ["browser_factory"]  # a fixture, imported for pytest
REGION = "us-east-1"
NO_CREDENTIAL_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                     "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                     "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE")


class Brokers:
    """A real mosquitto the test can stop, and start again (on a new port the IoT emulator follows)."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.current: MosquittoBroker | None = None
        self.iot: IotDataEmulator | None = None
        self.started = 0

    def start(self) -> MosquittoBroker:
        self.started += 1
        self.current = start_mosquitto(self.tmp_path / f"mosquitto-{self.started}")
        if self.iot is not None:
            self.iot.broker = self.current.address
        return self.current

    def stop(self) -> None:
        if self.current is not None:
            self.current.stop()
            self.current = None


@dataclass
class Site:
    url: str  # the exchange service's root: the page, /static/, /exchange
    endorse: Any
    iot: IotDataEmulator
    brokers: Brokers
    pins: list[str]
    service: Any
    service_log: list[str]

    def page(self, **query: str) -> str:
        from urllib.parse import urlencode

        return f"{self.url}/?" + urlencode({"endorse": self.endorse.url + "/", **query})

    def exchanges(self) -> int:
        return sum(1 for line in self.service_log if '"output":"iot-wss"' in line)


@pytest.fixture
def site(tmp_path, ca, moto, endorse, base_settings, local_exchange) -> Iterator[Site]:
    require_mosquitto()
    brokers = Brokers(tmp_path)
    broker = brokers.start()
    with IotDataEmulator(ca, moto.lookup, broker.address, region=REGION) as iot:
        brokers.iot = iot
        exchange = local_exchange({**base_settings, "iot_endpoint": iot.endpoint, "iot_region": REGION})
        endorse.authorized_redirects = (exchange.url + "/",)
        assert iot.cert_path is not None
        pins = [spki_sha256(leaf(ca, endorse)), spki_sha256(iot.cert_path.read_bytes())]
        made = Site(exchange.url, endorse, iot, brokers, pins, exchange.service, exchange.log)
        try:
            yield made
        finally:
            brokers.stop()


def _connect(site: Site, driver: Any, topic: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(site.page(topic=topic))
    driver.find_element(By.ID, "connect").click()  # -> Endorse -> 302 back with a token -> /exchange
    wait_state(driver, "connected")


def _form_enabled(driver: Any) -> bool:
    from selenium.webdriver.common.by import By

    return bool(driver.find_element(By.ID, "message").is_enabled() and driver.find_element(By.ID, "send").is_enabled())


def _wait(driver: Any, predicate: Any, timeout: float = 30) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: predicate())


def test_lost_broker_disables_the_form_keeps_the_text_and_reconnects(site, browser_factory, tmp_path):
    """Stop the broker: the page says it is reconnecting and why, then disconnected; the form is
    off and the typed text stays; Reconnect (same URL, still valid) gets the text through."""
    from selenium.webdriver.common.by import By

    topic = f"chat/{uuid.uuid4().hex[:8]}"
    driver = browser_factory(site.pins)
    _connect(site, driver, topic)
    assert _form_enabled(driver)
    typed = f"typed before the outage {uuid.uuid4().hex[:6]}"
    driver.find_element(By.ID, "message").send_keys(typed)

    site.brokers.stop()
    _wait(driver, lambda: state(driver) == "reconnecting", 15)
    assert "connection to AWS IoT was lost" in status_text(driver)
    assert not _form_enabled(driver)
    driver.find_element(By.ID, "send").click()  # a disabled button: nothing is sent, nothing cleared
    assert driver.find_element(By.ID, "message").get_attribute("value") == typed
    shot(driver, tmp_path, "reconnecting")

    # every retry meets the IoT endpoint without a broker behind it, then the page gives up
    wait_state(driver, "disconnected", 40, settle=("connected", "error", "disconnected"))
    assert "connection to AWS IoT was lost, and 4 reconnects failed" in status_text(driver)
    assert "Press Reconnect" in status_text(driver)
    assert site.iot.calls["broker-unreachable"] == 4
    assert driver.find_element(By.ID, "connect").text == "Reconnect"
    assert driver.find_element(By.ID, "message").get_attribute("value") == typed
    shot(driver, tmp_path, "disconnected")

    broker = site.brokers.start()
    peer = MqttPeer(f"paho-{uuid.uuid4().hex[:8]}").start(*broker.address)
    try:
        peer.subscribe(topic)
        driver.find_element(By.ID, "connect").click()
        wait_state(driver, "connected")
        assert site.endorse.calls["token"] == 1 and site.exchanges() == 1  # the same, still valid URL
        assert _form_enabled(driver)
        driver.find_element(By.ID, "send").click()
        assert peer.wait_for_match(lambda p: typed.encode() in p)[0] == topic
        wait_message(driver, typed)
    finally:
        peer.stop()


def test_expired_url_is_replaced_through_endorse_keeping_the_chat(site, browser_factory, monkeypatch):
    """The presigned URL expires, then the connection drops: the page goes through Endorse again
    by itself (a new token, a new /exchange, a new URL) and keeps the messages and the typed text."""
    from selenium.webdriver.common.by import By

    from gw_plugins.endorse import iot_url

    monkeypatch.setattr(iot_url, "DEFAULT_EXPIRES", 8)  # the service's URL lifetime (seconds)
    topic = f"chat/{uuid.uuid4().hex[:8]}"
    peer = MqttPeer(f"paho-{uuid.uuid4().hex[:8]}").start(*site.brokers.current.address)  # type: ignore[union-attr]
    driver = browser_factory(site.pins)
    try:
        _connect(site, driver, topic)
        first_expiry = driver.find_element(By.ID, "expires").text
        peer.client.publish(topic, b"before the expiry", qos=1)
        wait_message(driver, "before the expiry")
        driver.find_element(By.ID, "message").send_keys("draft across the trip")
        expiry = datetime.fromisoformat(first_expiry.replace("Z", "+00:00"))
        _wait(driver, lambda: datetime.now(UTC) > expiry, 20)  # the URL is now refused by AWS IoT
        peer.stop()

        site.brokers.stop()  # the connection drops ...
        broker = site.brokers.start()  # ... while the broker itself comes back at once
        peer = MqttPeer(f"paho-{uuid.uuid4().hex[:8]}").start(*broker.address)
        peer.subscribe(topic)
        _wait(driver, lambda: site.endorse.calls["token"] == 2, 20)  # a second trip through Endorse
        wait_state(driver, "connected")
        assert site.exchanges() == 2 and site.iot.calls["accepted"] == 2
        assert driver.find_element(By.ID, "expires").text != first_expiry
        assert "soracom_endorse_token" not in driver.current_url
        wait_message(driver, "before the expiry")  # the chat so far survived the round trip
        assert driver.find_element(By.ID, "message").get_attribute("value") == "draft across the trip"
        driver.find_element(By.ID, "send").click()
        assert peer.wait_for_match(lambda p: b"draft across the trip" in p)[0] == topic
    finally:
        peer.stop()


def _without_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in NO_CREDENTIAL_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_exchange_without_aws_credentials_says_so(endorse, ca, moto, base_settings, local_exchange, monkeypatch,
                                                  tmp_path):
    """No AWS credentials: 503 no_aws_credentials naming what to set, not "502 sts_unreachable"."""
    exchange = local_exchange(base_settings)
    _without_aws_credentials(monkeypatch, tmp_path)
    assert requests.get(moto.url, timeout=10).status_code < 500  # STS (moto) is up and reachable

    response = exchange.post(fetch_token(endorse, ca))
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["code"] == "no_aws_credentials"
    assert "no AWS credentials" in body["message"] and "AWS_PROFILE" in body["message"]
    assert any('"code":"no_aws_credentials"' in line for line in exchange.log)


def test_page_shows_what_the_exchange_service_is_missing(site, browser_factory, monkeypatch, tmp_path):
    from selenium.webdriver.common.by import By

    _without_aws_credentials(monkeypatch, tmp_path)
    driver = browser_factory(site.pins)
    driver.get(site.page())
    driver.find_element(By.ID, "connect").click()
    wait_state(driver, "error")
    text = status_text(driver)
    assert "HTTP 503 no_aws_credentials" in text and "AWS_PROFILE" in text
    assert not _form_enabled(driver) and driver.find_element(By.ID, "connect").is_enabled()
    assert site.iot.calls["accepted"] == 0
    shot(driver, tmp_path, "error")


def test_page_without_its_bundle_names_the_command_to_run(site, browser_factory):
    from selenium.webdriver.common.by import By

    driver = browser_factory(site.pins, block=("*mqtt.min.js",))
    driver.get(site.page())
    wait_state(driver, "error", 10)
    assert "bash tests/browser/install.sh --demo" in status_text(driver)
    assert not driver.find_element(By.ID, "connect").is_enabled()
    assert site.endorse.calls["token"] == 0
