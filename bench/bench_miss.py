"""Benchmark: a cache miss from process start to the first byte an upstream receives (issue 20, target 2).

Run as ``python bench/bench_miss.py [--gw-venv .venv-bench] [--runs N] [--profile-dir DIR]`` with the
project's venv python. Each upstream is a stub on 127.0.0.1 over HTTPS (a throwaway LocalCA, given to
gw as ``settings.ca_bundle``) that answers at once and notes ``time.monotonic()`` (one clock for every
process on the machine) as soon as the first byte of a request can be read (``peek`` on the
connection, after the TLS handshake: the first byte of the HTTP request, not of the ClientHello).
The bench notes ``time.monotonic()`` just before it starts ``gw credential-process``, so
``first byte`` = upstream's note - that start; ``wall`` is the whole process.

Profiles (each run removes the profile's cache entry, so every run is a miss):

* ``cognito``: ``cognito-m2m`` (client credentials) against a stub token endpoint (``gw token``);
* ``sts``: ``aws-keys -> assume-role`` against a stub STS answering AssumeRole;
* ``krypton``: ``krypton`` with a stored Krypton session (the SIM's IMSI is read, then one
  signed call) through the real pcscd and a VirtualUsim in the vpcd reader, answering each APDU
  after ``--apdu-delay`` ms (default 0: the card answers at once too; the APDUs are counted
  and their time at that delay is printed). The upstream is the Krypton emulator (the note is
  taken when its handler starts). Skipped when pcscd, vpcd or pyscard are missing.

``python -c pass`` in the same venv is measured in the same loop. ``--profile-dir DIR`` also
writes, per profile, ``-X importtime`` output (``--profile-runs`` runs; the medians of the total
and of each top-level import's cumulative time are printed; with the Krypton profile the
connection thread imports ``ssl`` beside the main thread, which blurs its split) and a cProfile
(``.pstats`` and a text top list) of one miss. Writes bench/results/miss.json.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
ROLE = "arn:aws:iam::123456789012:role/bench"


class FirstByte:
    """Times at which a request's first byte could be read, from any connection (monotonic)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._lock = threading.Lock()

    def note(self, rfile: Any) -> None:
        try:
            if not rfile.peek(1):
                return
        except (OSError, ValueError):
            return
        now = time.monotonic()
        with self._lock:
            self.times.append(now)

    def first_after(self, start: float) -> float | None:
        with self._lock:
            later = [t for t in self.times if t >= start]
        return min(later) - start if later else None


def noting(handler_class: type, first: FirstByte) -> type:
    """``handler_class`` noting the first byte of every request before it reads it."""

    class Noting(handler_class):  # type: ignore[misc, valid-type]
        def handle_one_request(self) -> None:
            first.note(self.rfile)
            super().handle_one_request()

    return Noting


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    context: ssl.SSLContext

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            request = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        super().finish_request(request, client_address)


def _jwt(claims: dict[str, Any]) -> str:
    def part(doc: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'kid': 'bench'})}.{part(claims)}.c2lnbmF0dXJl"


