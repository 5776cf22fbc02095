"""``gw demo``: gw's main job, end to end, on local emulators.

Starts moto (STS) and gw's emulators on 127.0.0.1, writes a demo config into a temporary
directory, and runs the real ``gw`` executable against them the way the AWS SDKs, the SORACOM
CLI and a person would. Needs no account, no network and no hardware; cleans up after itself.

This package is a plugin (entry point ``demo``) that contributes the command. Its modules:
``show`` (the stage, part results, the summary), ``run`` (the command, ``--serve``), ``parts``
(the order), and one module per part, each importing the emulators it starts.
"""

from __future__ import annotations

from typing import Any

from gw.plugin import Command, hookimpl


def _configure(parser) -> None:
    from .parts import PARTS

    parser.add_argument("--only", action="append", choices=[name for name, _ in PARTS], help="run only these parts")
    parser.add_argument("--keep", action="store_true", help="keep the demo's temporary directory")
    parser.add_argument("--serve", action="store_true",
                        help="start the emulators and keep them running (with an env file for your shell) until Ctrl-C")


def _run(args, app) -> int:
    from .run import run_demo

    return run_demo(args, app)


@hookimpl
def gw_commands() -> list[Command]:
    return [Command(
        "demo", "run gw end to end against local emulators (no accounts needed)", _configure, _run,
        description=(
            "Starts moto (AWS STS/IAM) and gw's emulators (console federation, SORACOM API, Krypton,\n"
            "Cognito, AWS IoT, Endorse, IAM Identity Center) on 127.0.0.1 in a temporary directory, writes\n"
            "a demo config there, and runs the real gw, AWS CLI and boto3 against them part by part. Needs\n"
            "no account, no network and no hardware; exits non-zero when any part gets a wrong answer or\n"
            "cannot run (the closing summary says which and why)."
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
    from ..usim import EmulatedReader

    return [EmulatedReader()]
