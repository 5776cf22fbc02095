"""What the exchange service asks STS for: the AssumeRole request exactly as botocore puts it
on the wire (captured by a ``before-send`` handler on the service's own STS client, then sent
on to moto's server unchanged), for a SIM with an IMEI and one without.

The device side is the real ``gw`` executable (``endorse`` -> ``endorse-exchange``) against
the Endorse emulator over HTTPS and the service behind its real HTTP front door.
The rules are botocore's STS model (min/max length and pattern of RoleSessionName,
SourceIdentity and tag keys/values, as in the AWS API reference for AssumeRole).
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any
from urllib.parse import parse_qs

import pytest

IMSI_WITH_IMEI = "440101234567890"  # the emulator's default SIM: IMEI 353456789012345
IMEI = "353456789012345"
IMSI_WITHOUT_IMEI = "440107654321098"


class AssumeRoleCapture:
    """Records the body of every AssumeRole request the client sends (the request still goes out)."""

    def __init__(self, client: Any) -> None:
        self.requests: list[dict[str, list[str]]] = []
        self._lock = threading.Lock()
        client.meta.events.register("before-send.sts.AssumeRole", self)

    def __call__(self, request: Any, **kwargs: Any) -> None:
        body = request.body
        text = body.decode() if isinstance(body, bytes) else str(body)
        with self._lock:
            self.requests.append(parse_qs(text, keep_blank_values=True, strict_parsing=True))
        return None  # botocore sends the request as usual


def assume_role_model() -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("sts").operation_model("AssumeRole").input_shape


def check_against_model(member: str, value: str) -> None:
    meta = assume_role_model().members[member].metadata
    assert meta["min"] <= len(value) <= meta["max"], (member, value)
    assert re.fullmatch(meta["pattern"], value, re.ASCII), (member, value, meta["pattern"])


def device_profile(endorse: Any, exchange_url: str) -> str:
    return f"""
    [profiles.device]
    region = "us-east-1"
    steps = [
      {{ use = "endorse", endpoint = "{endorse.url}", verify = true, key_store_url = "{endorse.key_store_url}" }},
      {{ use = "endorse-exchange", url = "{exchange_url}" }},
    ]
    """


@pytest.fixture
def service(endorse, base_settings, local_exchange):
    endorse.add_sim(IMSI_WITHOUT_IMEI, imei=None, msisdn="819011112222")
    settings = {**base_settings, "allowed_imsis": [IMSI_WITH_IMEI, IMSI_WITHOUT_IMEI], "duration": 1800}
    return local_exchange(settings)


@pytest.mark.parametrize("imsi,imei", [(IMSI_WITH_IMEI, IMEI), (IMSI_WITHOUT_IMEI, None)], ids=["with-imei", "no-imei"])
def test_assume_role_sends_imsi_tags_and_source_identity(imsi, imei, gw_home, endorse, moto, device_role, service):
    capture = AssumeRoleCapture(service.service.sts())
    endorse.default_imsi = imsi  # the SIM the device is on
    assert (endorse.sims[imsi].imei is not None) == (imei is not None)
    gw_home.write_config(device_profile(endorse, service.exchange_url))
    result = gw_home.run_in_process("credential-process", "--profile", "device")
    assert result.returncode == 0, result.stderr
    issued = json.loads(result.stdout)

    assert len(capture.requests) == 1
    sent = capture.requests[0]
    expected_tags = {"Tags.member.1.Key": ["imsi"], "Tags.member.1.Value": [imsi]}
    if imei is not None:
        expected_tags.update({"Tags.member.2.Key": ["imei"], "Tags.member.2.Value": [imei]})
    assert sent == {
        "Action": ["AssumeRole"],
        "Version": ["2011-06-15"],
        "RoleArn": [device_role],
        "RoleSessionName": [f"endorse-{imsi}"],
        "SourceIdentity": [f"endorse-{imsi}"],
        "DurationSeconds": ["1800"],
        **expected_tags,
    }
    # within STS's rules for each parameter (botocore's model of the API)
    for member in ("RoleSessionName", "SourceIdentity"):
        check_against_model(member, sent[member][0])
    tag_shape = assume_role_model().members["Tags"].member
    for key, value in ((k, v[0]) for k, v in sent.items() if k.startswith("Tags.member.")):
        meta = tag_shape.members["Key" if key.endswith(".Key") else "Value"].metadata
        assert meta.get("min", 0) <= len(value) <= meta["max"] and re.fullmatch(r"[0-9a-z]+", value)
    # and moto issued the session under that name, which the device got
    credential = moto.lookup(issued["AccessKeyId"])
    assert credential is not None and credential.kind == "assume-role"
    assert credential.arn.endswith(f":assumed-role/endorse-device/endorse-{imsi}")
    record = [json.loads(line) for line in service.log if line.startswith("{")][-1]
    assert record["status"] == 200 and record["imsi"] == imsi


def test_a_refused_exchange_sends_no_assume_role(endorse, base_settings, local_exchange):
    endorse.add_sim("440108888888888", imei="359999999999999")
    server = local_exchange(base_settings)  # allows only the default SIM
    capture = AssumeRoleCapture(server.service.sts())
    response = server.post(endorse.mint("440108888888888"))
    assert response.status_code == 403 and response.json()["code"] == "sim_not_allowed"
    assert capture.requests == []
