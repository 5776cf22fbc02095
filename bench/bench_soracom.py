"""Benchmark: soracom-cli with MFA through gw (issue 12 targets).

Run as ``python bench/bench_soracom.py [--runs N]`` with the project's venv python. It starts
a LocalCA and the SORACOM API emulator (HTTPS on 127.0.0.1) with an MFA root user (30 s
TOTP steps, as real accounts), writes a gw config in a temporary GW_HOME and puts the
soracom-cli stand-in (tests/plugins/soracom/soracom_cli_standin.py, modelled on soracom-cli's
published source) on PATH. It measures, with the real ``gw`` executable:

* ``sequential``: 10 ``gw soracom --profile P -- subscribers list`` calls in a row, cold
  cache: the number of ``/v1/auth`` calls and one-time codes (target: 1 and 1, no TOTP wait)
  and the wall time of each call;
* ``parallel``: 10 such calls started together on a cold cache (target: one ``/v1/auth``);
* ``overhead``: per-call wall time of ``gw soracom`` (cache hit: core/fastpath.py calls the
  runner of the recipe ``run_with`` left, no plugin loaded; soracom-cli talks to the user's
  forwarder daemon, which forwards to the emulator over warm TLS connections) against the
  stand-in called directly with ``--api-key K --api-token T`` (target: at most 25 % more),
  interleaved runs; medians in ms and their ratio; also the CPU time of each (gw and
  soracom-cli together, and with the daemon's share per call read from /proc), which a loaded
  machine does not distort as it does wall time;
* ``gw_alone``: gw's own share, ``gw soracom`` running ``/bin/true`` (``GW_SORACOM_CLI``)
  against ``/bin/true`` itself, and ``python -c pass`` of gw's interpreter for scale;
* ``profileCommand``: for contrast, 3 sequential ``soracom --profile`` calls through
  ``gw soracom-profile`` (each needs a fresh code: waits for the next 30 s step).
  Skipped with ``--quick``.

Prints a table and writes bench/results/soracom.json. ``--gw-venv DIR`` takes gw from another
venv: ``make bench`` passes ``.venv-bench`` (a regular install; an editable install's import
hook alone adds about 10 ms to every start of gw's Python).
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
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GW = str(Path(sys.executable).with_name("gw"))  # --gw-venv replaces it
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
PASSWORD, OPERATOR = "bench-Pa55word!", "OP0099999999"
EMAIL = "bench@example.com"  # sequential calls and the overhead figure
EMAIL_PARALLEL = "bench-parallel@example.com"  # another account: its first code needs no wait
PROFILE = "sora-bench"


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median_ms": round(statistics.median(values) * 1000, 1),
        "p90_ms": round(ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))] * 1000, 1),
        "min_ms": round(min(values) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
    }


def setup(tmp: Path, api_url: str, ca_path: str) -> dict[str, str]:
    sys.path.insert(0, str(ROOT))
    from tests.plugins.soracom import soracom_cli_standin

    bindir = tmp / "bin"
    soracom_cli_standin.install(bindir)
    home = tmp / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GW_", "SORACOM_", "XDG_"))}
    env.update(HOME=str(home), GW_HOME=str(tmp / "state"), GW_CONFIG=str(tmp / "config.toml"), GW_QUIET="1",
               PATH=f"{bindir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
               SSL_CERT_FILE=ca_path)
    (tmp / "config.toml").write_text(f'''[settings]
ca_bundle = "{ca_path}"

[profiles.{PROFILE}-keys]
steps = [{{ use = "soracom-keys", email = "{EMAIL}", password = "vault:pw", mfa_code = "totp:vault:seed" }}]

[profiles.{PROFILE}]
steps = [
  {{ use = "soracom-keys", email = "{EMAIL}", password = "vault:pw", mfa_code = "totp:vault:seed" }},
  {{ use = "soracom-auth", endpoint = "{api_url}", token_timeout = 3600 }},
]

[profiles.{PROFILE}-parallel]
steps = [
  {{ use = "soracom-keys", email = "{EMAIL_PARALLEL}", password = "vault:pw", mfa_code = "totp:vault:seed" }},
  {{ use = "soracom-auth", endpoint = "{api_url}", token_timeout = 3600 }},
]
''')
    for name, value in (("pw", PASSWORD), ("seed", SEED)):
        subprocess.run([GW, "vault", "set", name], input=value, text=True, env=env, check=True,
                       capture_output=True)
    return env


def children_cpu() -> float:
    """User + system CPU seconds of all finished child processes so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def daemon_cpu(state: str) -> float:
    """CPU seconds (user + system) so far of gw's forwarder daemons serving the home ``state``: not
    gw's waited-for children, so RUSAGE_CHILDREN misses them (read from /proc/PID/stat)."""
    total = 0.0
    marker = os.path.join(state, "run").encode()
    for pid in os.listdir("/proc"):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if not any(b"gw_plugins.soracom.daemon" in a for a in argv) or marker not in argv:
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except (OSError, ValueError):
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    return total


