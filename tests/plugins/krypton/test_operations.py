"""The operations krypton-cli has, request bodies byte for byte like it, and the emulator's key rules.

Expected bodies are written out by hand from krypton-client-go's request structs (read with the
project's search tools, not derived from gw's code):

* ``simpleOperation`` and ``OperationBootstrapAWSIoTThing`` (krypton/operations.go) marshal
  ``struct{ KeyID string `json:"keyId"`; RequestParameters map[string]interface{}
  `json:"requestParameters,omitempty"` }`` with Go's encoding/json: no spaces, map keys sorted,
  ``<``/``>``/``&`` escaped as ``\\u003c``/``\\u003e``/``\\u0026``, and no ``requestParameters``
  at all when there are none;
* ``OperationBootstrapInventoryDevice`` adds ``Endpoint string `json:"endpoint"``` between them,
  taken from the request parameters' ``endpoint``, and derives the applicationKey as
  ``base64(SHA-256(nonce || timestamp || CK)[:16])`` (``calculateInventoryApplicationKey``).
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
import requests

from gw.testing import StubStepContext
from gw_emulators.krypton import KryptonEmulator
from gw_emulators.usim import EmulatedReader
from gw_plugins import krypton as plugin
from gw_plugins.krypton.protocol import OPERATION_PATHS, KryptonClient, MemorySessionStore, fetch
from gw_plugins.krypton.sim import open_sim

from .conftest import IMSI, OPC, K

METADATA = OPERATION_PATHS["subscriber-metadata"]


def options(krypton: KryptonEmulator, sim_file: str, operation: str, **extra) -> dict:
    (step,) = plugin.gw_step_types()
    values = {name: spec.default for name, spec in step.options.items()}
    values.update(operation=operation, endpoint=krypton.url, reader="emulated", sim_file=sim_file, timeout=5)
    values.update(extra)
    step.check(values)
    return values


def run(ctx: StubStepContext, krypton: KryptonEmulator, sim_file: str, operation: str, **extra):
    (step,) = plugin.gw_step_types()
    return step.run(ctx, options(krypton, sim_file, operation, **extra), None)


def last_body(krypton: KryptonEmulator, route: str) -> bytes:
    return [body for name, body in krypton.bodies if name == route][-1]


def live_key(krypton: KryptonEmulator) -> str:
    (key_id,) = [k.key_id for k in krypton.keys.values() if k.usable(krypton.clock())]
    return key_id


@pytest.mark.parametrize(
    ("operation", "route", "params", "expected"),
    [
        ("cognito-credentials", "aws/cognito/credentials", None, '{"keyId":"KEY"}'),
        ("aws-iot-bootstrap", "aws/iot/bootstrap", None, '{"keyId":"KEY"}'),
        ("userdata", "soracom/air/userdata", None, '{"keyId":"KEY"}'),
        ("arc-bootstrap", "soracom/arc/bootstrap", None, '{"keyId":"KEY"}'),
        (
            "subscriber-metadata",
            "soracom/air/subscriber_metadata",
            {"z": 1, "a": "x<y&z>", "m": {"b": True, "a": None}},
            '{"keyId":"KEY","requestParameters":{"a":"x\\u003cy\\u0026z\\u003e","m":{"a":null,"b":true},"z":1}}',
        ),
        (
            "inventory-bootstrap",
            "soracom/inventory/bootstrap",
            {"endpoint": "dev-1"},
            '{"keyId":"KEY","endpoint":"dev-1","requestParameters":{"endpoint":"dev-1"}}',
        ),
    ],
)
def test_bodies_are_byte_for_byte_the_go_clients(
    krypton: KryptonEmulator, step_ctx: StubStepContext, sim_file: str, operation, route, params, expected
) -> None:
    if operation == "cognito-credentials":
        pytest.importorskip("boto3")
    run(step_ctx, krypton, sim_file, operation, request_parameters=params)
    assert last_body(krypton, route) == expected.replace("KEY", live_key(krypton)).encode()


def test_cognito_region_is_kept(krypton: KryptonEmulator, step_ctx: StubStepContext, sim_file: str) -> None:
    credential = run(step_ctx, krypton, sim_file, "cognito-credentials")
    assert credential.region == krypton.region == "ap-northeast-1"
    assert credential.env()["AWS_REGION"] == "ap-northeast-1"


def test_arc_bootstrap(krypton: KryptonEmulator, step_ctx: StubStepContext, sim_file: str) -> None:
    doc = run(step_ctx, krypton, sim_file, "arc-bootstrap").document
    assert doc["arcServerEndpoint"] and doc["arcClientPeerIpAddress"].startswith("10.128.0.")
    assert doc["arcClientPeerPrivateKey"] in step_ctx.added_secrets  # scrubbed from every message


def test_inventory_bootstrap_derives_the_application_key(krypton: KryptonEmulator, step_ctx: StubStepContext,
                                                        sim_file: str) -> None:
    doc = run(step_ctx, krypton, sim_file, "inventory-bootstrap", request_parameters={"endpoint": "dev-1"}).document
    assert sorted(doc) == ["applicationKey", "pskId", "serverUri"]  # filterMap in operations.go
    assert doc["pskId"] == f"{IMSI}-dev-1"
    assert doc["applicationKey"] == krypton.inventory_keys[IMSI]
    assert len(base64.b64decode(doc["applicationKey"])) == 16
    assert doc["applicationKey"] in step_ctx.added_secrets
    # a server that sends the key itself: krypton-cli passes it through
    krypton.inject("soracom/inventory/bootstrap",
                   body=json.dumps({"applicationKey": "c2VydmVy", "serverUri": "coaps://x", "pskId": "p", "extra": 1}))
    doc = run(step_ctx, krypton, sim_file, "inventory-bootstrap", request_parameters={"endpoint": "dev-1"}).document
    assert doc == {"applicationKey": "c2VydmVy", "pskId": "p", "serverUri": "coaps://x"}


def test_inventory_key_formula() -> None:
    """The formula on fixed bytes, computed here from its definition in krypton-client-go."""
    from gw_plugins.krypton.protocol import inventory_application_key

    ck = bytes.fromhex("b40ba9a3c58b2a05bbf0d987b21bf8cb")
    nonce = bytes(range(16))
    want = base64.b64encode(hashlib.sha256(nonce + b"1700000000000" + ck).digest()[:16]).decode()
    assert inventory_application_key(base64.b64encode(nonce).decode(), "1700000000000", ck) == want


def test_operations_needing_parameters_say_so(krypton: KryptonEmulator, sim_file: str) -> None:
    with pytest.raises(ValueError, match="request_parameters.endpoint"):
        options(krypton, sim_file, "inventory-bootstrap")
    with pytest.raises(ValueError, match="request_parameters.operationId"):
        options(krypton, sim_file, "azure-iot-registration-status")


def test_azure_register_and_status(krypton: KryptonEmulator, step_ctx: StubStepContext, sim_file: str) -> None:
    registered = run(step_ctx, krypton, sim_file, "azure-iot-register").document
    operation_id = registered["operationId"]
    assert last_body(krypton, "azure/iot/register") == f'{{"keyId":"{live_key(krypton)}"}}'.encode()
    first = run(step_ctx, krypton, sim_file, "azure-iot-registration-status",
                request_parameters={"operationId": operation_id}).document
    assert first == {"operationId": operation_id, "status": "assigning"}
    second = run(step_ctx, krypton, sim_file, "azure-iot-registration-status",
                 request_parameters={"operationId": operation_id}).document
    assert second["status"] == "assigned" and second["deviceId"] == IMSI
    assert "BEGIN CERTIFICATE" in second["certificate"] and second["privateKey"] in step_ctx.added_secrets
    # operationId goes in the path, not in the body
    assert json.loads(last_body(krypton, f"azure/iot/registrations/{operation_id}")) == {"keyId": live_key(krypton)}
    assert krypton.handshakes == 1  # one SIM handshake for all three calls


def test_azure_status_over_the_cellular_link(ca, tmp_path: Path, step_ctx: StubStepContext) -> None:
    """krypton's Azure sample polls with a GET without a body on krypton.soracom.io:8036."""
    with KryptonEmulator(ca, cellular_imsi=IMSI) as krypton:
        krypton.add_subscriber(IMSI, K, OPC)
        (step,) = plugin.gw_step_types()
        values = {name: spec.default for name, spec in step.options.items()}
        values.update(operation="azure-iot-register", reader="cellular", cellular_endpoint=krypton.url, timeout=5)
        operation_id = step.run(step_ctx, values, None).document["operationId"]
        assert last_body(krypton, "azure/iot/register") == b"{}"
        values.update(operation="azure-iot-registration-status", request_parameters={"operationId": operation_id})
        krypton.azure_pending_polls = 0
        krypton.azure[operation_id].polls_left = 0
        doc = step.run(step_ctx, values, None).document
        assert doc["status"] == "assigned" and last_body(krypton, f"azure/iot/registrations/{operation_id}") == b""


