"""Benchmark of the SORACOM Endorse exchange service: requests/s and p99 latency.

Everything runs on 127.0.0.1: the Endorse emulator (HTTPS key bucket), moto (STS) and the
real ``gw serve endorse-exchange`` (its HTTP front door), with ``--concurrency`` (default 200)
requests in flight from one client process (a keep-alive connection per client thread).

Two kinds of request, each measured three ways:

* ``http verify`` - POST /exchange with a token of a SIM outside ``allowed_imsis``: the
  service verifies it (signature, claims, replay store) and answers 403 - no STS call, so
  this is the verification alone, over HTTP.
* ``http exchange`` - the full exchange: verify + replay + AssumeRole in moto -> 200.

* ``burst, key cached`` - ``--bursts`` bursts of ``--concurrency`` simultaneous requests (new
  connections) against a service whose key cache is warm.
* ``burst, cold store`` - one such burst against each of ``--cold-services`` freshly started
  services, while the key cache is empty (one HTTPS fetch of the PEM serves the burst).
* ``sustained, key cached`` - ``--requests`` requests, ``--concurrency`` of them in flight.

Two in-process rows (``--inproc-concurrency``, default 20) give the verifier's own cost:
``verify in-process, key cached`` and ``verify in-process, cold store`` (an empty key
cache for every verification).

Usage: python bench/bench_endorse.py [--requests 1000] [--concurrency 200] [--bursts 3]
       [--cold-services 3] [--json]
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
    """Run ``calls`` on ``concurrency`` threads, every thread started before the clock starts."""
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

    with ThreadPoolExecutor(concurrency) as pool:
        ready = threading.Barrier(concurrency + 1)
        for _ in range(concurrency):
            pool.submit(ready.wait)
        ready.wait()
        started = time.perf_counter()
        list(pool.map(one, calls))
        wall = time.perf_counter() - started
    return {"name": name, "requests": len(calls), "concurrency": concurrency, "errors": errors,
            "rps": round(len(calls) / wall, 1), "p50_ms": round(statistics.median(latencies) * 1000, 2),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 2)}


def combine(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One row for several cold bursts: mean req/s and p50, the worst p99."""
    return {"name": name, "requests": sum(r["requests"] for r in runs), "concurrency": runs[0]["concurrency"],
            "errors": sum(r["errors"] for r in runs), "rps": round(statistics.mean(r["rps"] for r in runs), 1),
            "p50_ms": round(statistics.mean(r["p50_ms"] for r in runs), 2),
            "p99_ms": round(max(r["p99_ms"] for r in runs), 2)}


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


def stop_service(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per key-cached row")
    parser.add_argument("--concurrency", type=int, default=200, help="requests in flight against the HTTP service")
    parser.add_argument("--inproc-concurrency", type=int, default=20, help="threads for the in-process rows")
    parser.add_argument("--cold-services", type=int, default=3, help="fresh services (one burst each) per cold row")
    parser.add_argument("--bursts", type=int, default=3, help="bursts of --concurrency requests on a warm service")
    parser.add_argument("--gw", default=str(VENV_BIN / "gw"))
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    args = parser.parse_args()

    import requests

    from gw_emulators.aws import MotoStack
    from gw_emulators.endorse import EndorseEmulator
    from gw_emulators.tls import LocalCA
    from gw_plugins.endorse.verify import ExchangeError, KeyStore, Verifier

    results: list[dict[str, Any]] = []
    fetches: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="gw-bench-endorse-") as tmp, MotoStack() as moto:
        root = Path(tmp)
        ca = LocalCA(root / "ca")
        with EndorseEmulator(ca) as endorse:
            verify = str(ca.ca_path)
            outsider = "440109999999999"  # a SIM the service does not allow: verified, then 403
            endorse.add_sim(outsider)

            # -- in process: the verifier alone ------------------------------------------------
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
            results.append(measure("verify in-process, key cached", [verify_with(warm, t) for t in tokens],
                                   args.inproc_concurrency))
            cold_calls = [verify_with(Verifier(KeyStore(endorse.key_store_url, verify=verify)), t)
                          for t in tokens[: max(50, args.requests // 8)]]
            results.append(measure("verify in-process, cold store", cold_calls, args.inproc_concurrency))

            # -- over HTTP: gw serve endorse-exchange -------------------------------------------
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

            def post(url: str, token: str, expect: int) -> Callable[[], bool]:
                def call() -> bool:
                    session = getattr(local, "session", None)
                    if session is None:
                        session = local.session = requests.Session()
                    try:
                        return session.post(url, json={"token": token}, timeout=120).status_code == expect
                    except requests.RequestException:
                        local.session = None
                        return False
                return call

            scenarios = [("http verify", outsider, 403), ("http exchange", endorse.default_imsi, 200)]
            for label, imsi, expect in scenarios:
                before = endorse.calls["public-key"]
                proc, url = start_service(args.gw, config, env)
                try:
                    if not post(url, endorse.mint(imsi), expect)():  # warm the key cache (and the STS client)
                        raise SystemExit(f"{label}: the warm-up request did not answer {expect}")
                    warm_bursts = []
                    for _ in range(args.bursts):  # the same bursts as the cold row, on a warm service
                        burst = [post(url, endorse.mint(imsi), expect) for _ in range(args.concurrency)]
                        warm_bursts.append(measure(f"{label}, burst, key cached", burst, args.concurrency))
                    results.append(combine(f"{label}, burst, key cached", warm_bursts))
                    calls = [post(url, endorse.mint(imsi), expect) for _ in range(args.requests)]
                    results.append(measure(f"{label}, sustained, key cached", calls, args.concurrency))
                finally:
                    stop_service(proc)
                fetches[f"{label}, key cached"] = endorse.calls["public-key"] - before

                before = endorse.calls["public-key"]
                cold: list[dict[str, Any]] = []
                for _ in range(args.cold_services):
                    proc, url = start_service(args.gw, config, env)
                    try:
                        burst = [post(url, endorse.mint(imsi), expect) for _ in range(args.concurrency)]
                        cold.append(measure(f"{label}, burst, cold store", burst, args.concurrency))
                    finally:
                        stop_service(proc)
                results.append(combine(f"{label}, burst, cold store", cold))
                fetches[f"{label}, cold store"] = endorse.calls["public-key"] - before

    if args.json:
        print(json.dumps({"results": results, "key_fetches": fetches, "cpus": os.cpu_count()}, indent=2))
    else:
        print(f"{'scenario':<38}{'requests':>9}{'conc':>6}{'errors':>8}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
        for r in results:
            print(f"{r['name']:<38}{r['requests']:>9}{r['concurrency']:>6}{r['errors']:>8}{r['rps']:>10}"
                  f"{r['p50_ms']:>10}{r['p99_ms']:>10}")
        print("key fetches from the bucket: " + ", ".join(f"{k}: {v}" for k, v in fetches.items())
              + f"; CPUs: {os.cpu_count()}")
    return 1 if any(r["errors"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
