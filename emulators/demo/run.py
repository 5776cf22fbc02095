"""``gw demo``: start the services, run the parts, sum up; or ``--serve`` them until Ctrl-C."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path

from .parts import PARTS, start_services
from .show import Demo, DemoFailed, run_part, summary, verdict


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