@pytest.mark.parametrize("challenge_status", [200, 401])
def test_both_challenge_answers_work(ca, step_ctx: StubStepContext, sim_file: str, challenge_status: int) -> None:
    """The keys API answers its challenge with 200 or 401; krypton-cli's startAKA accepts both."""
    with KryptonEmulator(ca, challenge_status=challenge_status) as krypton:
        krypton.add_subscriber(IMSI, K, OPC)
        doc = run(step_ctx, krypton, sim_file, "subscriber-metadata").document
        assert doc["imsi"] == IMSI and krypton.handshakes == 1 and krypton.verifies == 1


def test_a_new_key_agreement_ends_the_older_keys(krypton: KryptonEmulator, ca, sim_file: str) -> None:
    """Two gw homes sharing one SIM: the second handshake ends the first one's key; it re-handshakes once."""
    reader = {"emulated": EmulatedReader()}
    first, second = MemorySessionStore(), MemorySessionStore()
    with KryptonClient(krypton.url, verify=str(ca.ca_path), timeout=5) as client:
        _, a = fetch(client, open_sim("emulated", options={"sim_file": sim_file}, readers=reader), METADATA, None, first)
        _, b = fetch(client, open_sim("emulated", options={"sim_file": sim_file}, readers=reader), METADATA, None, second)
        assert a.key_id != b.key_id and krypton.keys[a.key_id].revoked and not krypton.keys[b.key_id].revoked
        refused_before = krypton.calls["soracom/air/subscriber_metadata"]
        _, again = fetch(client, open_sim("emulated", options={"sim_file": sim_file}, readers=reader), METADATA, None, first)
    assert again.key_id not in (a.key_id, b.key_id) and krypton.handshakes == 3
    assert krypton.calls["soracom/air/subscriber_metadata"] == refused_before + 2  # one refused, one served


