"""The browser flow, end to end, in headless Chromium (Debian's chromium + chromedriver, selenium).

The page (plugins/endorse/static/index.html + app.js + the vendored mqtt.js bundle) is
clicked like a person would: "Connect with my SIM" -> SORACOM Endorse -> 302 back with a
token -> the page trades it at /exchange for a presigned ``wss://`` URL -> mqtt.js connects
through the IoT data emulator (SigV4 checked, bridged to a real mosquitto) -> a message
published by paho-mqtt on the broker appears in the page, and a message typed in the page
reaches paho.

Which Endorse and which exchange site (the ``flow`` fixture):
- once the endorse branch is merged (``gw_emulators.endorse`` and
  ``gw_plugins.endorse.server`` importable), the REAL parts: the Endorse emulator and a real
  ``gw serve endorse-exchange`` started with the endorse tests' own fixtures (``endorse``,
  ``base_settings``, ``exchange_server`` from tests/plugins/endorse/conftest.py) and
  ``iot_endpoint`` = this IoT emulator;
- before that, or with GW_BROWSER_STANDINS=1, stand-ins defined here: ``EndorseStandIn``
  (``GET /?redirect_url=<url>`` -> 302 ``<url>?soracom_endorse_token=<token>``, like
  ``EndorseEmulator``) and ``SiteStandIn`` (``/``, ``/static/<file>`` and a one-use
  ``/exchange?output=iot-wss`` answering the exchange service's JSON with a URL presigned by
  botocore for moto-issued AssumeRole credentials).
The tests themselves only talk to the page.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from gw_emulators.httpserver import EmulatorServer, Request, Response, json_response
from gw_emulators.iot_data import IotDataEmulator
from tests.browser import iot_fixtures as fx
from tests.browser.iot_fixtures import MqttPeer, assume_role, presign
from tests.browser.page import STATIC_DIR, browser_factory, csp_violations, leaf, shot, spki_sha256
from tests.browser.page import wait_message as _wait_message
from tests.browser.page import wait_state as _wait_state

REGION = "us-east-1"
IMSI = "001019999999999"

mosquitto = fx.mosquitto
__all__ = ["browser_factory"]  # a fixture, imported for pytest


# -- stand-ins ---------------------------------------------------------------------------
class EndorseStandIn(EmulatorServer):
    """``GET /?redirect_url=`` of SORACOM Endorse (docs/protocols.md section 5), opaque tokens."""

    name = "browser-endorse"

    def __init__(self, ca: Any, authorized: str) -> None:
        super().__init__(ca)
        self.authorized = authorized
        self.issued: list[str] = []
        self.route("GET", r"/", self.endorse, "endorse")

    def endorse(self, request: Request) -> Response:
        redirect = request.arg("redirect_url")
        if redirect is None or not redirect.startswith(self.authorized):
            return json_response(400, {"code": "END0003", "message": "redirect_url is not authorized."})
        token = secrets.token_urlsafe(24)
        with self._lock:
            self.issued.append(token)
        joiner = "&" if "?" in redirect else "?"
        return Response(302, b"", {"Location": f"{redirect}{joiner}soracom_endorse_token={token}"})


class SiteStandIn(EmulatorServer):
    """The exchange server's page routes and a one-use ``/exchange`` (output ``iot-wss``)."""

    name = "browser-site"

    def __init__(self, ca: Any, moto: Any, iot: IotDataEmulator, endorse: EndorseStandIn) -> None:
        super().__init__(ca)
        self.moto, self.iot, self.endorse = moto, iot, endorse
        self.used: set[str] = set()
        self.tamper = False  # True: answer a URL whose signature is wrong
        self.route("GET", r"/", lambda r: self.static("index.html"), "page")
        self.route("GET", r"/static/(?P<name>[A-Za-z0-9_][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.-]*)?)",
                   lambda r: self.static(r.match.group("name") if r.match else ""), "static")
        self.route("GET", r"/exchange", self.exchange, "exchange")

    @staticmethod
    def static(name: str) -> Response:
        file = STATIC_DIR / name
        if ".." in name or not file.is_file():
            return json_response(404, {"code": "not_found", "message": "no such file"})
        kind = {".html": "text/html", ".js": "application/javascript", ".css": "text/css"}.get(file.suffix,
                                                                                                "text/plain")
        return Response(200, file.read_bytes(), {"Content-Type": f"{kind}; charset=utf-8", "Cache-Control": "no-cache"})

    def exchange(self, request: Request) -> Response:
        token = request.arg("soracom_endorse_token")
        if request.arg("output") != "iot-wss":
            return json_response(400, {"code": "unknown_output", "message": "output must be aws or iot-wss"})
        with self._lock:
            known = token in self.endorse.issued
            replayed = token in self.used
            if known:
                self.used.add(token or "")
        if not known:
            return json_response(401, {"code": "invalid_token", "message": "the token is not valid"})
        if replayed:
            return json_response(401, {"code": "token_replayed", "message": "the token was used before"})
        creds = assume_role(self.moto, uuid.uuid4().hex[:10])
        now = datetime.now(UTC)
        url = presign(creds, self.iot.endpoint, REGION, now=now, expires=300)
        if self.tamper:
            url = url.replace("X-Amz-Signature=", "X-Amz-Signature=0", 1)
        return json_response(200, {
            "url": url,
            "expiration": (now + timedelta(seconds=300)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "clientId": IMSI,
            "topic_prefix": f"endorse/{IMSI}/",
        })


# -- fixtures ----------------------------------------------------------------------------
@pytest.fixture
def iot(ca: Any, moto: Any, mosquitto: Any) -> Iterator[IotDataEmulator]:
    with IotDataEmulator(ca, moto.lookup, mosquitto.address, region=REGION) as emulator:
        yield emulator


@dataclass
class Flow:
    """What the browser test needs from Endorse + the exchange site, real or stand-in."""

    site: Callable[[], str]  # the exchange site's root (serves the page, /static/, /exchange)
    endorse_url: str  # Endorse's ``GET /?redirect_url=`` endpoint
    pins: list[str]  # SPKI pins of every TLS leaf the browser meets
    imsi: str  # the SIM's IMSI: the clientId the exchange hands out
    tokens_issued: Callable[[], int]
    exchanges: Callable[[], int]
    fresh_token: Callable[[], str]  # a valid token that was already exchanged once
    break_signatures: Callable[[], None]  # make the exchange hand out URLs the IoT emulator refuses


def real_parts_available() -> bool:
    """True once the endorse branch (Endorse emulator + ``gw serve endorse-exchange``) is merged."""
    import importlib.util

    try:
        return all(importlib.util.find_spec(m) is not None
                   for m in ("gw_emulators.endorse", "gw_plugins.endorse.server"))
    except ModuleNotFoundError:
        return False


USE_REAL = real_parts_available() and os.environ.get("GW_BROWSER_STANDINS") != "1"


def _stand_in_flow(ca: Any, moto: Any, iot: IotDataEmulator, stop: list[Callable[[], None]]) -> Flow:
    endorse = EndorseStandIn(ca, authorized="https://127.0.0.1:")
    endorse.start()
    stop.append(endorse.stop)
    pins = [spki_sha256(leaf(ca, endorse))]
    site = SiteStandIn(ca, moto, iot, endorse)
    site.start()
    stop.append(site.stop)
    pins.append(spki_sha256(leaf(ca, site)))

    def used_token() -> str:
        token = secrets.token_urlsafe(24)
        with endorse._lock:
            endorse.issued.append(token)
        site.used.add(token)
        return token

    return Flow(lambda: site.url, endorse.url + "/", pins, IMSI,
                tokens_issued=lambda: len(endorse.issued), exchanges=lambda: site.calls["exchange"],
                fresh_token=used_token, break_signatures=lambda: setattr(site, "tamper", True))


def _real_flow(request: pytest.FixtureRequest, ca: Any, iot: IotDataEmulator) -> Flow:
    """The Endorse emulator and a real ``gw serve endorse-exchange`` (the endorse tests' fixtures)."""
    endorse = request.getfixturevalue("endorse")
    settings = dict(request.getfixturevalue("base_settings"))
    settings.update(iot_endpoint=iot.endpoint, iot_region=REGION)
    holder: dict[str, Any] = {}

    def start_exchange(extra: dict[str, Any] | None = None) -> Any:
        server = request.getfixturevalue("exchange_server")({**settings, **(extra or {})},
                                                            name=f"exchange-{len(holder)}")
        holder["server"] = server
        endorse.authorized_redirects = (server.url + "/",)
        return server

    start_exchange()

    def used_token() -> str:
        import requests

        answer = requests.get(endorse.url + "/", verify=str(ca.ca_path), timeout=10).json()["token"]
        assert holder["server"].post(answer).status_code == 200
        return str(answer)

    def restart_with_another_region() -> None:
        holder["server"].stop()
        start_exchange({"iot_region": "eu-west-1"})  # its URLs are scoped to the wrong region

    return Flow(
        site=lambda: str(holder["server"].url),  # follows restarts
        endorse_url=endorse.url + "/",
        pins=[spki_sha256(leaf(ca, endorse))],
        imsi=endorse.default_imsi,
        tokens_issued=lambda: endorse.calls["token"],
        exchanges=lambda: sum(1 for r in holder["server"].records() if r.get("output") == "iot-wss"),
        fresh_token=used_token,
        break_signatures=restart_with_another_region,
    )


@pytest.fixture
def flow(request: pytest.FixtureRequest, ca: Any, moto: Any, iot: IotDataEmulator) -> Iterator[Flow]:
    """Endorse + the exchange site: the real parts when merged (unless GW_BROWSER_STANDINS=1), else stand-ins."""
    stop: list[Callable[[], None]] = []
    try:
        made = _real_flow(request, ca, iot) if USE_REAL else _stand_in_flow(ca, moto, iot, stop)
        assert iot.cert_path is not None
        made.pins.append(spki_sha256(iot.cert_path.read_bytes()))
        yield made
    finally:
        for action in reversed(stop):
            action()


# -- the tests ---------------------------------------------------------------------------
def _page(flow: Flow, **params: str) -> str:
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
    return f"{flow.site()}/" + (f"?{query}" if query else "")


def test_page_chats_over_aws_iot_through_endorse(mosquitto, iot, flow, browser_factory, tmp_path):
    """A whole chat: both directions, sender and time on each message, own messages apart, no CSP violation."""
    from selenium.webdriver.common.by import By

    topic = f"chat/{uuid.uuid4().hex[:8]}"
    peer = MqttPeer(f"paho-{uuid.uuid4().hex[:8]}").start(*mosquitto.address)
    driver = browser_factory(flow.pins)
    try:
        peer.subscribe(topic)
        driver.get(_page(flow, endorse=flow.endorse_url, topic=topic))
        assert driver.find_element(By.ID, "status").get_attribute("data-state") == "idle"
        driver.find_element(By.ID, "connect").click()  # -> Endorse -> 302 back with the token
        _wait_state(driver, "connected")

        # the one-time token is gone from the address bar; the page kept its own settings
        assert "soracom_endorse_token" not in driver.current_url
        assert f"topic={quote(topic, safe='')}" in driver.current_url
        assert driver.find_element(By.ID, "topic").text == topic
        assert driver.find_element(By.ID, "client-id").text == flow.imsi
        assert mosquitto.wait_for_log(f"as {flow.imsi}"), "the broker never saw the page's MQTT client"

        # another client's message in the page's format: its sender and sending time are shown
        nonce = uuid.uuid4().hex[:8]
        sent = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        peer.client.publish(topic, json.dumps({"from": "sensor-7", "text": f"hello from paho {nonce}",
                                               "sent": sent.isoformat()}).encode(), qos=1)
        item = _wait_message(driver, f"hello from paho {nonce}")
        assert item.get_attribute("class") == "other"
        assert item.find_element(By.CSS_SELECTOR, ".sender").text == "sensor-7"
        shown = item.find_element(By.TAG_NAME, "time")
        assert shown.get_attribute("datetime") == "2026-01-02T03:04:05.000Z"
        assert re.fullmatch(r"\d\d:04:05", shown.text), shown.text  # local hour, the sender's minute and second
        assert topic not in item.text  # the topic is shown once, above the list

        # plain text (not the page's format): an unknown sender, the time it arrived
        peer.client.publish(topic, f"plain {nonce}".encode(), qos=1)
        plain = _wait_message(driver, f"plain {nonce}")
        assert plain.find_element(By.CSS_SELECTOR, ".sender").text == "unknown sender"

        typed = f"hello from the page {nonce}"
        driver.find_element(By.ID, "message").send_keys(typed)
        driver.find_element(By.ID, "send").click()
        got_topic, got = peer.wait_for_match(lambda p: typed.encode() in p)
        assert got_topic == topic
        doc = json.loads(got)
        assert doc["from"] == flow.imsi and doc["text"] == typed
        assert abs(datetime.fromisoformat(doc["sent"].replace("Z", "+00:00")) - datetime.now(UTC)) < timedelta(minutes=1)
        mine = _wait_message(driver, typed)  # the page is subscribed to its own topic too
        assert mine.get_attribute("class") == "own"
        assert mine.find_element(By.CSS_SELECTOR, ".sender").text == "You"
        assert driver.find_element(By.ID, "message").get_attribute("value") == ""  # cleared once acknowledged

        shot(driver, tmp_path, "connected")
        body = driver.find_element(By.TAG_NAME, "body").text
        # mqtt.js ran its timers in a blob: worker, and the CSP let it (worker-src)
        assert driver.execute_script("return typeof Worker") == "function"
        assert csp_violations(driver) == []
    finally:
        peer.stop()

    assert flow.tokens_issued() == 1 and flow.exchanges() == 1
    assert iot.calls["accepted"] == 1 and iot.calls["bridged"] == 1 and iot.refusals() == 0
    assert "X-Amz-" not in body and "soracom_endorse_token" not in body  # nothing it was given is shown


def test_page_shows_a_refused_token_and_does_not_connect(iot, flow, browser_factory):
    from selenium.webdriver.common.by import By

    token = flow.fresh_token()  # valid, but already exchanged once
    driver = browser_factory(flow.pins)
    driver.get(_page(flow, soracom_endorse_token=token))
    _wait_state(driver, "error")

    status = driver.find_element(By.ID, "status").text
    assert "HTTP 401" in status and "token_replayed" in status
    assert token not in driver.current_url and token not in status
    assert driver.find_element(By.ID, "chat").get_attribute("hidden") is not None
    assert iot.calls["accepted"] == 0 and iot.calls["bridged"] == 0


def test_page_reports_a_refused_websocket_upgrade(mosquitto, iot, flow, browser_factory):
    from selenium.webdriver.common.by import By

    flow.break_signatures()
    connections_before = len(mosquitto.lines("New connection from"))
    driver = browser_factory(flow.pins)
    driver.get(_page(flow, endorse=flow.endorse_url))
    driver.find_element(By.ID, "connect").click()
    _wait_state(driver, "error")

    assert "Could not connect to AWS IoT" in driver.find_element(By.ID, "status").text
    assert iot.refusals() == 1, dict(iot.calls)
    assert iot.calls["accepted"] == 0 and iot.calls["bridged"] == 0
    assert len(mosquitto.lines("New connection from")) == connections_before


def test_page_refuses_a_plain_http_endorse_url(flow, browser_factory):
    from selenium.webdriver.common.by import By

    driver = browser_factory(flow.pins)
    driver.get(_page(flow, endorse="http://127.0.0.1:9/"))
    driver.find_element(By.ID, "connect").click()
    _wait_state(driver, "error")
    assert "https" in driver.find_element(By.ID, "status").text
    assert flow.tokens_issued() == 0


def test_auto_posted_redirect_reaches_the_exchange_service(endorse, ca, base_settings, exchange_server, browser_factory):
    """``redirect_delivery = "post"``: Chromium runs the emulator's page, whose form posts
    ``soracom_endorse_token`` to the exchange service by itself, and lands on its answer."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server = exchange_server(base_settings)
    endorse.authorized_redirects = (server.exchange_url,)
    endorse.redirect_delivery = "post"
    driver = browser_factory([spki_sha256(leaf(ca, endorse))])
    driver.get(f"{endorse.url}/?redirect_url={quote(server.exchange_url, safe='')}")
    WebDriverWait(driver, 30).until(lambda d: d.current_url.startswith(server.exchange_url))
    answer = json.loads(driver.find_element(By.TAG_NAME, "body").text)
    assert answer["Imsi"] == endorse.default_imsi and "SessionToken" in answer
    assert [r["method"] for r in server.records() if r.get("status") == 200] == ["POST"]
