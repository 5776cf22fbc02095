"""Part ``iot-ws``: MQTT over WebSocket with a presigned URL, through the IoT data emulator to mosquitto."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..iot_data import IotStack, start_iot_stack
from .show import DemoFailed, DemoSkipped


def start_iot_demo(demo: Any, stack: Any) -> None:
    """Start the IoT stack for ``gw demo`` (``demo.services["iot-ws"]``; None without mosquitto).

    ``demo`` is a ``gw_emulators.demo.Demo`` whose ``services`` hold ``"ca"`` and ``"moto"``;
    ``stack`` an ExitStack that stops the stack at the end.
    """
    try:
        iot = start_iot_stack(demo.services["ca"], demo.services["moto"], directory=Path(demo.root) / "mosquitto")
    except FileNotFoundError:
        demo.services["iot-ws"] = None
        return
    stack.callback(iot.stop)
    demo.services["iot-ws"] = iot


def _redact_url(url: str) -> str:
    return re.sub(r"(X-Amz-(?:Security-Token|Signature)=)([^&]{0,6})[^&]*", r"\1\2…", url)


def part_iot_ws(demo: Any, profile: str = "endorse-device") -> None:
    """``gw iot-url`` presigns a wss:// URL with the profile's credentials; MQTT flows through it.

    A paho-mqtt client connects over WebSocket+TLS through the emulator (SigV4 checked) to
    mosquitto, and receives what a second client publishes on the broker.
    """
    import threading
    import uuid


    iot: IotStack | None = demo.services.get("iot-ws")
    demo.step("AWS IoT over WebSocket: MQTT with a presigned URL")
    if iot is None:
        raise DemoSkipped("mosquitto is not installed (make demo installs it as root with apt; "
                          "or apt-get install mosquitto)")
    try:
        import paho.mqtt.client as paho
    except ImportError:
        raise DemoFailed('this part needs paho-mqtt: pip install "gw-credential-gateway[demo]"') from None
    demo.command(f"gw iot-url --profile {profile} --endpoint {iot.endpoint}")
    result, _ = demo.gw_run("iot-url", "--profile", profile, "--endpoint", iot.endpoint)
    url = result.stdout.strip()
    if not url.startswith(f"wss://{iot.endpoint}/mqtt?"):
        raise DemoFailed("gw iot-url printed no wss:// URL for the IoT endpoint")
    demo.output(_redact_url(url))

    topic = f"demo/{uuid.uuid4().hex[:8]}"
    got = threading.Event()
    received: list[bytes] = []
    device = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="demo-device", transport="websockets")
    device.tls_set(ca_certs=str(demo.services["ca"].ca_path))
    device.ws_set_options(path=url[url.index("/mqtt"):])
    subscribed = threading.Event()
    device.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
    device.on_subscribe = lambda *a: subscribed.set()

    def on_message(client: Any, userdata: Any, message: Any) -> None:
        received.append(bytes(message.payload))
        got.set()

    device.on_message = on_message
    backend = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="demo-backend")
    try:
        device.connect("127.0.0.1", iot.emulator.port, keepalive=30)
        device.loop_start()
        if not subscribed.wait(15):
            raise DemoFailed("the MQTT session through the IoT emulator did not start")
        backend.connect(*iot.broker.address, keepalive=30)
        backend.loop_start()
        backend.publish(topic, b"hello, device", qos=1).wait_for_publish(10)
        if not got.wait(15):
            raise DemoFailed("the message did not come back through the bridge")
    finally:
        for client in (device, backend):
            client.disconnect()
            client.loop_stop()
    demo.show(f"the emulator verified the SigV4 signature and bridged the WebSocket to mosquitto; "
              f"on [bold]{topic}[/bold] the device received: [green]{received[0].decode()}[/green]")
