"""SORACOM Endorse: SIM-authenticated tokens, exchanged for AWS credentials (docs/plugins/endorse.md).

Step types ``endorse`` (token from SORACOM Endorse) and ``endorse-exchange`` (token ->
AWS credentials or an AWS IoT WebSocket URL, kind ``iot-wss-url`` added by this plugin);
commands ``gw iot-url`` and ``gw serve endorse-exchange`` (the exchange service, also
deployable as an AWS Lambda function: docs/endorse-exchange.md).

Nothing heavy is imported here: requests, PyJWT, botocore load inside the step and
command functions.
"""

from __future__ import annotations

from typing import Any

from gw.plugin import (
    AWS,
    Command,
    Credential,
    Option,
    StepType,
    hookimpl,
)

from .client import ENDORSE_TOKEN, IOT_WSS_URL, EndorseToken, IotWssUrl


def _run_endorse(ctx: Any, options: dict[str, Any], upstream: Credential | None) -> Credential:
    from .client import run_endorse

    return run_endorse(ctx, options, upstream)


def _run_exchange(ctx: Any, options: dict[str, Any], upstream: Credential | None) -> Credential:
    from .client import run_exchange

    return run_exchange(ctx, options, upstream)


def _produces(options: dict[str, Any]) -> str:
    return IOT_WSS_URL if options.get("output") == "iot-wss" else AWS


def _check_endorse(options: dict[str, Any]) -> None:
    from .client import check_endorse

    check_endorse(options)


def _check_exchange(options: dict[str, Any]) -> None:
    from .client import check_exchange

    check_exchange(options)


@hookimpl
def gw_credential_kinds() -> list[type[Credential]]:
    return [EndorseToken, IotWssUrl]


@hookimpl
def gw_step_types() -> list[StepType]:
    return [
        StepType(
            name="endorse",
            run=_run_endorse,
            produces=ENDORSE_TOKEN,
            options={
                "endpoint": Option(str, default="https://endorse.soracom.io", help="SORACOM Endorse endpoint"),
                "verify": Option(bool, default=False, help="verify the token locally (signature, claims, nonce)"),
                "key_store_url": Option(str, help="public key bucket for verify (default SORACOM's)"),
                "leeway": Option(int, default=30, help="clock leeway in seconds for verify"),
            },
            help="a SORACOM Endorse token for this device's SIM (needs the SORACOM Air link)",
            check=_check_endorse,
        ),
        StepType(
            name="endorse-exchange",
            run=_run_exchange,
            produces=_produces,
            consumes=(ENDORSE_TOKEN,),
            options={
                "url": Option(str, required=True, help="the exchange service's /exchange URL"),
                "output": Option(str, default="aws", choices=("aws", "iot-wss"),
                                 help="aws: AWS credentials; iot-wss: a presigned AWS IoT WebSocket URL"),
                "region": Option(str, help="AWS_REGION for gw env/exec (default: the service's region)"),
            },
            help="exchange an Endorse token for AWS credentials or an AWS IoT WebSocket URL",
            check=_check_exchange,
        ),
    ]


def _configure_serve(parser: Any) -> None:
    from .server import configure

    configure(parser)


def _run_serve(args: Any, ctx: Any) -> int:
    from .server import run

    return run(args, ctx)


def _configure_iot_url(parser: Any) -> None:
    from .client import configure_iot_url

    configure_iot_url(parser)


def _run_iot_url(args: Any, ctx: Any) -> int:
    from .client import run_iot_url

    return run_iot_url(args, ctx)


@hookimpl
def gw_commands() -> list[Command]:
    return [
        Command(
            "iot-url",
            "print a presigned AWS IoT MQTT-over-WebSocket URL (wss://) for a profile",
            _configure_iot_url,
            _run_iot_url,
            description="Prints the wss:// URL of a profile ending in endorse-exchange with output = \"iot-wss\", "
                        "or presigns one with a profile's AWS credentials (--endpoint).",
            epilog="examples:\n  gw iot-url --profile device-mqtt\n"
                   "  gw iot-url --profile device --endpoint abc-ats.iot.us-east-1.amazonaws.com",
        ),
        Command(
            "endorse-exchange",
            "run the SORACOM Endorse exchange service locally (token -> AWS credentials)",
            _configure_serve,
            _run_serve,
            group="serve",
            description="Verifies SORACOM Endorse tokens and answers AWS credentials (STS AssumeRole) or a "
                        "presigned AWS IoT WebSocket URL. Settings: docs/endorse-exchange.md.",
            epilog="examples:\n  gw serve endorse-exchange --config exchange.toml\n"
                   "  gw serve endorse-exchange --config exchange.toml --listen 127.0.0.1:0",
        ),
    ]
