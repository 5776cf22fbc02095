"""Fixtures for the Endorse tests: the Endorse emulator, a role in moto, and real exchange services.

``exchange_server(**settings)`` starts the real ``gw serve endorse-exchange`` in the test's
gw home and returns an :class:`ExchangeProcess` (its URL and its stderr log lines).
"""

from __future__ import annotations

import json
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import GwHome

SERVICE_KEYS = {"AWS_ACCESS_KEY_ID": "AKIAEXCHANGESERVICE01", "AWS_SECRET_ACCESS_KEY": "exchange-service-secret-key"}


@pytest.fixture
def endorse(ca):
    from gw_emulators.endorse import EndorseEmulator

    with EndorseEmulator(ca) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def device_role(moto) -> str:
    return moto.create_role("endorse-device", max_session_duration=43200)


def toml_value(value: Any) -> str:
    return json.dumps(value)  # JSON strings, ints and lists of strings are valid TOML


def write_settings(path: Path, settings: dict[str, Any]) -> Path:
    lines = ["[endorse_exchange]"] + [f"{k} = {toml_value(v)}" for k, v in settings.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class ExchangeProcess:
    process: subprocess.Popen
    url: str
    log: list[str] = field(default_factory=list)

    @property
    def exchange_url(self) -> str:
        return self.url + "/exchange"

    def post(self, token: str | None = None, **kwargs: Any) -> requests.Response:
        if token is not None:
            kwargs.setdefault("json", {"token": token})
        return requests.post(self.exchange_url, timeout=30, **kwargs)

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in list(self.log) if line.startswith("{")]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def start_exchange(home: GwHome, settings: dict[str, Any], name: str = "exchange") -> ExchangeProcess:
    config = write_settings(home.root / f"{name}.toml", settings)
    process = home.popen("serve", "endorse-exchange", "--config", str(config), "--listen", "127.0.0.1:0",
                         env=SERVICE_KEYS)
    assert process.stdout is not None and process.stderr is not None
    url = process.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        process.kill()
        raise AssertionError(f"gw serve endorse-exchange did not start: {url!r} {process.stderr.read()}")
    result = ExchangeProcess(process, url)

    def drain() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            result.log.append(line.rstrip("\n"))

    threading.Thread(target=drain, daemon=True).start()
    return result


@pytest.fixture
def base_settings(endorse, moto, device_role, ca) -> dict[str, Any]:
    return {
        "key_store_url": endorse.key_store_url,
        "allowed_imsis": [endorse.default_imsi],
        "role_arn": device_role,
        "sts_endpoint": moto.url,
        "region": "us-east-1",
        "iot_endpoint": "example-ats.iot.us-east-1.amazonaws.com",
        "ca_bundle": str(ca.ca_path),
        "allowed_origins": ["http://127.0.0.1:9"],
    }


@pytest.fixture
def exchange_server(gw_home):
    started: list[ExchangeProcess] = []

    def start(settings: dict[str, Any], name: str = "exchange") -> ExchangeProcess:
        server = start_exchange(gw_home, settings, name)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def fetch_token(endorse: Any, ca: Any, imsi: str | None = None, **params: str) -> str:
    """A token from the emulator over HTTPS, as a device would get it."""
    headers = {"X-Emulator-Imsi": imsi} if imsi else {}
    response = requests.get(endorse.url + "/", params=params, headers=headers, verify=str(ca.ca_path), timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["token"]


@dataclass
class LocalExchange:
    """An exchange service in this process behind its real HTTP front door (``make_server``):
    for tests that need the service's injectable clock or its real boto3 clients."""

    service: Any
    url: str
    log: list[str] = field(default_factory=list)

    @property
    def exchange_url(self) -> str:
        return self.url + "/exchange"

    def post(self, token: str, **kwargs: Any) -> requests.Response:
        return requests.post(self.exchange_url, json={"token": token}, timeout=30, **kwargs)


@pytest.fixture
def local_exchange(monkeypatch):
    """``local_exchange(settings, clock=None)`` starts a :class:`LocalExchange` on 127.0.0.1."""
    from gw_plugins.endorse.server import make_server
    from gw_plugins.endorse.service import ExchangeService
    from gw_plugins.endorse.settings import build

    for key, value in SERVICE_KEYS.items():  # the service's own AWS identity, as in gw serve
        monkeypatch.setenv(key, value)
    servers: list[Any] = []

    def start(settings: dict[str, Any], clock: Any = None) -> LocalExchange:
        log: list[str] = []
        kwargs = {"clock": clock} if clock is not None else {}
        service = ExchangeService(build(settings, "test"), log=log.append, **kwargs)
        httpd = make_server(service, "127.0.0.1", 0)
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        servers.append(httpd)
        return LocalExchange(service, f"http://127.0.0.1:{httpd.server_address[1]}", log)

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()