def signed_post(krypton: KryptonEmulator, ca, session, headers: dict[str, str]) -> requests.Response:
    return requests.post(f"{krypton.url}{METADATA}", data=session["body"], headers=headers,
                         verify=str(ca.ca_path), timeout=5)


def test_signature_header_names(krypton: KryptonEmulator, ca, sim_file: str) -> None:
    """Exactly x-soracom-timestamp, x-soracom-digest-algorithm and x-soracom-signature
    (PostWithSignature in endorse-client-go endorse/client.go); HTTP header names ignore case."""
    from gw_plugins.krypton.protocol import call_body, signed_headers

    store = MemorySessionStore()
    with KryptonClient(krypton.url, verify=str(ca.ca_path), timeout=5) as client:
        sim = open_sim("emulated", options={"sim_file": sim_file}, readers={"emulated": EmulatedReader()})
        _, session = fetch(client, sim, METADATA, None, store)
    body = call_body(session.key_id, None)
    headers = signed_headers(body, session.ck)
    assert set(headers) == {"Content-Type", "x-soracom-timestamp", "x-soracom-digest-algorithm", "x-soracom-signature"}
    ok = signed_post(krypton, ca, {"body": body}, {k.upper(): v for k, v in headers.items()})
    assert ok.status_code == 200
    for missing, code in (("x-soracom-digest-algorithm", "KRY0010"), ("x-soracom-signature", "KRY0011"),
                          ("x-soracom-timestamp", "KRY0011")):
        renamed = {(k + "-value" if k == missing else k): v for k, v in headers.items()}  # a near-miss name
        refused = signed_post(krypton, ca, {"body": body}, renamed)
        assert refused.status_code in (400, 401) and refused.json()["code"] == code, missing