class StubHandler(BaseHTTPRequestHandler):
    """Answers at once: a Cognito token (``/oauth2/token``) or an STS AssumeRole (``/``)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        now = int(time.time())
        if self.path.startswith("/oauth2/token"):
            token = _jwt({"sub": "bench", "exp": now + 3600, "iat": now, "scope": "bench/read",
                          "token_use": "access", "client_id": "bench"})
            body = json.dumps({"access_token": token, "expires_in": 3600, "token_type": "Bearer"}).encode()
            kind = "application/json"
        else:
            expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3600))
            body = (
                '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>'
                "<Credentials><AccessKeyId>ASIABENCHBENCHBENCH1</AccessKeyId>"
                "<SecretAccessKey>benchsecretbenchsecretbenchsecretbench1</SecretAccessKey>"
                f"<SessionToken>benchtoken{now}</SessionToken><Expiration>{expires}</Expiration></Credentials>"
                "<AssumedRoleUser><AssumedRoleId>AROABENCH:gw-bench</AssumedRoleId>"
                "<Arn>arn:aws:sts::123456789012:assumed-role/bench/gw-bench</Arn></AssumedRoleUser>"
                "</AssumeRoleResult><ResponseMetadata><RequestId>bench</RequestId></ResponseMetadata>"
                "</AssumeRoleResponse>"
            ).encode()
            kind = "text/xml"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Stub:
    """The stub upstream over HTTPS on 127.0.0.1, noting first bytes."""

    def __init__(self, ca: Any) -> None:
        self.first = FirstByte()
        self.httpd = _TLSServer(("127.0.0.1", 0), noting(StubHandler, self.first))
        issued = ca.issue("bench-stub")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(issued.cert_path, issued.key_path)
        self.httpd.context = context
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def importtime_top(stderr: str, n: int = 12) -> tuple[float, list[tuple[str, float]]]:
    """(total ms of import time, the ``n`` costliest top-level imports with their cumulative ms)."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own, cumulative, name = line[len("import time:"):].split("|")
        rows.append((int(own), int(cumulative), name.rstrip()))
    total = sum(own for own, _, _ in rows) / 1000
    top = [(name.strip(), cumulative / 1000) for _, cumulative, name in rows
           if len(name) - len(name.lstrip()) <= 1]  # depth 0: one space after the bar
    top.sort(key=lambda item: -item[1])
    return total, top[:n]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gw-venv", default=None, help="venv whose bin/gw and python are measured (default: this one)")
    parser.add_argument("--runs", type=int, default=15, help="runs per profile (default 15)")
    parser.add_argument("--apdu-delay", type=float, default=0.0, help="ms per APDU of the PC/SC card (default 0)")
    parser.add_argument("--profile-dir", default=None, help="write -X importtime and cProfile output here")
    parser.add_argument("--profile-runs", type=int, default=5,
                        help="-X importtime runs per profile; medians are printed (default 5)")
    parser.add_argument("--no-krypton", action="store_true", help="skip the Krypton profile")
    parser.add_argument("--only", choices=("cognito", "sts", "krypton"), help="measure this profile alone")
    parser.add_argument("--out", default=str(HERE / "results" / "miss.json"))
    args = parser.parse_args()
    bindir = Path(args.gw_venv).resolve() / "bin" if args.gw_venv else Path(sys.executable).parent
    gw, python = str(bindir / "gw"), str(bindir / "python")

    from contextlib import ExitStack

    from gw_emulators.tls import LocalCA

    with tempfile.TemporaryDirectory(prefix="gw-bench-miss-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        ca = LocalCA(root / "ca")
        stub = Stub(ca)
        stack.callback(stub.stop)
        firsts: dict[str, FirstByte] = {"cognito": stub.first, "sts": stub.first}
        config = (
            f'[settings]\nca_bundle = "{ca.ca_path}"\n\n'
            f'[profiles.cognito]\nsteps = [{{ use = "cognito-m2m", token_url = "{stub.url}/oauth2/token", '
            'client_id = "bench", client_secret = "env:BENCH_COGNITO_SECRET" }]\n\n'
            '[profiles.sts]\nsteps = [\n  { use = "aws-keys", access_key_id = "env:BENCH_KEY_ID", '
            'secret_access_key = "env:BENCH_SECRET_KEY" },\n'
            f'  {{ use = "assume-role", role_arn = "{ROLE}", endpoint = "{stub.url}", region = "us-east-1" }},\n]\n'
        )
        card = krypton = None
        if not args.no_krypton and args.only in (None, "krypton"):
            from bench_krypton import IMSI, OPC, READER, K, PcscCard, PcscUnavailable, make_emulator, pcsc_available

            if pcsc_available():
                try:
                    card = stack.enter_context(PcscCard(args.apdu_delay / 1000))
                except PcscUnavailable as exc:
                    print(f"note: {exc}; the Krypton profile is skipped", file=sys.stderr)
            else:
                print("note: no pcscd/vpcd/pyscard here; the Krypton profile is skipped", file=sys.stderr)
            if card is not None:
                from gw_emulators.aws import MotoStack

                moto = MotoStack().start()
                stack.callback(moto.stop)
                krypton = make_emulator(ca, moto.url)
                krypton.start()
                stack.callback(krypton.stop)
                krypton.add_subscriber(IMSI, bytes.fromhex(K), bytes.fromhex(OPC), sqn=0)
                firsts["krypton"] = FirstByte()
                httpd = krypton._httpd
                httpd.RequestHandlerClass = noting(httpd.RequestHandlerClass, firsts["krypton"])
                config += (
                    f'\n[profiles.krypton]\nsteps = [{{ use = "krypton", operation = "cognito-credentials", '
                    f'endpoint = "{krypton.url}", reader = "pcsc:{READER}" }}]\n'
                )
        (root / "config.toml").write_text(config)
        (root / "home").mkdir()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "GW_", "XDG_", "SORACOM_", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"))}
        env.update(HOME=str(root / "home"), GW_HOME=str(root / "gw-home"), GW_CONFIG=str(root / "config.toml"),
                   GW_QUIET="1", BENCH_COGNITO_SECRET="bench-client-secret", BENCH_KEY_ID="AKIABENCHBENCHBENCH1",
                   BENCH_SECRET_KEY="benchkeybenchkeybenchkeybenchkeybenchkey")
        cache = root / "gw-home" / "cache"
        profiles = [p for p in firsts if args.only in (None, p)]
        commands = {p: [gw, "token" if p == "cognito" else "credential-process", "--profile", p] for p in profiles}

        def run(argv: list[str], profile: str | None) -> tuple[float, float | None, int]:
            """(wall s, first byte s or None, APDUs) of one process."""
            if card is not None:
                card.usim.log.clear()
            started = time.monotonic()
            out = subprocess.run(argv, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
            wall = time.monotonic() - started
            if out.returncode != 0:
                raise SystemExit(f"{' '.join(argv)} failed: {out.stderr.strip()}")
            first = firsts[profile].first_after(started) if profile else None
            return wall, first, len(card.usim.log) if card is not None and profile == "krypton" else 0

        def miss(profile: str) -> None:
            for path in cache.glob(f"{profile}.*.gwc"):
                path.unlink()

        for profile in profiles:  # warm-up: OS file cache, and the stored Krypton session
            miss(profile)
            run(commands[profile], profile)
        wall: dict[str, list[float]] = {p: [] for p in [*profiles, "python -c pass"]}
        first_byte: dict[str, list[float]] = {p: [] for p in profiles}
        apdus: dict[str, list[int]] = {p: [] for p in profiles}
        for _ in range(args.runs):
            w, _f, _a = run([python, "-c", "pass"], None)
            wall["python -c pass"].append(w)
            for profile in profiles:
                miss(profile)
                w, f, a = run(commands[profile], profile)
                wall[profile].append(w)
                if f is not None:
                    first_byte[profile].append(f)
                apdus[profile].append(a)

        profiled: dict[str, Any] = {}
        if args.profile_dir:
            out_dir = Path(args.profile_dir)
            out_dir.mkdir(parents=True, exist_ok=True)
            for profile in profiles:
                totals, tops = [], []
                for _ in range(args.profile_runs):
                    miss(profile)
                    done = subprocess.run([python, "-I", "-S", "-X", "importtime", *commands[profile]], env=env,
                                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
                    total, top = importtime_top(done.stderr, n=1000)
                    totals.append(total)
                    tops.append(dict(top))
                (out_dir / f"{profile}.importtime.txt").write_text(done.stderr)
                total = statistics.median(totals)
                names = {name for found in tops for name in found}
                top = sorted(((name, statistics.median(found.get(name, 0.0) for found in tops)) for name in names),
                             key=lambda item: -item[1])[:14]
                miss(profile)
                stats = out_dir / f"{profile}.pstats"
                subprocess.run([python, "-I", "-S", "-m", "cProfile", "-o", str(stats), *commands[profile]], env=env, capture_output=True, stdin=subprocess.DEVNULL, check=True)
                import io
                import pstats

                text = io.StringIO()
                pstats.Stats(str(stats), stream=text).sort_stats("cumulative").print_stats(25)
                (out_dir / f"{profile}.cprofile.txt").write_text(text.getvalue())
                modules = sorted(line.split("|")[-1].strip() for line in done.stderr.splitlines()
                                 if line.startswith("import time:") and "cumulative" not in line)
                profiled[profile] = {
                    "import_ms": round(total, 1),
                    "top_imports_ms": [[name, round(ms, 1)] for name, ms in top],
                    "loads_requests": any(m == "requests" for m in modules),
                    "loads_urllib3": any(m == "urllib3" for m in modules),
                    "loads_boto3": any(m == "boto3" for m in modules),
                    "loads_botocore": any(m == "botocore" for m in modules),
                    "gw_plugins": sorted({m for m in modules if m.startswith("gw_plugins.")}),
                }

    python_median = statistics.median(wall["python -c pass"])
    results: dict[str, Any] = {
        "benchmark": "cache miss: process start -> first byte at the upstream (stub answering at once)",
        "gw": gw,
        "runs": args.runs,
        "apdu_delay_ms": args.apdu_delay,
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
                    "load_average": os.getloadavg()},
        "python_c_pass_ms_median": round(python_median * 1000, 1),
        "profiles": {},
    }
    print(f"cache miss, process start -> first upstream byte; {args.runs} interleaved runs per profile (ms); "
          f"load average {os.getloadavg()[0]:.1f}")
    head = f"{'profile':<16}{'first byte':>11}{'p90':>8}{'min':>8}{'wall':>8}{'APDUs':>7}{'card ms':>9}{'vs python':>11}"
    print(head)
    print("-" * len(head))
    for profile in profiles:
        fb = first_byte[profile]
        card_ms = statistics.median(apdus[profile]) * args.apdu_delay
        entry = {
            "first_byte_ms_median": round(statistics.median(fb) * 1000, 1),
            "first_byte_ms_p90": round(sorted(fb)[min(len(fb) - 1, round(0.9 * (len(fb) - 1)))] * 1000, 1),
            "first_byte_ms_min": round(min(fb) * 1000, 1),
            "wall_ms_median": round(statistics.median(wall[profile]) * 1000, 1),
            "apdus_per_run": sorted(set(apdus[profile])) if profile == "krypton" else [],
            "card_ms_at_delay": round(card_ms, 1),
            "first_byte_over_python_c_pass": round(statistics.median(fb) / python_median, 2),
            **({"profile": profiled[profile]} if profile in profiled else {}),
        }
        results["profiles"][profile] = entry
        print(f"{profile:<16}{entry['first_byte_ms_median']:>11}{entry['first_byte_ms_p90']:>8}"
              f"{entry['first_byte_ms_min']:>8}{entry['wall_ms_median']:>8}"
              f"{'/'.join(map(str, entry['apdus_per_run'])) or '-':>7}{entry['card_ms_at_delay']:>9}"
              f"{entry['first_byte_over_python_c_pass']:>11}")
    print(f"{'python -c pass':<16}{'':>11}{'':>8}{'':>8}{round(python_median * 1000, 1):>8}")
    print("first byte = process start -> the upstream can read the request's first byte (target <= 100 ms);")
    print("card ms = APDUs x --apdu-delay, the card's own share of a Krypton miss.")
    for profile, found in profiled.items():
        print(f"\n{profile}: {found['import_ms']} ms of imports (median of {args.profile_runs}); requests {found['loads_requests']}, urllib3 "
              f"{found['loads_urllib3']}, boto3 {found['loads_boto3']}, botocore {found['loads_botocore']}; "
              f"plugins {', '.join(found['gw_plugins']) or '-'}")
        for name, ms in found["top_imports_ms"]:
            print(f"  {name:<44}{ms:>8.1f} ms")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
