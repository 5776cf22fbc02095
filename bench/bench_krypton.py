"""Benchmark: `gw credential-process` through SORACOM Krypton with an emulated SIM.

Run as ``python bench/bench_krypton.py [--runs N]`` with the project's venv python. It starts
moto (MotoStack), a LocalCA, the Krypton emulator (HTTPS on 127.0.0.1) and an emulated SIM
file (``reader = "emulated"``), writes a gw config in a temporary GW_HOME and times the real
``gw`` executable (the one beside ``sys.executable``) in four interleaved modes:

* ``cold``: full SIM flow - IMSI, keys API challenge, Milenage AUTHENTICATE, verify, signed
  Cognito call (moto mints STS credentials); the profile's cache entry AND the Krypton session
  state are removed before each run;
* ``warm-session``: Krypton session kept, profile cache removed (signed call only, no SIM handshake);
* ``cache-hit``: nothing removed;
* ``python -c pass``: interpreter start-up in the same venv, for reference.

Time spent inside the emulator's request handlers (including moto minting credentials) is
measured server-side; ``gw overhead`` = wall time - that upstream time. Prints a table and
writes bench/results/krypton.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
GW = str(Path(sys.executable).with_name("gw"))
IMSI = "440103123456789"
K = "465b5ce8b199b49faa5f0a2ee238a6bc"  # TS 35.207 test set 1
OPC = "cd63cb71954a9f4e48a5994e37a02baf"
PROFILE = "krypton-bench"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(values) * 1000, 1),
        "p90_ms": round(percentile(values, 0.9) * 1000, 1),
        "min_ms": round(min(values) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
    }


def make_emulator(ca, aws_endpoint: str):
    """A KryptonEmulator that adds up the time its handlers spend (the upstream's share)."""
    from gw_emulators.krypton import KryptonEmulator

    class TimedKrypton(KryptonEmulator):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.server_seconds = 0.0
            self._timing = threading.Lock()

        def dispatch(self, request):
            started = time.perf_counter()
            try:
                return super().dispatch(request)
            finally:
                with self._timing:
                    self.server_seconds += time.perf_counter() - started

    return TimedKrypton(ca, aws_endpoint=aws_endpoint)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per mode (default 10)")
    parser.add_argument("--out", default=str(HERE / "results" / "krypton.json"))
    args = parser.parse_args()

    from gw_emulators.aws import MotoStack
    from gw_emulators.tls import LocalCA

    with tempfile.TemporaryDirectory(prefix="gw-bench-krypton-") as tmp:
        root = Path(tmp)
        ca = LocalCA(root / "ca")
        moto = MotoStack().start()
        krypton = make_emulator(ca, moto.url)
        krypton.start()
        try:
            krypton.add_subscriber(IMSI, bytes.fromhex(K), bytes.fromhex(OPC), sqn=0)
            sim_file = root / "sim.json"
            sim_file.write_text(json.dumps({"imsi": IMSI, "k": K, "opc": OPC, "sqn": 0}))
            config = root / "config.toml"
            config.write_text(
                f'[settings]\nca_bundle = "{ca.ca_path}"\n\n[profiles.{PROFILE}]\n'
                f'steps = [{{ use = "krypton", operation = "cognito-credentials", endpoint = "{krypton.url}", '
                f'reader = "emulated", sim_file = "{sim_file}" }}]\n'
            )
            home = root / "home"
            home.mkdir()
            env = {
                k: v for k, v in os.environ.items()
                if not k.startswith(("AWS_", "GW_", "XDG_", "SORACOM_", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"))
            }
            env.update(HOME=str(home), GW_HOME=str(root / "gw-home"), GW_CONFIG=str(config), GW_QUIET="1")
            cache_dir = root / "gw-home" / "cache"

            def drop(pattern: str) -> None:
                for path in cache_dir.glob(pattern):
                    path.unlink()

            def run(argv: list[str]) -> tuple[float, float]:
                """(wall seconds, upstream seconds) of one process."""
                before = krypton.server_seconds
                started = time.perf_counter()
                out = subprocess.run(argv, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
                wall = time.perf_counter() - started
                if out.returncode != 0:
                    raise SystemExit(f"{' '.join(argv)} failed: {out.stderr.strip()}")
                return wall, krypton.server_seconds - before

            gw_argv = [GW, "credential-process", "--profile", PROFILE]
            modes = {
                "cold": lambda: (drop(f"{PROFILE}.*.gwc"), drop("_state.*session-*")),
                "warm-session": lambda: drop(f"{PROFILE}.*.gwc"),
                "cache-hit": lambda: None,
                "python -c pass": None,
            }
            run(gw_argv)  # warm up the OS file cache and the emulator's TLS / moto's STS
            wall: dict[str, list[float]] = {m: [] for m in modes}
            upstream: dict[str, list[float]] = {m: [] for m in modes}
            handshakes = {m: 0 for m in modes}
            for _ in range(args.runs):
                for mode, prepare in modes.items():
                    before = krypton.handshakes
                    if prepare is None:
                        w, u = run([sys.executable, "-c", "pass"])
                    else:
                        prepare()
                        w, u = run(gw_argv)
                    wall[mode].append(w)
                    upstream[mode].append(u)
                    handshakes[mode] += krypton.handshakes - before
        finally:
            krypton.stop()
            moto.stop()

    python_median = statistics.median(wall["python -c pass"])
    results: dict[str, object] = {
        "benchmark": "gw credential-process through SORACOM Krypton (emulated SIM)",
        "runs_per_mode": args.runs,
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "modes": {},
    }
    rows = []
    for mode in modes:
        own = [w - u for w, u in zip(wall[mode], upstream[mode])]
        entry = {
            "wall": summary(wall[mode]),
            "upstream_ms_median": round(statistics.median(upstream[mode]) * 1000, 1),
            "gw_overhead": summary(own),
            "gw_overhead_minus_python_startup_ms_median": round((statistics.median(own) - python_median) * 1000, 1),
            "sim_handshakes": handshakes[mode],
        }
        results["modes"][mode] = entry  # type: ignore[index]
        rows.append((mode, entry))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")

    print(f"gw credential-process via Krypton, emulated SIM, {args.runs} interleaved runs per mode (ms)")
    head = f"{'mode':<16}{'median':>8}{'p90':>8}{'upstream':>10}{'gw own':>8}{'own p90':>9}{'own-py':>8}{'SIM':>5}"
    print(head)
    print("-" * len(head))
    for mode, e in rows:
        print(
            f"{mode:<16}{e['wall']['median_ms']:>8}{e['wall']['p90_ms']:>8}{e['upstream_ms_median']:>10}"
            f"{e['gw_overhead']['median_ms']:>8}{e['gw_overhead']['p90_ms']:>9}"
            f"{e['gw_overhead_minus_python_startup_ms_median']:>8}{e['sim_handshakes']:>5}"
        )
    print("upstream = time inside the Krypton emulator (incl. moto minting STS credentials);")
    print("gw own = wall - upstream; own-py = gw own minus `python -c pass`. SIM = handshakes in all runs.")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
