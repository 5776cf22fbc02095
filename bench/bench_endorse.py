"""Benchmark of the SORACOM Endorse exchange service: requests/s and p99 latency.

Everything runs on 127.0.0.1: the Endorse emulator (HTTPS key bucket), moto (STS) and the
real ``gw serve endorse-exchange``. Four figures:

* ``verify, key cached``   - in process: Verifier.verify with the key in the cache.
* ``verify, cold store``   - in process: every verification with an empty key cache
                             (one HTTPS fetch of the PEM from the bucket each time).
* ``exchange, key cached`` - HTTP POST /exchange to gw serve (verify + replay + AssumeRole in moto).
* ``exchange, cold store`` - the same against freshly started services, each hit by one
                             concurrent burst while its key cache is empty.

Usage: python bench/bench_endorse.py [--requests 400] [--concurrency 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

VENV_BIN = Path(sys.executable).parent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(name: str, calls: list[Callable[[], bool]], concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def one(call: Callable[[], bool]) -> None:
        nonlocal errors
        start = time.perf_counter()
        ok = call()
        elapsed = time.perf_counter() - start
        with lock:
            latencies.append(elapsed)
            errors += 0 if ok else 1

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, calls))
    wall = time.perf_counter() - started
    return {"name": name, "requests": len(calls), "concurrency": concurrency, "errors": errors,
            "rps": round(len(calls) / wall, 1), "p50_ms": round(statistics.median(latencies) * 1000, 2),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 2)}


def start_service(gw: str, config: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([gw, "serve", "endorse-exchange", "--config", str(config), "--listen", "127.0.0.1:0"],
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, start_new_session=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        proc.kill()
        raise SystemExit("gw serve endorse-exchange did not start")
    return proc, url + "/exchange"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--cold-services", type=int, default=3, help="fresh services for the cold exchange figure")
    parser.add_argument("--gw", default=str(VENV_BIN / "gw"))
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    args = parser.parse_args()

    import requests

    from gw_emulators.aws import MotoStack
    from gw_emulators.endorse import EndorseEmulator
    from gw_emulators.tls import LocalCA
    from gw_plugins.endorse.verify import ExchangeError, KeyStore, Verifier

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="gw-bench-endorse-") as tmp, MotoStack() as moto:
        root = Path(tmp)
        ca = LocalCA(root / "ca")
        with EndorseEmulator(ca) as endorse:
            verify = str(ca.ca_path)

            # -- in process --------------------------------------------------------------------
            warm = Verifier(KeyStore(endorse.key_store_url, verify=verify))
            warm.verify(endorse.mint())

            def verify_with(verifier: Verifier, token: str) -> Callable[[], bool]:
                def call() -> bool:
                    try:
                        verifier.verify(token)
                        return True
                    except ExchangeError:
                        return False
                return call

            tokens = [endorse.mint() for _ in range(args.requests)]
            results.append(measure("verify, key cached", [verify_with(warm, t) for t in tokens], args.concurrency))
            cold_calls = [verify_with(Verifier(KeyStore(endorse.key_store_url, verify=verify)), t)
                          for t in tokens[: max(50, args.requests // 4)]]
            results.append(measure("verify, cold store", cold_calls, args.concurrency))

            # -- through gw serve ----------------------------------------------------------------
            role = moto.create_role("bench-endorse-device")
            config = root / "exchange.toml"
            config.write_text(
                "[endorse_exchange]\n"
                f'key_store_url = "{endorse.key_store_url}"\nallowed_imsis = ["{endorse.default_imsi}"]\n'
                f'role_arn = "{role}"\nsts_endpoint = "{moto.url}"\nca_bundle = "{verify}"\n'
            )
            env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GW_"))}
            env.update(GW_HOME=str(root / "state"), GW_CONFIG=str(root / "gw.toml"), HOME=str(root),
                       AWS_ACCESS_KEY_ID="AKIABENCHEXCHANGE001", AWS_SECRET_ACCESS_KEY="bench-secret",
                       AWS_EC2_METADATA_DISABLED="true")
            (root / "gw.toml").write_text("")
            local = threading.local()

            def post(url: str, token: str) -> Callable[[], bool]:
                def call() -> bool:
                    session = getattr(local, "session", None)
                    if session is None:
                        session = local.session = requests.Session()
                    try:
                        return session.post(url, json={"token": token}, timeout=60).status_code == 200
                    except requests.RequestException:
                        return False
                return call

            proc, url = start_service(args.gw, config, env)
            try:
                post(url, endorse.mint())()  # warm the key cache and the STS client
                tokens = [endorse.mint() for _ in range(args.requests)]
                results.append(measure("exchange, key cached", [post(url, t) for t in tokens], args.concurrency))
            finally:
                proc.terminate()
                proc.wait(10)

            cold: list[dict[str, Any]] = []
            for _ in range(args.cold_services):
                proc, url = start_service(args.gw, config, env)
                try:
                    burst = [post(url, endorse.mint()) for _ in range(args.concurrency)]
                    cold.append(measure("exchange, cold store", burst, args.concurrency))
                finally:
                    proc.terminate()
                    proc.wait(10)
            results.append({
                "name": "exchange, cold store", "requests": sum(c["requests"] for c in cold),
                "concurrency": args.concurrency, "errors": sum(c["errors"] for c in cold),
                "rps": round(statistics.mean(c["rps"] for c in cold), 1),
                "p50_ms": round(statistics.mean(c["p50_ms"] for c in cold), 2),
                "p99_ms": round(max(c["p99_ms"] for c in cold), 2),
            })
            key_fetches = endorse.calls["public-key"]

    if args.json:
        print(json.dumps({"results": results, "key_fetches": key_fetches, "cpus": os.cpu_count()}, indent=2))
    else:
        print(f"{'scenario':<24}{'requests':>9}{'conc':>6}{'errors':>8}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
        for r in results:
            print(f"{r['name']:<24}{r['requests']:>9}{r['concurrency']:>6}{r['errors']:>8}{r['rps']:>10}"
                  f"{r['p50_ms']:>10}{r['p99_ms']:>10}")
        print(f"key fetches from the bucket: {key_fetches}; CPUs: {os.cpu_count()}")
    return 1 if any(r["errors"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
