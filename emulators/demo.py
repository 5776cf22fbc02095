"""``gw demo``: gw's main job, end to end, on local emulators.

Starts moto (STS) and gw's emulators on 127.0.0.1, writes a demo config into a
temporary directory, and runs the real ``gw`` executable against them the way
the AWS SDKs, the SORACOM CLI and a person would. Needs no account, no network
and no hardware; cleans up after itself.

This module is a plugin (entry point ``demo``) that contributes the command;
each part of the show is one function.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gw.plugin import Command, hookimpl

SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # the demo's AWS MFA seed (base32, 160 bits)
SORACOM_SEED = "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU"  # the demo SORACOM account's MFA seed


@dataclass
class Demo:
    """The running emulators, the demo's files and a console to narrate on."""

    root: Path
    gw: str
    console: Any
    env: dict[str, str] = field(default_factory=dict)
    services: dict[str, Any] = field(default_factory=dict)
    config_parts: list[str] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)  # vault entries the parts need
    results: list[PartResult] = field(default_factory=list)

    def gw_run(self, *args: str, input: str | None = None) -> tuple[subprocess.CompletedProcess, float]:
        start = time.perf_counter()
        result = subprocess.run(
            [self.gw, *args], env=self.env, input=input, capture_output=True, text=True, timeout=300,
            stdin=None if input is not None else subprocess.DEVNULL, start_new_session=True,
        )
        elapsed = time.perf_counter() - start
        if result.returncode != 0:
            raise DemoFailed(f"gw {' '.join(args)} failed: {result.stderr.strip()}")
        return result, elapsed

    def write_config(self) -> None:
        Path(self.env["GW_CONFIG"]).write_text("\n".join(self.config_parts))

    def step(self, title: str) -> None:
        self.console.rule(f"[bold]{title}")

    def show(self, text: str) -> None:
        self.console.print(text)

    def output(self, text: str) -> None:
        """Show a program's output literally (no rich markup), never broken inside a line."""
        from rich.markup import escape

        self.console.print(escape(text), soft_wrap=True)

    def command(self, line: str) -> None:
        """Show a command line whole: the terminal may fold it, gw never breaks it mid-argument."""
        from rich.markup import escape

        self.console.print(f"[cyan]$ {escape(line)}[/cyan]", soft_wrap=True)

    def upstream_calls(self) -> int:
        """Calls every emulator (and moto) has received so far."""
        total = 0
        for service in self.services.values():
            for counter in (getattr(service, "calls", None), getattr(getattr(service, "emulator", None), "calls", None)):
                if counter is not None and hasattr(counter, "values"):
                    total += sum(counter.values())
        return total


class DemoFailed(Exception):
    pass


class DemoSkipped(Exception):
    """A part that cannot run on this machine (the reason says what to install)."""


@dataclass
class PartResult:
    """One row of the closing summary."""

    name: str
    result: str  # "ok", "skipped: ...", "failed: ...", "not run"
    seconds: float = 0.0
    calls: int = 0


def run_part(demo: Demo, name: str, part: Callable[[Demo], None]) -> None:
    """Run one part, recording its result, time and upstream calls; DemoFailed propagates."""
    before, start = demo.upstream_calls(), time.perf_counter()

    def record(result: str) -> None:
        demo.results.append(PartResult(name, result, time.perf_counter() - start, demo.upstream_calls() - before))

    try:
        part(demo)
    except DemoSkipped as exc:
        demo.show(f"[yellow]skipped[/yellow]: {exc}")
        record(f"skipped: {exc}")
    except DemoFailed as exc:
        record(f"failed: {exc}")
        raise
    else:
        record("ok")