def test_call_command_prints_inventory_and_refuses_missing_endpoint(gw_home, krypton: KryptonEmulator,
                                                                  sim_file: str) -> None:
    gw_home.write_config(
        f"""
        [profiles.sim]
        steps = [{{ use = "krypton", operation = "subscriber-metadata", endpoint = "{krypton.url}", reader = "emulated", sim_file = "{sim_file}" }}]
        """
    )
    out = gw_home.run("krypton", "call", "--profile", "sim", "--operation", "inventory-bootstrap", "--param", "endpoint=dev-9")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["applicationKey"] == krypton.inventory_keys[IMSI] and doc["pskId"] == f"{IMSI}-dev-9"
    assert doc["applicationKey"] not in out.stderr
    bad = gw_home.run("krypton", "call", "--profile", "sim", "--operation", "inventory-bootstrap")
    assert bad.returncode != 0 and bad.stdout == ""
    lines = [line for line in bad.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "request_parameters.endpoint" in lines[0] and "Traceback" not in bad.stderr
    out = gw_home.run("krypton", "call", "--profile", "sim", "--operation", "arc-bootstrap")
    assert out.returncode == 0 and json.loads(out.stdout)["arcServerEndpoint"], out.stderr


def test_emulator_clock_is_injectable(ca, step_ctx: StubStepContext, sim_file: str) -> None:
    """The shared base's clock drives key lifetime and the timestamp check."""
    import time

    from gw.errors import StepError

    now = [time.time()]
    with KryptonEmulator(ca, clock=lambda: now[0]) as krypton:
        krypton.add_subscriber(IMSI, K, OPC)
        run(step_ctx, krypton, sim_file, "subscriber-metadata")
        key_id = live_key(krypton)
        now[0] += 3600  # the key's hour is over on the server's clock ...
        assert not krypton.keys[key_id].usable(krypton.clock())
        # ... and gw's timestamps are now an hour behind it: refused as skewed, one line
        with pytest.raises(StepError, match="timestamp too far from server time"):
            run(step_ctx, krypton, sim_file, "subscriber-metadata")


def test_call_command_azure_register_then_status(gw_home, krypton: KryptonEmulator, sim_file: str) -> None:
    gw_home.write_config(
        f"""
        [profiles.sim]
        steps = [{{ use = "krypton", operation = "subscriber-metadata", endpoint = "{krypton.url}", reader = "emulated", sim_file = "{sim_file}" }}]
        """
    )
    krypton.azure_pending_polls = 0
    out = gw_home.run("krypton", "call", "--profile", "sim", "--operation", "azure-iot-register")
    assert out.returncode == 0, out.stderr
    operation_id = json.loads(out.stdout)["operationId"]
    status = gw_home.run("krypton", "call", "--profile", "sim", "--operation", "azure-iot-registration-status",
                         "--param", f"operationId={operation_id}")
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert doc["status"] == "assigned" and doc["deviceId"] == IMSI and "PRIVATE KEY" in doc["privateKey"]
    assert doc["privateKey"] not in status.stderr and krypton.handshakes == 1
