"""Benchmark: the cache-hit path and parallel cold calls.

1. A cache hit of ``gw credential-process`` against ``python -c pass`` in the same
   venv, runs interleaved so both see the same machine state; prints the median
   ratio (target <= 1.25) and gw's peak RSS (target <= 20 MiB).
2. 32 parallel ``gw credential-process`` calls on a cold cache: upstream fetches
   (must be 1), MFA prompts (must be 1) and wall time against one cold call.

Run by ``make bench`` with ``--gw-venv .venv-bench`` (a regular, non-editable
install: an editable install adds an import hook to every Python start-up).
moto and the emulators run in this process, from the development venv.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, bytes]:
    """Wall time (s) and stdout of one run."""
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, stdin=subprocess.DEVNULL, start_new_session=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr.decode()}")
    return elapsed, proc.stdout


def peak_rss_kib(argv: list[str], env: dict[str, str]) -> int | None:
    """Peak RSS of one run, from GNU time (a small parent: a fork of this big
    process would count its own pages in the child's maximum)."""
    gnu_time = "/usr/bin/time"
    if not os.path.exists(gnu_time):
        return None
    proc = subprocess.run([gnu_time, "-f", "%M", *argv], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, start_new_session=True)
    return int(proc.stderr.strip().splitlines()[-1])


def setup(root: Path, moto_url: str, ca_path: str, askpass: Path, akid: str, secret: str, gw: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GW_", "XDG_"))}
    env.update(HOME=str(root), GW_HOME=str(root / "state"), GW_CONFIG=str(root / "config.toml"),
               AWS_ENDPOINT_URL=moto_url, AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
    (root / "config.toml").write_text(f"""
[settings]
ca_bundle = "{ca_path}"
askpass = "{askpass}"

[profiles.bench]
steps = [
  {{ use = "aws-keys", access_key_id = "vault:akid", secret_access_key = "vault:secret" }},
  {{ use = "assume-role", role_arn = "arn:aws:iam::123456789012:role/Bench", mfa_serial = "arn:aws:iam::123456789012:mfa/bench", mfa_code = "prompt" }},
]
""")
    for name, value in (("akid", akid), ("secret", secret)):
        subprocess.run([gw, "vault", "set", name], input=value.encode(), env=env, check=True,
                       capture_output=True, start_new_session=True)
    return env


CRYPTO_PROBE = "import sys; sys.path.append({lib!r}); from cryptography.hazmat.bindings._rust import openssl"
# What no hit that decrypts with cryptography can avoid: its compiled binding, AES-GCM set up once
# (OpenSSL's first cipher fetch), and nothing else; ending as a hit does (no interpreter teardown).
FLOOR_PROBE = ("import gc; gc.disable(); import sys, posix; sys.path.append({lib!r}); "
               "from cryptography.hazmat.bindings._rust import openssl; openssl.aead.AESGCM(bytes(32)); posix._exit(0)")


def site_packages(python: str) -> str:
    """The venv's site-packages, where the launcher looks for gw."""
    out = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def bench_hit(gw: str, python: str, env: dict[str, str], runs: int) -> dict[str, float]:
    timed([gw, "credential-process", "--profile", "bench"], env)  # the cold fetch fills the cache
    for _ in range(3):  # warm the page cache for both
        timed([python, "-c", "pass"], env)
        timed([gw, "credential-process", "--profile", "bench"], env)
    base, hit, ratios = [], [], []
    # where the time goes, in the same interleaved runs: the launcher's interpreter start-up alone,
    # and with the one compiled module a hit needs (cryptography's binding, for AES-GCM)
    lib = site_packages(python)
    floor = FLOOR_PROBE.format(lib=lib)
    parts = {"python -I -S -c pass": [python, "-I", "-S", "-c", "pass"],
             "sh + python -I -S -c pass": ["/bin/sh", "-c", f'exec "{python}" -I -S -c pass'],
             "python -I -S + cryptography binding": [python, "-I", "-S", "-c", CRYPTO_PROBE.format(lib=lib)],
             "floor: binding + AESGCM, no teardown": [python, "-I", "-S", "-c", floor],
             "floor through sh (the launcher's hop)": ["/bin/sh", "-c", f'exec "{python}" -I -S -c "{floor}"']}
    part_times: dict[str, list[float]] = {name: [] for name in parts}
    for _ in range(runs):
        b, _ = timed([python, "-c", "pass"], env)
        h, out = timed([gw, "credential-process", "--profile", "bench"], env)
        json.loads(out)
        base.append(b)
        hit.append(h)
        ratios.append(h / b)
        for name, argv in parts.items():
            part_times[name].append(timed(argv, env)[0] / b)
    rss = [peak_rss_kib([gw, "credential-process", "--profile", "bench"], env) for _ in range(5)]
    rss_pass = peak_rss_kib([python, "-c", "pass"], env)
    return {
        "runs": runs,
        "python_pass_median_ms": statistics.median(base) * 1000,
        "cache_hit_median_ms": statistics.median(hit) * 1000,
        "ratio_median": statistics.median(ratios),
        "ratio_of_medians": statistics.median(hit) / statistics.median(base),
        "parts_ratio_median": {name: statistics.median(values) for name, values in part_times.items()},
        "peak_rss_mib": max(rss) / 1024 if None not in rss else None,  # type: ignore[operator]
        "python_pass_rss_mib": rss_pass / 1024 if rss_pass else None,
    }


def bench_parallel(gw: str, env: dict[str, str], moto, askpass_log: Path, clients: int = 32) -> dict[str, float]:
    from gw.store import Store

    cache = Path(Store(str(Path(env["GW_HOME"]) / "cache"), os.path.abspath(env["GW_CONFIG"])).path("bench"))
    cache.unlink(missing_ok=True)
    before = moto.count("AssumeRole")
    single, _ = timed([gw, "credential-process", "--profile", "bench"], env)
    cache.unlink()
    askpass_log.write_text("")
    fetches_before = moto.count("AssumeRole")
    start = time.perf_counter()
    procs = [subprocess.Popen([gw, "credential-process", "--profile", "bench"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True)
             for _ in range(clients)]
    outputs = [p.communicate() for p in procs]
    wall = time.perf_counter() - start
    ok = sum(1 for p, (out, _) in zip(procs, outputs, strict=True) if p.returncode == 0 and json.loads(out)["Version"] == 1)
    return {
        "clients": clients,
        "ok": ok,
        "upstream_fetches": moto.count("AssumeRole") - fetches_before,
        "mfa_prompts": askpass_log.read_text().count("\n"),
        "one_cold_call_s": single,
        "parallel_wall_s": wall,
        "wall_vs_one_cold": wall / single,
        "single_fetch_calls": fetches_before - before,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gw-venv", default=str(Path(sys.executable).parent.parent), help="venv holding gw")
    parser.add_argument("--runs", type=int, default=41)
    parser.add_argument("--hit-only", action="store_true", help="only the cache-hit part (no parallel cold calls)")
    args = parser.parse_args()
    venv = Path(args.gw_venv).resolve()
    gw, python = str(venv / "bin" / "gw"), str(venv / "bin" / "python")

    from gw_emulators.aws import MotoStack
    from gw_emulators.tls import LocalCA

    with tempfile.TemporaryDirectory(prefix="gw-bench-") as tmp, MotoStack() as moto:
        root = Path(tmp)
        ca = LocalCA(root / "ca")
        log = root / "askpass.log"
        askpass = root / "askpass.sh"
        askpass.write_text(f'#!/bin/sh\necho "$1" >> "{log}"\necho 123456\n')
        askpass.chmod(0o700)
        akid, secret = moto.create_user("bench-user")
        env = setup(root, moto.url, str(ca.ca_path), askpass, akid, secret, gw)
        hit = bench_hit(gw, python, env, args.runs)
        parallel = None if args.hit_only else bench_parallel(gw, env, moto, log)

    results = {"gw_venv": str(venv), "cache_hit": hit, "parallel_cold": parallel,
               "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "hot_path.json").write_text(json.dumps(results, indent=2))

    print(f"cache hit vs python -c pass ({hit['runs']} interleaved runs, venv {venv.name})")
    print(f"  python -c pass        median {hit['python_pass_median_ms']:7.1f} ms")
    print(f"  gw cache hit          median {hit['cache_hit_median_ms']:7.1f} ms")
    print(f"  ratio (median of per-pair ratios) {hit['ratio_median']:.2f}   target <= 1.25")
    for name, ratio in hit["parts_ratio_median"].items():
        print(f"  {name:<36} {ratio:.2f} x python -c pass (median of per-pair ratios)")
    if hit["peak_rss_mib"] is not None:
        print(f"  peak RSS of gw        {hit['peak_rss_mib']:.1f} MiB   target <= 20 MiB"
              f"   (python -c pass: {hit['python_pass_rss_mib']:.1f} MiB)")
    else:
        print("  peak RSS: /usr/bin/time (GNU time) not installed, not measured")
    if parallel is None:
        return
    print(f"{parallel['clients']} parallel cold calls")
    print(f"  succeeded             {parallel['ok']}/{parallel['clients']}")
    print(f"  upstream fetches      {parallel['upstream_fetches']}   (must be 1)")
    print(f"  MFA prompts           {parallel['mfa_prompts']}   (must be 1)")
    print(f"  wall time             {parallel['parallel_wall_s']:.2f} s vs one cold call {parallel['one_cold_call_s']:.2f} s"
          f" ({parallel['wall_vs_one_cold']:.1f}x)")
    if parallel["upstream_fetches"] != 1 or parallel["mfa_prompts"] != 1 or parallel["ok"] != parallel["clients"]:
        raise SystemExit("parallel cold calls: expected exactly one fetch and one prompt, all calls served")


if __name__ == "__main__":
    main()
