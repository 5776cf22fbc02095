"""Role aliases on the wire and the credentials provider's check order (protocols.md section 8).

gw sends the alias raw, as AWS's documented curl call does; the emulator percent-decodes the
path segment as an HTTP server does; its checks come in AWS's order (thing name, authorization,
alias, role) with AWS's texts and an ``x-amzn-ErrorType`` on every error.
"""

from __future__ import annotations

import http.client
import json
from typing import Any

import pytest

from gw_emulators.iot import MSG_ASSUME, MSG_DENIED, MSG_DURATION, MSG_NO_ALIAS, MSG_THING
from gw_plugins.iot.mtls import Endpoint, client_context

from .conftest import ALIAS, THING, credential_process, iot_profile

ODD_ALIAS = "team=a,b@c-d_1"


def _get(iot: Any, device: Any, ca: Any, path: str, thing: str | None = None) -> tuple[int, dict[str, str], dict]:
    """One GET over mutual TLS with the device certificate: (status, headers, JSON body)."""
    context = client_context(str(device.cert_path), str(device.key_path), cafile=str(ca.ca_path))
    endpoint = Endpoint.parse(iot.endpoint)
    conn = http.client.HTTPSConnection(endpoint.host, endpoint.port, context=context, timeout=10)
    try:
        conn.request("GET", path, headers={"x-amzn-iot-thingname": thing} if thing else {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(response.read())
    finally:
        conn.close()


def test_gw_sends_the_alias_raw_and_gets_credentials(gw_home, iot, device, iot_role):
    iot.add_role_alias(ODD_ALIAS, iot_role)
    gw_home.write_config(iot_profile("dev", iot.endpoint, device, role_alias=ODD_ALIAS))
    doc = credential_process(gw_home, "dev")
    assert doc["AccessKeyId"].startswith("ASIA")
    assert iot.request_paths == [f"/role-aliases/{ODD_ALIAS}/credentials"]


def test_the_emulator_decodes_a_percent_encoded_alias(iot, device, ca, iot_role):
    iot.add_role_alias(ODD_ALIAS, iot_role)
    status, _, body = _get(iot, device, ca, "/role-aliases/team%3Da%2Cb%40c-d_1/credentials")
    assert status == 200 and body["credentials"]["accessKeyId"]
    status, _, body = _get(iot, device, ca, "/role-aliases/team%3Da%2Cb%40c-d_2/credentials")
    assert (status, body) == (404, {"message": MSG_NO_ALIAS})


@pytest.mark.parametrize("alias", ["r\u00f4le", "caf\u00e9-alias", "a/b", "a b", "a%3Db"])
def test_gw_check_refuses_what_aws_does_not_allow_in_an_alias(gw_home, iot, device, alias):
    gw_home.write_config(iot_profile("dev", iot.endpoint, device, role_alias=alias))
    result = gw_home.run_in_process("credential-process", "--profile", "dev")
    assert result.returncode != 0 and "role_alias must be" in result.stderr and "Traceback" not in result.stderr
    assert iot.request_paths == []


def test_check_order_is_aws_order(iot, device, ca, iot_role):
    """thing name (403) before authorization (403) before the alias (404) before the role (400)."""
    iot.add_role_alias("too-long", iot_role, duration=7200, max_session=3600)
    iot.add_role_alias("no-trust", iot_role, assumable=False)
    iot.deny_role_alias(device, "too-long")
    iot.deny_role_alias(device, "missing")
    cases = [
        ("missing", "other-thing", 403, MSG_THING, "AccessDeniedException"),
        ("missing", THING, 403, MSG_DENIED, "AccessDeniedException"),  # denied although it does not exist
        ("too-long", None, 403, MSG_DENIED, "AccessDeniedException"),
        ("nowhere", THING, 404, MSG_NO_ALIAS, "ResourceNotFoundException"),
        ("no-trust", THING, 400, MSG_ASSUME, "InvalidRequestException"),
        (ALIAS, "other-thing", 403, MSG_THING, "AccessDeniedException"),
    ]
    for alias, thing, status, message, error_type in cases:
        got = _get(iot, device, ca, f"/role-aliases/{alias}/credentials", thing)
        assert (got[0], got[2], got[1].get("x-amzn-errortype")) == (status, {"message": message}, error_type), alias
    iot.add_role_alias("long-only", iot_role, duration=7200, max_session=3600)
    status, headers, body = _get(iot, device, ca, "/role-aliases/long-only/credentials", THING)
    assert (status, body["message"], headers["x-amzn-errortype"]) == (400, MSG_DURATION, "InvalidRequestException")
    assert MSG_DURATION == "The requested CredentialDurationSeconds exceeds the MaxSessionDuration set for the role"


def test_gw_explains_a_role_it_cannot_assume(gw_home, iot, device, iot_role):
    iot.add_role_alias("no-trust", iot_role, assumable=False)
    gw_home.write_config(iot_profile("dev", iot.endpoint, device, role_alias="no-trust"))
    result = gw_home.run_in_process("credential-process", "--profile", "dev")
    assert result.returncode != 0 and f"({MSG_ASSUME})" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
