"""Part ``iot``: a device certificate (from the SIM, through Krypton) gets AWS credentials by mutual TLS."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from ..iot import ACTIVE, IotCredentialsEmulator
from ..tls import LocalCA
from .show import DemoFailed


def start_iot(demo: Any, stack: Any) -> None:
    """Start the IoT credentials provider for ``gw demo``: a device certificate, a JITR CA,
    and two profiles (``iot-device``: certificate files; ``iot-sim``: Krypton bootstrap, when
    the demo runs the Krypton emulator with a virtual SIM at ``<root>/virtual-sim.json``)."""
    moto = demo.services["moto"]
    role_arn = moto.create_role("DemoIotDevice")
    refusals: dict[str, IotCredentialsEmulator] = {}
    # The demo's JITR back-end activates a certificate after two refused connections.
    iot = IotCredentialsEmulator(demo.services["ca"], demo.root / "iot", aws_endpoint=moto.url,
                                 clock=lambda: float(refusals["iot"].calls["refused-pending"]))
    refusals["iot"] = iot
    iot.add_role_alias("demo-device", role_arn)
    stack.enter_context(iot)
    demo.services["iot"] = iot
    device = iot.create_certificate("demo-device", thing_name="demo-sensor")
    demo.services["iot-jitr-ca"] = LocalCA(demo.root / "iot-jitr-ca", "demo device CA")
    iot.register_ca(demo.services["iot-jitr-ca"].ca_path, activation_delay=2)
    parts = [
        "[profiles.iot-device]",
        'description = "A device certificate exchanged for AWS credentials by the AWS IoT credentials provider"',
        (f'steps = [{{ use = "iot-certificate", endpoint = "{iot.endpoint}", role_alias = "demo-device", '
        f'thing_name = "demo-sensor", certificate = "{device.cert_path}", private_key = "{device.key_path}" }}]'),
    ]
    krypton = demo.services.get("krypton")
    sim_file = demo.root / "virtual-sim.json"
    if krypton is not None and sim_file.exists():
        iot.trust_issuer(demo.services["ca"].ca_path)  # Krypton's bootstrap certificates are ACTIVE
        parts += [
            "", "[profiles.iot-sim]",
            'description = "The SIM gets a certificate once (Krypton), the certificate gets AWS credentials"',
            (f'steps = [{{ use = "iot-certificate", endpoint = "{iot.endpoint}", role_alias = "demo-device", '
            f'bootstrap = {{ reader = "emulated", sim_file = "{sim_file}", endpoint = "{krypton.url}" }} }}]'),
        ]
    demo.config_parts.append("\n".join(parts) + "\n")


def _aws_cli_identity(demo: Any, profile: str) -> str:
    """``gw setup aws --profile P``, then the real AWS CLI's ``aws sts get-caller-identity --profile P``
    (credential_process runs gw): the caller's ARN. Any failure ends the demo (DemoFailed)."""
    demo.command(f"gw setup aws --profile {profile} --region us-east-1")
    setup, _ = demo.gw_run("setup", "aws", "--profile", profile, "--region", "us-east-1")
    demo.output(setup.stdout.strip())
    demo.command(f"aws sts get-caller-identity --profile {profile}")
    return _aws_cli_identity_quiet(demo, profile)


def _expect_arn(demo: Any, profile: str, arn: str, expected: str) -> None:

    if arn != expected:
        raise DemoFailed(f"profile {profile}: the AWS CLI ran as {arn}, expected {expected}")
    demo.show(f"caller identity: [green]{arn}[/green]")


