"""Load: the local service answers 200 concurrent exchanges over loopback with no error, and a
burst on a cold key store fetches the key once."""

from __future__ import annotations

import threading
import time

import requests


def test_200_concurrent_exchanges(endorse, base_settings, exchange_server):
    server = exchange_server(base_settings)
    tokens = [endorse.mint() for _ in range(200)]
    barrier = threading.Barrier(len(tokens), timeout=60)
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def exchange(token: str) -> None:
        session = requests.Session()
        barrier.wait()
        try:
            response = session.post(server.exchange_url, json={"token": token}, timeout=120)
            outcome = (response.status_code, response.json().get("Imsi", response.text))
        except requests.RequestException as exc:
            outcome = (0, type(exc).__name__)
        with lock:
            results.append(outcome)

    started = time.monotonic()
    threads = [threading.Thread(target=exchange, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join(150)
    elapsed = time.monotonic() - started
    assert len(results) == 200
    failures = [r for r in results if r[0] != 200]
    assert not failures, failures[:5]
    assert {imsi for _, imsi in results} == {endorse.default_imsi}
    # the key store was cold when the burst began: one fetch served all 200
    assert endorse.calls["public-key"] == 1
    assert elapsed < 120