def summary(demo: Demo, planned: list[str]) -> None:
    """The closing table: part, result, time and upstream calls, every planned part included."""
    from rich.markup import escape
    from rich.table import Table

    done = {r.name for r in demo.results}
    rows = demo.results + [PartResult(name, "not run") for name in planned if name not in done]
    table = Table(title="gw demo: summary", title_justify="left")
    table.add_column("part")
    table.add_column("result")
    table.add_column("time", justify="right")
    table.add_column("upstream calls", justify="right")
    for row in rows:
        colour = "green" if row.result == "ok" else "red" if row.result.startswith("failed") else "yellow"
        first = escape(row.result.splitlines()[0] if row.result else "")
        shown = first if len(first) <= 60 else first[:57] + "..."
        timing = f"{row.seconds:.1f} s" if row.result != "not run" else "-"
        table.add_row(row.name, f"[{colour}]{shown}[/{colour}]", timing, str(row.calls) if row.result != "not run" else "-")
    demo.console.print(table)


def redact(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy with secret values shortened, for showing on screen."""
    shown = {}
    for key, value in doc.items():
        secret = any(word in key.lower() for word in ("secret", "token", "password", "key", "otp")) and key != "AccessKeyId"
        shown[key] = f"{value[:min(6, len(value) // 4)]}…({len(value)} chars)" if secret and isinstance(value, str) else value
    return shown


# -- the parts of the show -----------------------------------------------------------
def part_aws(demo: Demo) -> None:
    """credential_process cold and warm, boto3 through ~/.aws/config, MFA by TOTP."""
    moto = demo.services["moto"]
    demo.step("AWS: credential_process with an MFA-protected role")
    demo.show("Profile [bold]admin[/bold]: IAM user keys from gw's vault -> AssumeRole with a TOTP MFA code.")
    demo.command("gw credential-process --profile admin     # cold: STS call")
    cold, cold_time = demo.gw_run("credential-process", "--profile", "admin")
    doc = json.loads(cold.stdout)
    demo.console.print_json(json.dumps(redact(doc)))
    demo.command("gw credential-process --profile admin     # warm: from the encrypted cache")
    warm, warm_time = demo.gw_run("credential-process", "--profile", "admin")
    same = "same credentials" if warm.stdout == cold.stdout else "DIFFERENT credentials"
    demo.show(
        f"cold: [bold]{cold_time * 1000:.0f} ms[/bold] ({moto.count('AssumeRole')} AssumeRole call)   "
        f"warm: [bold]{warm_time * 1000:.0f} ms[/bold] ({same}, no STS call)"
    )

    demo.step("AWS: any SDK, through ~/.aws/config")
    demo.command("gw setup aws --profile admin")
    setup, _ = demo.gw_run("setup", "aws", "--profile", "admin", "--region", "us-east-1")
    demo.output(setup.stdout.strip())
    demo.command("python -c 'boto3.Session(profile_name=\"admin\").client(\"sts\").get_caller_identity()'")
    script = "import boto3; print(boto3.Session(profile_name='admin').client('sts').get_caller_identity()['Arn'])"
    result = subprocess.run([sys.executable, "-c", script], env=demo.env, capture_output=True, text=True,
                            timeout=120, start_new_session=True)
    if result.returncode != 0:
        raise DemoFailed(f"boto3 via credential_process failed: {result.stderr.strip()[-300:]}")
    demo.show(f"caller identity: [green]{result.stdout.strip()}[/green]")


def part_login(demo: Demo) -> None:
    """A console sign-in URL from the cached role credentials."""
    import requests

    federation = demo.services["federation"]
    demo.step("AWS console: gw login")
    demo.command("gw login --profile admin --print")
    result, elapsed = demo.gw_run("login", "--profile", "admin", "--print")
    url = result.stdout.strip()
    demo.show(f"{url[:90]}…  ({elapsed * 1000:.0f} ms)")
    answer = requests.get(url, allow_redirects=False, timeout=30, verify=demo.env["GW_DEMO_CA"])
    landing = answer.headers.get("Location", "")
    verdict = "[green]accepted[/green]" if answer.status_code == 302 else f"[red]refused ({answer.status_code})[/red]"
    demo.show(f"federation endpoint: {verdict}, redirects to {landing}")
    if answer.status_code != 302:
        raise DemoFailed("the federation emulator refused the login URL")
    session = federation.last_session
    demo.show(f"console session for [bold]{session.arn}[/bold], {session.duration // 60} min")


def part_soracom(demo: Demo) -> None:
    """SORACOM CLI profileCommand from 1Password (with MFA), and an API sign-in with a TOTP code."""
    import requests

    api = demo.services["soracom"]
    demo.step("SORACOM CLI: profileCommand, credentials and MFA code from 1Password")
    demo.command("gw setup soracom --profile soracom-cli --soracom-profile gw-demo")
    setup, _ = demo.gw_run("setup", "soracom", "--profile", "soracom-cli", "--soracom-profile", "gw-demo")
    demo.output(setup.stdout.strip())
    profile_file = Path(demo.env["SORACOM_PROFILE_DIR"]) / "gw-demo.json"
    command = json.loads(profile_file.read_text())["profileCommand"]
    demo.show(f"{profile_file.name}: [bold]profileCommand[/bold] = {command}")
    demo.show("Running it the way soracom-cli does (argv split, no shell, stdin /dev/null):")
    import shlex

    result = subprocess.run(shlex.split(command), env=demo.env, stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, timeout=120, start_new_session=True)
    if result.returncode != 0:
        raise DemoFailed(f"profileCommand failed: {result.stderr.strip()}")
    profile = json.loads(result.stdout)
    demo.console.print_json(json.dumps(redact(profile)))
    body = {"email": profile["email"], "password": profile["password"], "mfaOTPCode": profile["mfaOTPCode"]}
    answer = requests.post(f"{api.url}/v1/auth", json=body, timeout=30, verify=demo.env["GW_DEMO_CA"])
    verdict = "[green]signed in[/green]" if answer.status_code == 200 else f"[red]refused ({answer.status_code})[/red]"
    demo.show(f"POST /v1/auth with that profile, as soracom-cli would: {verdict}")
    if answer.status_code != 200:
        raise DemoFailed(f"the SORACOM API emulator refused the profile: {answer.text[:200]}")

    demo.step("SORACOM API: a cached session for scripts (SAM user, TOTP from gw's vault)")
    demo.command("gw soracom-token --profile soracom-api --format env")
    token, elapsed = demo.gw_run("soracom-token", "--profile", "soracom-api", "--format", "env")
    values = dict(line.removeprefix("export ").split("=", 1) for line in token.stdout.splitlines() if "=" in line)
    shown = {k: (v[:8] + "…" if k in ("SORACOM_API_KEY", "SORACOM_TOKEN") else v) for k, v in values.items()}
    for key, value in shown.items():
        demo.output(f"export {key}={value}")
    again, again_time = demo.gw_run("soracom-token", "--profile", "soracom-api", "--format", "json")
    session = json.loads(again.stdout)
    listing = requests.get(
        f"{api.url}/v1/subscribers", timeout=30, verify=demo.env["GW_DEMO_CA"],
        headers={"X-Soracom-API-Key": session["apiKey"], "X-Soracom-Token": session["token"]},
    )
    demo.show(
        f"sign-in {elapsed * 1000:.0f} ms, then {again_time * 1000:.0f} ms from the cache "
        f"({api.calls['auth']} /v1/auth calls in all); GET /v1/subscribers -> HTTP {listing.status_code}, "
        f"{len(listing.json()) if listing.ok else 0} SIM(s)"
    )


def part_krypton(demo: Demo) -> None:
    """A (software) SIM authenticates to Krypton: AWS credentials and a console login, no password."""
    import requests

    krypton = demo.services["krypton"]
    demo.step("SORACOM Krypton: the SIM becomes AWS credentials")
    demo.show("Profile [bold]device[/bold]: a SIM (emulated here; a USB reader or modem in real life) -> Krypton "
              "-> Cognito credentials.")
    demo.command("gw credential-process --profile device")
    cold, cold_time = demo.gw_run("credential-process", "--profile", "device")
    demo.console.print_json(json.dumps(redact(json.loads(cold.stdout))))
    demo.show(f"{cold_time * 1000:.0f} ms: {krypton.handshakes} SIM handshake, "
              f"{krypton.calls['aws/cognito/credentials']} credentials call")
    demo.gw_run("cache", "clear", "--profile", "device")
    demo.command("gw cache clear --profile device && gw credential-process --profile device")
    _, warm_time = demo.gw_run("credential-process", "--profile", "device")
    demo.show(f"{warm_time * 1000:.0f} ms: still {krypton.handshakes} handshake - the Krypton session "
              f"(keyId, CK) stays in gw's encrypted cache for its hour")
    demo.command("gw login --profile device --print")
    login, _ = demo.gw_run("login", "--profile", "device", "--print")
    answer = requests.get(login.stdout.strip(), allow_redirects=False, timeout=30, verify=demo.env["GW_DEMO_CA"])
    if answer.status_code != 302:
        raise DemoFailed("the federation emulator refused the Krypton credentials")
    demo.show(f"console sign-in URL [green]accepted[/green] for "
              f"{demo.services['federation'].last_session.arn}: no password, no MFA code typed")


def part_cognito(demo: Demo) -> None:
    """A machine with no person at it: Cognito client credentials for an API behind a JWT authorizer."""
    import requests

    api = demo.services["cognito_api"]
    demo.step("Cognito client credentials: a bearer token for an API")
    demo.show("Profile [bold]m2m[/bold]: OAuth 2.0 client-credentials grant against an (emulated) user pool.")
    demo.command('curl -H "$(gw token --profile m2m --format header)" API/items')
    header, cold = demo.gw_run("token", "--profile", "m2m", "--format", "header")
    name, _, value = header.stdout.strip().partition(": ")
    reply = requests.get(f"{api.url}/items", headers={name: value}, verify=demo.env["GW_DEMO_CA"], timeout=30)
    if reply.status_code != 200:
        raise DemoFailed(f"the API refused the token (HTTP {reply.status_code})")
    demo.output(reply.text.strip()[:200])
    _, warm = demo.gw_run("token", "--profile", "m2m", "--format", "header")
    pool = demo.services["cognito"]
    demo.show(f"first token: [bold]{cold * 1000:.0f} ms[/bold] ({pool.calls['token']} token request)   "
              f"again: [bold]{warm * 1000:.0f} ms[/bold] (cached, no request)")


def _part_iot(demo: Demo) -> None:
    """An AWS IoT device certificate (from the SIM, through Krypton) gets AWS credentials by mutual TLS."""
    from .iot import part_iot

    part_iot(demo)


def _part_endorse(demo: Demo) -> None:
    """SIM identity: an Endorse token exchanged for AWS credentials and an IoT WebSocket URL."""
    from .endorse import part_endorse

    part_endorse(demo)


PARTS: list[tuple[str, Callable[[Demo], None]]] = [
    ("aws", part_aws),
    ("login", part_login),
    ("soracom", part_soracom),
    ("krypton", part_krypton),
    ("cognito", part_cognito),
    ("iot", _part_iot),
    ("endorse", _part_endorse),
]


def _part_iot_ws(demo: Demo) -> None:
    """The Endorse profile's credentials presign an MQTT-over-WebSocket URL the IoT emulator accepts."""
    from .iot_data import part_iot_ws

    part_iot_ws(demo, profile="endorse-device")


PARTS.append(("iot-ws", _part_iot_ws))


def _part_sso(demo: Demo) -> None:
    """AWS IAM Identity Center: one sign-in, then a profile per account and role."""
    from .sso import part_sso

    part_sso(demo)


PARTS.append(("sso", _part_sso))


def admin_profile(federation_url: str) -> str:
    return f"""[profiles.admin]
description = "IAM user keys from the vault, then an MFA-protected role"
steps = [
  {{ use = "aws-keys", access_key_id = "vault:demo-akid", secret_access_key = "vault:demo-secret" }},
  {{ use = "assume-role", role_arn = "arn:aws:iam::123456789012:role/DemoAdmin", mfa_serial = "arn:aws:iam::123456789012:mfa/demo-user", mfa_code = "totp:vault:demo-mfa-seed" }},
]
login = {{ endpoint = "{federation_url}", issuer = "gw-demo" }}
"""


SORACOM_PROFILES = """[profiles.soracom-cli]
description = "SORACOM CLI root user: password and MFA code from 1Password"
steps = [
  {{ use = "onepassword", item = "SORACOM root", vault = "Private", produces = "soracom-credentials", fields = {{ email = "username", password = "password" }}, otp = true }},
]

[profiles.soracom-api]
description = "SORACOM API session of a SAM user, MFA code from the vault's TOTP seed"
steps = [
  {{ use = "soracom-keys", operator_id = "OP0000000001", username = "deploy", password = "vault:soracom-deploy", mfa_code = "totp:vault:soracom-mfa-seed" }},
  {{ use = "soracom-auth", endpoint = "{url}", token_timeout = 3600 }},
]
"""

KRYPTON_PROFILE = """[profiles.device]
description = "AWS credentials from the SIM via SORACOM Krypton (emulated SIM for the demo)"
steps = [
  {{ use = "krypton", operation = "cognito-credentials", reader = "emulated", sim_file = "{sim_file}", endpoint = "{url}" }},
]
login = {{ endpoint = "{federation}" }}
"""


def start_soracom(demo: Demo, stack: ExitStack) -> None:
    from .op_cli import install_op_shim
    from .soracom_api import SoracomApiEmulator

    api = SoracomApiEmulator(demo.services["ca"], mfa_seed=SORACOM_SEED)
    api.add_root("root@example.com", "demo-root-Pa55word", "OP0000000001", mfa=True)
    api.add_sam_user("OP0000000001", "deploy", "demo-deploy-Pa55word", mfa=True)
    api.add_subscriber("440103123456789", operator_id="OP0000000001")
    stack.enter_context(api)
    demo.services["soracom"] = api
    fixture = demo.root / "op-items.json"
    fixture.write_text(json.dumps({"items": [{
        "title": "SORACOM root", "vault": "Private",
        "fields": [
            {"id": "username", "label": "username", "type": "STRING", "value": "root@example.com"},
            {"id": "password", "label": "password", "type": "CONCEALED", "value": "demo-root-Pa55word"},
            {"id": "totp", "label": "one-time password", "type": "OTP", "value": SORACOM_SEED},
        ],
    }]}))
    fixture.chmod(0o600)
    shim = install_op_shim(demo.root / "bin", fixture)
    demo.env.update(GW_OP_PATH=str(shim), SORACOM_PROFILE_DIR=str(demo.root / "home" / ".soracom"))
    demo.config_parts.append(SORACOM_PROFILES.format(url=api.url))


def start_krypton(demo: Demo, stack: ExitStack) -> None:
    from .krypton import KryptonEmulator

    krypton = KryptonEmulator(demo.services["ca"], aws_endpoint=demo.services["moto"].url)
    imsi, k, opc = "440103123456789", os.urandom(16), os.urandom(16)
    krypton.add_subscriber(imsi, k, opc, sqn=0)
    stack.enter_context(krypton)
    demo.services["krypton"] = krypton
    sim_file = demo.root / "virtual-sim.json"
    sim_file.write_text(json.dumps({"imsi": imsi, "k": k.hex(), "opc": opc.hex(), "sqn": 0}))
    sim_file.chmod(0o600)
    demo.config_parts.append(KRYPTON_PROFILE.format(
        sim_file=sim_file, url=krypton.url, federation=demo.services["federation"].federation_url))


def start_cognito(demo: Demo, stack: ExitStack) -> None:
    from .cognito import demo_profile, start_cognito_demo

    pool, api, client = start_cognito_demo(demo.services["ca"])
    stack.callback(pool.stop)
    stack.callback(api.stop)
    demo.services.update(cognito=pool, cognito_api=api)
    demo.secrets["gw-demo-m2m-secret"] = client.secret or ""
    demo.config_parts.append(demo_profile(pool, client))


def start_services(demo: Demo, stack: ExitStack) -> None:
    from .aws import MotoStack
    from .federation import FederationEmulator
    from .tls import LocalCA

    ca = LocalCA(demo.root / "ca")
    demo.services["ca"] = ca
    moto = stack.enter_context(MotoStack())
    demo.services["moto"] = moto
    federation = FederationEmulator(ca, moto)
    stack.enter_context(federation)
    demo.services["federation"] = federation
    demo.env.update(AWS_ENDPOINT_URL=moto.url, GW_DEMO_CA=str(ca.ca_path))
    demo.config_parts.append(f'[settings]\nca_bundle = "{ca.ca_path}"\n')
    demo.config_parts.append(admin_profile(federation.federation_url))
    akid, secret = moto.create_user("demo-user")
    moto.create_role("DemoAdmin")
    demo.secrets.update({
        "demo-akid": akid, "demo-secret": secret, "demo-mfa-seed": SEED,
        "soracom-deploy": "demo-deploy-Pa55word", "soracom-mfa-seed": SORACOM_SEED,
    })
    start_soracom(demo, stack)
    start_krypton(demo, stack)
    start_cognito(demo, stack)
    from .endorse import start_endorse
    from .iot import start_iot

    start_iot(demo, stack)
    from .iot_data import start_iot_demo

    start_iot_demo(demo, stack)

    start_endorse(demo, stack)
    from .sso import start_sso

    start_sso(demo, stack)


def verdict(demo: Demo) -> int:
    """The closing line: finished only when every planned part ran; a skipped part makes it incomplete."""
    skipped = [r for r in demo.results if r.result.startswith("skipped")]
    if skipped:
        demo.console.rule(f"[bold yellow]demo incomplete: {len(skipped)} part(s) skipped "
                          f"({', '.join(r.name for r in skipped)}); see the summary for what to install")
        return 1
    demo.console.rule("[bold green]demo finished")
    return 0


def demo_environment(root: Path) -> dict[str, str]:
    """The environment the demo's programs run in: everything points into ``root``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GW_", "SORACOM_"))}
    env.update(
        HOME=str(root / "home"), GW_HOME=str(root / "state"), GW_CONFIG=str(root / "config.toml"),
        AWS_CONFIG_FILE=str(root / "home" / ".aws" / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(root / "home" / ".aws" / "credentials"),
        AWS_EC2_METADATA_DISABLED="true", AWS_DEFAULT_REGION="us-east-1",
    )
    (root / "home" / ".aws").mkdir(parents=True)
    return env


def run_demo(args, app) -> int:
    import importlib.util

    from rich.console import Console

    from gw.plugin import GwError

    if importlib.util.find_spec("moto") is None:
        raise GwError('gw demo needs moto: pip install "gw-credential-gateway[demo]" (make demo does this)')

    console = Console(highlight=False)
    root = Path(tempfile.mkdtemp(prefix="gw-demo-"))
    os.chmod(root, 0o700)
    demo = Demo(root=root, gw=app.gw_executable(), console=console, env=demo_environment(root))
    console.print("[bold]gw demo[/bold]: local emulators on 127.0.0.1, no accounts, no network, no hardware.")
    console.print(f"demo files in {root}" + ("" if args.keep else " (removed at the end)"))
    planned = [name for name, _ in PARTS if not args.only or name in args.only]
    try:
        with ExitStack() as stack:
            with console.status("starting moto (STS) and the emulators ..."):
                start_services(demo, stack)
                demo.write_config()
                for name, value in demo.secrets.items():
                    demo.gw_run("vault", "set", name, input=value)
            if args.serve:
                return serve(demo, keep=args.keep)
            try:
                for name, part in PARTS:
                    if name in planned:
                        run_part(demo, name, part)
            finally:
                summary(demo, planned)
        return verdict(demo)
    except DemoFailed as exc:
        console.print(f"[red]demo failed:[/red] {exc}", soft_wrap=True)
        return 1
    finally:
        if args.keep:
            console.print(f"kept {root}" + ("" if args.serve else
                          " (the emulators have stopped: gw demo --serve keeps them running)"))
        else:
            shutil.rmtree(root, ignore_errors=True)


def serve_environment(demo: Demo) -> dict[str, str]:
    """What a shell needs to use the running emulators with gw, the AWS CLI and soracom-cli."""
    ca = str(demo.services["ca"].ca_path)
    names = ("GW_CONFIG", "GW_HOME", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL",
             "AWS_DEFAULT_REGION", "AWS_EC2_METADATA_DISABLED", "SORACOM_PROFILE_DIR", "GW_OP_PATH")
    env = {name: demo.env[name] for name in names if name in demo.env}
    env.update(AWS_CA_BUNDLE=ca, SSL_CERT_FILE=ca)  # botocore; Go programs such as soracom-cli
    soracom = demo.services.get("soracom")
    if soracom is not None:
        env["SORACOM_ENDPOINT"] = soracom.url
    return env


def serve(demo: Demo, *, keep: bool = False) -> int:
    """``gw demo --serve``: keep every emulator running until Ctrl-C (or SIGTERM), then stop cleanly."""
    import shlex
    import signal
    import threading
    import tomllib

    profiles = []
    for profile in tomllib.loads(Path(demo.env["GW_CONFIG"]).read_text()).get("profiles", {}):
        try:  # every profile that yields AWS credentials gets its ~/.aws/config entry
            demo.gw_run("setup", "aws", "--profile", profile, "--region", "us-east-1")
        except DemoFailed:
            continue
        profiles.append(profile)
    env = serve_environment(demo)
    env_file = demo.root / "env.sh"
    env_file.write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(env.items())))
    env_file.chmod(0o600)
    console = demo.console
    console.rule("[bold]gw demo --serve: the emulators are running")
    for name, service in sorted(demo.services.items()):
        url = getattr(service, "url", None)
        if isinstance(url, str):
            console.print(f"  {name:<18} {url}", soft_wrap=True)
    console.print(f"\nIn another shell, point gw, the AWS CLI and soracom-cli at them:\n  source {env_file}",
                  soft_wrap=True)
    for line in env_file.read_text().splitlines():
        console.print(f"  {line}", soft_wrap=True, markup=False)
    console.print(f"\ngw config (add your own profiles here): {demo.env['GW_CONFIG']}", soft_wrap=True)
    console.print(f"AWS CLI profiles through gw: {', '.join(profiles)}, e.g.\n"
                  f"  aws sts get-caller-identity --profile {profiles[0] if profiles else 'admin'}", soft_wrap=True)
    console.print("Ctrl-C stops the emulators" + (" (files are kept)" if keep else "") + ".")
    console.file.flush()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # kept to the end: a second Ctrl-C cannot cut the clean-up short
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    console.print("stopping the emulators ...")
    return 0


def _configure(parser) -> None:
    parser.add_argument("--only", action="append", choices=[name for name, _ in PARTS], help="run only these parts")
    parser.add_argument("--keep", action="store_true", help="keep the demo's temporary directory")
    parser.add_argument("--serve", action="store_true",
                        help="start the emulators and keep them running (with an env file for your shell) until Ctrl-C")


@hookimpl
def gw_commands() -> list[Command]:
    return [Command(
        "demo", "run gw end to end against local emulators (no accounts needed)", _configure, run_demo,
        description=(
            "Starts moto (AWS STS/IAM) and gw's emulators (console federation, SORACOM API, Krypton,\n"
            "Cognito, AWS IoT, Endorse) on 127.0.0.1 in a temporary directory, writes a demo config there,\n"
            "and runs the real gw, AWS CLI and boto3 against them part by part. Needs no account, no\n"
            "network and no hardware; exits non-zero when any part gets a wrong answer."
        ),
        epilog=(
            "examples:\n"
            "  gw demo                          # every part\n"
            "  gw demo --only aws --only login  # MFA role credentials, then a console sign-in URL\n"
            "  gw demo --only iot --keep        # IoT certificates; keep the demo files to look at\n"
            "  gw demo --serve                  # keep the emulators up for your own profiles; Ctrl-C stops\n"
            "  make demo                        # installs the demo extras, then runs gw demo"
        ),
    )]


@hookimpl(optionalhook=True)  # the hook exists only while the krypton plugin is loaded
def gw_krypton_readers() -> list[Any]:
    """The krypton plugin's extension point: ``reader = "emulated"`` (a virtual SIM from ``sim_file``)."""
    from .usim import EmulatedReader

    return [EmulatedReader()]