def part_iot(demo: Any) -> None:
    """Device certificates: AWS credentials over mutual TLS for the real AWS CLI (through
    credential_process), a SIM-bootstrapped certificate, JITR. Fails (DemoFailed) on a wrong answer."""

    iot = demo.services["iot"]
    moto = demo.services["moto"]
    role = f"arn:aws:sts::{moto.account_id}:assumed-role/DemoIotDevice"
    demo.step("AWS IoT: a device certificate becomes AWS credentials for the AWS CLI")
    demo.show("Profile [bold]iot-device[/bold]: certificate + key -> mutual TLS to the IoT credentials provider "
              "-> role credentials, through credential_process.")
    before = iot.calls["credentials"]
    arn = _aws_cli_identity(demo, "iot-device")
    _expect_arn(demo, "iot-device", arn, f"{role}/demo-sensor")
    if iot.calls["credentials"] != before + 1:
        raise DemoFailed("the AWS CLI's credentials did not come from the IoT credentials provider")
    if "krypton" in demo.services and any("iot-sim" in p for p in demo.config_parts):
        krypton = demo.services["krypton"]
        demo.step("AWS IoT: the SIM gets a certificate once, the certificate gets AWS credentials")
        demo.show("Profile [bold]iot-sim[/bold]: SIM -> Krypton aws-iot-bootstrap (certificate + key) -> mutual TLS "
                  "-> role credentials, through credential_process.")
        bootstraps = krypton.calls["aws/iot/bootstrap"]
        known = set(iot.certificates)
        arn = _aws_cli_identity(demo, "iot-sim")
        made = set(iot.certificates) - known
        if len(made) != 1:
            raise DemoFailed(f"expected one certificate from the SIM bootstrap, the IoT endpoint saw {len(made)}")
        _expect_arn(demo, "iot-sim", arn, f"{role}/{made.pop()}")  # session named after the certificateId
        demo.command("gw cache clear --profile iot-sim && aws sts get-caller-identity --profile iot-sim")
        demo.gw_run("cache", "clear", "--profile", "iot-sim")
        again = _aws_cli_identity_quiet(demo, "iot-sim")
        if again != arn:
            raise DemoFailed(f"profile iot-sim: the second run was {again}, expected {arn}")
        count = krypton.calls["aws/iot/bootstrap"] - bootstraps
        if count != 1:
            raise DemoFailed(f"expected 1 Krypton bootstrap for two fetches, got {count}")
        demo.show(f"two fetches, {count} Krypton bootstrap: the SIM got the certificate once, "
                  "the certificate did the rest")
    ca = demo.services["iot-jitr-ca"]
    device = ca.issue("jitr-device", server=False)
    demo.show("Just-in-time registration: a certificate from the device's own CA is refused until "
              "the back-end activates it.")
    demo.command("gw iot register --certificate jitr-device.pem --key jitr-device.key "
                 f"--ca-certificate ca.pem --endpoint {iot.endpoint}")
    result, _ = demo.gw_run("iot", "register", "--certificate", str(device.cert_path), "--key",
                            str(device.key_path), "--ca-certificate", str(ca.ca_path), "--endpoint", iot.endpoint,
                            "--interval", "0.2", "--timeout", "30")
    demo.output(result.stdout.strip())
    if iot.status(device) != ACTIVE:
        raise DemoFailed("the JITR certificate is not ACTIVE after gw iot register")


def _aws_cli_identity_quiet(demo: Any, profile: str) -> str:
    """The caller ARN of ``aws sts get-caller-identity --profile P`` (already set up)."""
    import json
    import shutil
    import sys

    from .show import DemoFailed

    aws = shutil.which("aws", path=str(Path(sys.executable).parent)) or shutil.which("aws")
    if aws is None:
        raise DemoFailed("the AWS CLI is not installed (pip install awscli)")
    result = subprocess.run([aws, "sts", "get-caller-identity", "--profile", profile, "--output", "json"],
                            env=demo.env, capture_output=True, text=True, timeout=120, start_new_session=True,
                            stdin=subprocess.DEVNULL, check=False)
    if result.returncode != 0:
        raise DemoFailed(f"aws sts get-caller-identity --profile {profile} failed: {result.stderr.strip()[-300:]}")
    try:
        return str(json.loads(result.stdout)["Arn"])
    except (ValueError, KeyError, TypeError):
        raise DemoFailed(f"aws sts get-caller-identity --profile {profile} printed no caller ARN") from None
