"""Benchmark: `gw credential-process` through SORACOM Krypton, via the real pcscd or an emulated SIM.

Run as ``python bench/bench_krypton.py [--runs N] [--reader pcsc|emulated] [--apdu-delay MS]``
with the project's venv python. It starts moto (MotoStack), a LocalCA and the Krypton emulator
(HTTPS on 127.0.0.1), and a SIM:

* ``--reader pcsc`` (the default when pcscd and vsmartcard-vpcd are installed): a VirtualUsim
  inserted into the vpcd reader of the real pcscd (started by tests/pcsc/pcscd.sh when none
  runs, and stopped again), answering each APDU after ``--apdu-delay`` ms (default 40, like a
  real USB reader's T=0 exchange). gw reaches it through pyscard and pcscd, as it reaches a
  real SIM. The card counts the APDUs of each run;
* ``--reader emulated``: the demo plugin's in-process emulated SIM (no PC/SC, no delay).

It writes a gw config in a temporary GW_HOME and times the real ``gw`` executable (``--gw-venv``'s, else the one
beside ``sys.executable``) in four interleaved modes:

* ``cold``: full SIM flow - IMSI, keys API challenge, Milenage AUTHENTICATE, verify, signed
  Cognito call (moto mints STS credentials); the profile's cache entry AND the Krypton session
  state are removed before each run;
* ``warm-session``: Krypton session kept, profile cache removed (signed call only, no SIM handshake);
* ``cache-hit``: nothing removed;
* ``python -c pass``: interpreter start-up in the same venv, for reference.

For reference it prints what krypton-cli's APDU count (11 cold, 7 with a cached key:
endorse-client-go ``endorse/iso7816.go``) costs at the same per-APDU delay.

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
from typing import Any

HERE = Path(__file__).resolve().parent
IMSI = "440103123456789"
K = "465b5ce8b199b49faa5f0a2ee238a6bc"  # TS 35.207 test set 1
OPC = "cd63cb71954a9f4e48a5994e37a02baf"
PROFILE = "krypton-bench"
READER = "Virtual PCD 00 00"
PCSCD_SCRIPT = HERE.parent / "tests" / "pcsc" / "pcscd.sh"
GO_CLIENT_APDUS = {"cold": 11, "warm-session": 7, "cache-hit": 0}


def pcsc_available() -> bool:
    try:
        import smartcard  # noqa: F401
    except ImportError:
        return False
    return Path("/etc/reader.conf.d/vpcd").exists() and PCSCD_SCRIPT.exists()


class PcscUnavailable(Exception):
    """pcscd is installed but cannot be started here (e.g. not root)."""


class PcscCard:
    """A VirtualUsim in the vpcd reader of the system pcscd (started here if none runs)."""

    def __init__(self, apdu_delay: float) -> None:
        from gw_emulators.usim import VirtualUsim

        self.usim = VirtualUsim(IMSI, bytes.fromhex(K), bytes.fromhex(OPC), sqn=0, apdu_delay=apdu_delay)
        self.started_pcscd = False
        self.card = None
        self._lock: Any = None

    def __enter__(self) -> PcscCard:
        from gw_emulators.vpcd import VpcdCard

        self._lock = pcsc_lock()
        if subprocess.run(["sh", str(PCSCD_SCRIPT), "status"], capture_output=True, check=False).returncode != 0:
            out = subprocess.run(["sh", str(PCSCD_SCRIPT), "start"], capture_output=True, text=True, check=False)
            if out.returncode != 0:
                raise PcscUnavailable(f"cannot start pcscd: {out.stderr.strip() or out.stdout.strip()}")
            self.started_pcscd = True
        self.card = VpcdCard(self.usim).start()
        if not self.card.wait_connected(20):
            raise SystemExit("vpcd did not accept the virtual card")
        self._wait_for_imsi()
        return self

    def _wait_for_imsi(self, timeout: float = 20.0) -> None:
        from gw_plugins.krypton.sim import SimError, open_sim

        deadline = time.monotonic() + timeout
        while True:
            try:
                with open_sim(f"pcsc:{READER}") as sim:
                    if sim.imsi() == IMSI:
                        return
            except SimError as exc:
                if time.monotonic() > deadline:
                    raise SystemExit(f"pcscd never served the virtual card: {exc}") from None
            time.sleep(0.1)  # pcscd polls readers for new cards; nothing to wait on but time

    def __exit__(self, *exc: object) -> None:
        if self.card is not None:
            self.card.stop()
        if self.started_pcscd:
            subprocess.run(["sh", str(PCSCD_SCRIPT), "stop"], capture_output=True, check=False)
        self._lock.close()


def pcsc_lock(timeout: float = 900.0):
    """The test suite's PC/SC lock (``gw_emulators.vpcd.pcsc_lock``): one user of the one vpcd reader at a time."""
    from gw_emulators.vpcd import pcsc_lock as take

    handle = take(timeout)
    if handle is None:
        raise PcscUnavailable(f"another user kept the PC/SC lock for {timeout:.0f} s")
    return handle


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
    parser.add_argument("--reader", choices=("pcsc", "emulated"), default=None,
                        help="pcsc (default when pcscd + vpcd are installed) or emulated")
    parser.add_argument("--apdu-delay", type=float, default=40.0, help="ms per APDU in the PC/SC card (default 40)")
    parser.add_argument("--gw-venv", default=None,
                        help="venv whose bin/gw and python are measured (default: the one beside this python)")
    args = parser.parse_args()
    bindir = Path(args.gw_venv).resolve() / "bin" if args.gw_venv else Path(sys.executable).parent
    gw, python = str(bindir / "gw"), str(bindir / "python")
    reader = args.reader or ("pcsc" if pcsc_available() else "emulated")
    if reader == "pcsc" and not pcsc_available():
        raise SystemExit("--reader pcsc needs pyscard, pcscd and vsmartcard-vpcd (tests/pcsc/install.sh)")
    from contextlib import ExitStack

    from gw_emulators.aws import MotoStack
    from gw_emulators.tls import LocalCA

    with tempfile.TemporaryDirectory(prefix="gw-bench-krypton-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        card = None
        if reader == "pcsc":
            try:
                card = stack.enter_context(PcscCard(args.apdu_delay / 1000))
            except PcscUnavailable as exc:
                if args.reader == "pcsc":
                    raise SystemExit(str(exc)) from None
                print(f"note: {exc}; measuring with the emulated SIM instead", file=sys.stderr)
                reader = "emulated"
        reader_option = f'reader = "pcsc:{READER}"' if card else 'reader = "emulated", sim_file = "SIM"'

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
                f'{reader_option.replace("SIM", str(sim_file))} }}]\n'
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

            gw_argv = [gw, "credential-process", "--profile", PROFILE]
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
            apdus: dict[str, list[int]] = {m: [] for m in modes}
            trips: dict[str, list[int]] = {m: [] for m in modes}
            for _ in range(args.runs):
                for mode, prepare in modes.items():
                    before = krypton.handshakes
                    calls_before = sum(krypton.calls.values())
                    if card is not None:
                        card.usim.log.clear()
                    if prepare is None:
                        w, u = run([python, "-c", "pass"])
                    else:
                        prepare()
                        w, u = run(gw_argv)
                    wall[mode].append(w)
                    upstream[mode].append(u)
                    handshakes[mode] += krypton.handshakes - before
                    trips[mode].append(sum(krypton.calls.values()) - calls_before)
                    if card is not None and prepare is not None:
                        apdus[mode].append(len(card.usim.log))
        finally:
            krypton.stop()
            moto.stop()

    python_median = statistics.median(wall["python -c pass"])
    results: dict[str, object] = {
        "benchmark": f"gw credential-process through SORACOM Krypton ({reader} SIM)",
        "reader": reader,
        "apdu_delay_ms": args.apdu_delay if card is not None else 0,
        "runs_per_mode": args.runs,
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "modes": {},
    }
    rows = []
    for mode in modes:
        own = [w - u for w, u in zip(wall[mode], upstream[mode], strict=True)]
        # issue 20's overhead: wall - APDUs x delay (the card's own time) - upstream, per run
        card_s = [n * args.apdu_delay / 1000 for n in apdus[mode]] or [0.0] * len(own)
        overhead = [o - c for o, c in zip(own, card_s, strict=True)]
        entry = {
            "wall": summary(wall[mode]),
            "upstream_ms_median": round(statistics.median(upstream[mode]) * 1000, 1),
            "gw_overhead": summary(own),
            "gw_overhead_minus_python_startup_ms_median": round((statistics.median(own) - python_median) * 1000, 1),
            "sim_handshakes": handshakes[mode],
            "overhead_ms_median": round(statistics.median(overhead) * 1000, 1),
            "round_trips_per_run": sorted(set(trips[mode])),
        }
        if apdus[mode]:
            entry["apdus_per_run"] = sorted(set(apdus[mode]))
            entry["sim_ms_at_delay"] = round(statistics.median(apdus[mode]) * args.apdu_delay, 1)
            entry["krypton_cli_apdus"] = GO_CLIENT_APDUS[mode]
            entry["krypton_cli_sim_ms_at_delay"] = round(GO_CLIENT_APDUS[mode] * args.apdu_delay, 1)
        results["modes"][mode] = entry  # type: ignore[index]
        rows.append((mode, entry))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")

    where = f"PC/SC SIM via pcscd, {args.apdu_delay:g} ms per APDU" if card is not None else "emulated SIM"
    print(f"gw credential-process via Krypton, {where}, {args.runs} interleaved runs per mode (ms)")
    head = (f"{'mode':<16}{'median':>8}{'p90':>8}{'upstream':>10}{'gw own':>8}{'own p90':>9}{'own-py':>8}"
            f"{'SIM':>5}{'APDUs':>7}{'cli':>5}{'trips':>6}{'overhead':>10}")
    print(head)
    print("-" * len(head))
    for mode, e in rows:
        print(
            f"{mode:<16}{e['wall']['median_ms']:>8}{e['wall']['p90_ms']:>8}{e['upstream_ms_median']:>10}"
            f"{e['gw_overhead']['median_ms']:>8}{e['gw_overhead']['p90_ms']:>9}"
            f"{e['gw_overhead_minus_python_startup_ms_median']:>8}{e['sim_handshakes']:>5}"
            f"{'/'.join(map(str, e.get('apdus_per_run', []))) or '-':>7}{e.get('krypton_cli_apdus', '-'):>5}"
            f"{'/'.join(map(str, e['round_trips_per_run'])):>6}{e['overhead_ms_median']:>10}"
        )
    print("upstream = time inside the Krypton emulator (incl. moto minting STS credentials);")
    print("gw own = wall - upstream; own-py = gw own minus `python -c pass`. SIM = handshakes in all runs.")
    print("APDUs = per run through pcscd; cli = krypton-cli's count for the same fetch (iso7816.go).")
    print("trips = HTTPS calls to Krypton per run; overhead = wall - APDUs x delay - upstream (target <= 100 ms).")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
