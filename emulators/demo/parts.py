"""The demo's parts in order: each starts its services, then shows one of gw's jobs."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack

from . import aws, cognito, endorse, iot, iot_ws, krypton, soracom, sso
from .show import Demo

# (name, part): what `gw demo --only NAME` runs, in this order
PARTS: list[tuple[str, Callable[[Demo], None]]] = [
    ("aws", aws.part_aws),
    ("login", aws.part_login),
    ("soracom", soracom.part_soracom),
    ("krypton", krypton.part_krypton),
    ("cognito", cognito.part_cognito),
    ("iot", iot.part_iot),
    ("endorse", endorse.part_endorse),
    ("iot-ws", lambda demo: iot_ws.part_iot_ws(demo, profile="endorse-device")),
    ("sso", sso.part_sso),
]

# every service starts before any part runs (parts share them: the IoT data plane presigns with
# the Endorse profile's credentials), in this order
STARTS: list[Callable[[Demo, ExitStack], None]] = [
    aws.start_aws, soracom.start_soracom, krypton.start_krypton, cognito.start_cognito, iot.start_iot,
    iot_ws.start_iot_demo, endorse.start_endorse, sso.start_sso,
]


def start_services(demo: Demo, stack: ExitStack) -> None:
    for start in STARTS:
        start(demo, stack)