def gw_soracom(env: dict[str, str], profile: str = PROFILE) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run([GW, "soracom", "--profile", profile, "--", "subscribers", "list"], env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start, proc


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30, help="interleaved runs for the overhead figure")
    parser.add_argument("--quick", action="store_true", help="skip the slow profileCommand contrast")
    parser.add_argument("--gw-venv", help="venv holding the gw to measure (default: this one)")
    args = parser.parse_args()
    global GW
    if args.gw_venv:
        GW = str(Path(args.gw_venv).resolve() / "bin" / "gw")

    from gw_emulators.soracom_api import SoracomApiEmulator
    from gw_emulators.tls import LocalCA

    results: dict[str, object] = {"python": platform.python_version(), "machine": platform.machine(), "gw": GW,
                                  "load": list(os.getloadavg())}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        ca = LocalCA(tmp / "ca")
        api = SoracomApiEmulator(ca, mfa_seed=SEED, totp_period=30)
        api.add_root(EMAIL, PASSWORD, OPERATOR, mfa=True)
        api.add_root(EMAIL_PARALLEL, PASSWORD, OPERATOR, mfa=True)
        for i in range(3):
            api.add_subscriber(f"44010300000000{i}", operator_id=OPERATOR)
        api.start()
        try:
            env = setup(tmp, api.url, str(ca.ca_path))

            # 10 sequential calls on a cold cache
            times = []
            start = time.perf_counter()
            for _ in range(10):
                took, proc = gw_soracom(env)
                assert proc.returncode == 0, proc.stderr
                times.append(took)
            results["sequential"] = {"calls": 10, "auth_calls": api.calls["auth"],
                                     "codes_used": len(api.accepted_codes),
                                     "total_s": round(time.perf_counter() - start, 2),
                                     "first_call_ms": round(times[0] * 1000, 1),
                                     "later_calls": summary(times[1:])}

            # 10 parallel calls on a cold cache (another account, so its first code needs no wait)
            auth_before, codes_before = api.calls["auth"], len(api.accepted_codes)
            start = time.perf_counter()
            procs = [subprocess.Popen([GW, "soracom", "--profile", f"{PROFILE}-parallel", "--", "subscribers", "list"], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
                     for _ in range(10)]
            codes = [p.wait(timeout=180) for p in procs]
            for p in procs:
                p.communicate()
            results["parallel"] = {"calls": 10, "ok": codes.count(0), "auth_calls": api.calls["auth"] - auth_before,
                                   "codes_used": len(api.accepted_codes) - codes_before,
                                   "total_s": round(time.perf_counter() - start, 2)}

            # overhead of gw soracom (cache hit) over the stand-in with key and token
            token = json.loads(subprocess.run([GW, "soracom-token", "--profile", PROFILE], env=env,
                                              capture_output=True, text=True, check=True).stdout)
            direct_env = {**env, "SORACOM_ENDPOINT": token["endpoint"]}
            direct_cmd = ["soracom", "--api-key", token["apiKey"], "--api-token", token["token"],
                          "subscribers", "list"]
            via, direct, via_cpu, direct_cpu = [], [], [], []
            daemon_before = daemon_cpu(env["GW_HOME"])
            for _ in range(args.runs):
                before = children_cpu()
                took, proc = gw_soracom(env)
                via_cpu.append(children_cpu() - before)
                assert proc.returncode == 0, proc.stderr
                via.append(took)
                before = children_cpu()
                start = time.perf_counter()
                subprocess.run(direct_cmd, env=direct_env, capture_output=True, check=True, stdin=subprocess.DEVNULL)
                direct.append(time.perf_counter() - start)
                direct_cpu.append(children_cpu() - before)
            daemon_per_call = (daemon_cpu(env["GW_HOME"]) - daemon_before) / args.runs
            ratio = statistics.median(via) / statistics.median(direct)
            results["overhead"] = {"runs": args.runs, "gw_soracom": summary(via), "direct": summary(direct),
                                   "ratio": round(ratio, 3), "overhead_pct": round((ratio - 1) * 100, 1),
                                   "overhead_ms": round((statistics.median(via) - statistics.median(direct)) * 1000, 1),
                                   # CPU (user + system) of gw and soracom-cli together against soracom-cli alone:
                                   # what the call costs the machine, whatever else runs on it
                                   "cpu_gw_soracom": summary(via_cpu), "cpu_direct": summary(direct_cpu),
                                   "cpu_ratio": round(statistics.median(via_cpu) / statistics.median(direct_cpu), 3),
                                   # the forwarder daemon's share (it is no child the benchmark waits for)
                                   "cpu_daemon_per_call_ms": round(daemon_per_call * 1000, 1),
                                   "cpu_ratio_with_daemon": round((statistics.median(via_cpu) + daemon_per_call)
                                                                  / statistics.median(direct_cpu), 3)}

            # gw's own share: gw soracom exec'ing /bin/true, against /bin/true (and a bare Python start)
            true_env = {**env, "GW_SORACOM_CLI": "/bin/true"}
            true_cmd = [GW, "soracom", "--profile", PROFILE, "--", "subscribers", "list"]
            subprocess.run(true_cmd, env=true_env, capture_output=True, check=True, stdin=subprocess.DEVNULL)  # recipe
            python = str(Path(GW).with_name("python"))
            alone: dict[str, list[float]] = {"gw_soracom_true": [], "true": [], "python_pass": []}
            for _ in range(args.runs):
                for name, cmd, cmd_env in (("gw_soracom_true", true_cmd, true_env), ("true", ["/bin/true"], env),
                                           ("python_pass", [python, "-c", "pass"], env)):
                    start = time.perf_counter()
                    subprocess.run(cmd, env=cmd_env, capture_output=True, check=True, stdin=subprocess.DEVNULL)
                    alone[name].append(time.perf_counter() - start)
            results["gw_alone"] = {name: summary(values) for name, values in alone.items()}

            if not args.quick:
                out = subprocess.run([GW, "setup", "soracom", "--profile", f"{PROFILE}-keys", "--soracom-profile",
                                      "bench", "--endpoint", api.url], env=env, capture_output=True, text=True,
                                     check=False)
                assert out.returncode == 0, out.stderr
                times = []
                for _ in range(3):
                    start = time.perf_counter()
                    subprocess.run(["soracom", "--profile", "bench", "subscribers", "list"], env=env,
                                   capture_output=True, check=True, stdin=subprocess.DEVNULL)
                    times.append(round(time.perf_counter() - start, 2))
                results["profile_command"] = {"calls_s": times}
        finally:
            api.stop()

    print(json.dumps(results, indent=2))
    seq, par, ovh = results["sequential"], results["parallel"], results["overhead"]
    print(f"\n10 sequential: {seq['auth_calls']} /v1/auth, {seq['codes_used']} code(s), {seq['total_s']} s"  # type: ignore[index]
          f"\n10 parallel cold: {par['auth_calls']} /v1/auth, {par['ok']}/10 ok, {par['total_s']} s"  # type: ignore[index]
          f"\ncache hit: gw soracom {ovh['gw_soracom']['median_ms']} ms vs soracom-cli with key+token "  # type: ignore[index]
          f"{ovh['direct']['median_ms']} ms (medians): x{ovh['ratio']}, {ovh['overhead_pct']:+} %"  # type: ignore[index]
          f"; CPU x{ovh['cpu_ratio']} (x{ovh['cpu_ratio_with_daemon']} with the daemon's share)")  # type: ignore[index]
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "soracom.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
