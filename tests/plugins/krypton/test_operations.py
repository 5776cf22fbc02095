"""The operations krypton-cli has, request bodies byte for byte like it, and the emulator's key rules.

The expected bodies come from krypton-client-go's request structs as published, copied into
:data:`GO_REQUEST_STRUCTS` below with their struct tags (read with the project's search tools;
nothing here is derived from gw's code), and from what Go's encoding/json does with them:
fields in struct order, no spaces, map keys sorted, ``<``/``>``/``&`` as ``\\u003c``/``\\u003e``/
``\\u0026``, every number of ``-p`` a float64 (written as the cases spell out by hand), and a
field tagged ``omitempty`` left out when its map is nil or empty. ``OperationBootstrapInventoryDevice``
derives the applicationKey as ``base64(SHA-256(nonce || timestamp || CK)[:16])``
(``calculateInventoryApplicationKey``).
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


#: soracom/krypton-client-go krypton/operations.go (commit edb8152f66a799a31385ee7a738e23ca5087cd24,
#: the newest stored; the operation -> function and each request struct's fields with their tags):
#:   simpleOperation:                 KeyID string `json:"keyId"`
#:                                    RequestParameters map[string]interface{} `json:"requestParameters,omitempty"`
#:   OperationBootstrapAWSIoTThing:   the same two fields and tags
#:   OperationBootstrapInventoryDevice: KeyID string `json:"keyId"`; Endpoint string `json:"endpoint"`;
#:                                    RequestParameters map[string]interface{} `json:"requestParameters,omitempty"`
#: (RequestParameters is nil when -p is not given: ``if kc.cfg.RequestParameters != ""`` guards the
#: json.Unmarshal.) The oldest stored version (7a3c9f59...) had no RequestParameters field at all.
SIMPLE = (("keyId", ""), ("requestParameters", "omitempty"))
GO_REQUEST_STRUCTS: dict[str, tuple[str, str, tuple[tuple[str, str], ...]]] = {
    # gw operation: (operations.go name, what builds the body, (json name, tag options) in struct order)
    "cognito-credentials": ("generateAmazonCognitoSessionCredentials", "simpleOperation", SIMPLE),
    "cognito-openid-token": ("generateAmazonCognitoOpenIdToken", "simpleOperation", SIMPLE),
    "subscriber-metadata": ("getSubscriberMetadata", "simpleOperation", SIMPLE),
    "userdata": ("getUserData", "simpleOperation", SIMPLE),
    "arc-bootstrap": ("bootstrapArc", "simpleOperation", SIMPLE),
    "aws-iot-bootstrap": ("bootstrapAwsIotThing", "OperationBootstrapAWSIoTThing.Perform", SIMPLE),
    "inventory-bootstrap": ("bootstrapInventoryDevice", "OperationBootstrapInventoryDevice.Perform",
                            (("keyId", ""), ("endpoint", ""), ("requestParameters", "omitempty"))),
}
ROUTES = {
    "cognito-credentials": "aws/cognito/credentials",
    "cognito-openid-token": "aws/cognito/open_id_tokens",
    "subscriber-metadata": "soracom/air/subscriber_metadata",
    "userdata": "soracom/air/userdata",
    "arc-bootstrap": "soracom/arc/bootstrap",
    "aws-iot-bootstrap": "aws/iot/bootstrap",
    "inventory-bootstrap": "soracom/inventory/bootstrap",
}
#: request parameters as gw's config gives them -> the bytes Go writes for that map (by hand)
PARAMETER_CASES = {
    "none": (None, None),
    "empty": ({}, "{}"),
    "mixed": (
        {"z": 1, "a": "x<y&z>", "m": {"b": True, "a": None}, "r": 0.00001, "big": 2**53 + 1, "e": 1.5e-7},
        '{"a":"x\\u003cy\\u0026z\\u003e","big":9007199254740992,"e":1.5e-7,"m":{"a":null,"b":true},'
        '"r":0.00001,"z":1}',
    ),
}


def go_body(operation: str, key_id: str, params: dict | None, params_bytes: str | None) -> bytes:
    """The body the Go struct of ``operation`` marshals to, field by field from its tags."""
    _, _, fields = GO_REQUEST_STRUCTS[operation]
    values = {"keyId": json.dumps(key_id), "requestParameters": params_bytes,
              "endpoint": json.dumps((params or {}).get("endpoint", ""))}
    empty = {"keyId": not key_id, "endpoint": False, "requestParameters": not params}
    parts = []
    for name, tag in fields:
        if tag == "omitempty" and empty[name]:
            continue
        parts.append(f'"{name}":{"null" if values[name] is None else values[name]}')
    return ("{" + ",".join(parts) + "}").encode()


@pytest.mark.parametrize("case", sorted(PARAMETER_CASES))
@pytest.mark.parametrize("operation", sorted(GO_REQUEST_STRUCTS))
def test_bodies_are_byte_for_byte_the_go_clients(
    krypton: KryptonEmulator, step_ctx: StubStepContext, sim_file: str, operation, case
) -> None:
    if operation == "cognito-credentials":
        pytest.importorskip("boto3")
    params, params_bytes = PARAMETER_CASES[case]
    if operation == "inventory-bootstrap":  # krypton-cli takes the endpoint from -p too
        params = {**(params or {}), "endpoint": "dev-1"}
        params_bytes = '{"endpoint":"dev-1"}' if params_bytes in (None, "{}") else \
            params_bytes.replace('"e":1.5e-7,', '"e":1.5e-7,"endpoint":"dev-1",')
    run(step_ctx, krypton, sim_file, operation, request_parameters=params)
    assert last_body(krypton, ROUTES[operation]) == go_body(operation, live_key(krypton), params, params_bytes)


def test_the_table_names_every_operation_of_the_go_client() -> None:
    """krypton-client-go registers these seven operations (init() in operations.go); gw has each."""
    assert {name for name, _, _ in GO_REQUEST_STRUCTS.values()} == {
        "bootstrapArc", "bootstrapAwsIotThing", "bootstrapInventoryDevice", "generateAmazonCognitoOpenIdToken",
        "generateAmazonCognitoSessionCredentials", "getSubscriberMetadata", "getUserData"}
    assert set(GO_REQUEST_STRUCTS) <= set(OPERATION_PATHS)
    assert all(OPERATION_PATHS[op] == "/v1/provisioning/" + route for op, route in ROUTES.items())


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_parameters_json_cannot_carry_are_one_line(krypton: KryptonEmulator, sim_file: str, value) -> None:
    import datetime

    for bad in (value, datetime.date(2026, 1, 1)):
        with pytest.raises(ValueError, match="request_parameters must hold only JSON values"):
            options(krypton, sim_file, "subscriber-metadata", request_parameters={"x": bad})


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


def _own_signature(body: bytes, timestamp: str, ck: bytes) -> str:
    """base64(SHA-256(body || timestamp || CK)) computed here, not with gw's helper (docs/protocols.md §6)."""
    return base64.b64encode(hashlib.sha256(body + timestamp.encode() + ck).digest()).decode()


@pytest.mark.parametrize("route", ["soracom/air/subscriber_metadata", "aws/iot/bootstrap"])
def test_the_emulator_takes_every_form_of_no_parameters_signed_over_the_exact_bytes(
    krypton: KryptonEmulator, ca, sim_file: str, route: str
) -> None:
    """Absent (krypton-client-go's omitempty), null (a struct without omitempty) or {}: all served;
    the signature is checked over the bytes on the wire, so re-spacing a signed body breaks it."""
    import time

    with KryptonClient(krypton.url, verify=str(ca.ca_path), timeout=5) as client:
        sim = open_sim("emulated", options={"sim_file": sim_file}, readers={"emulated": EmulatedReader()})
        _, session = fetch(client, sim, METADATA, None, MemorySessionStore())
    key = session.key_id
    compact = [f'{{"keyId":"{key}"}}', f'{{"keyId":"{key}","requestParameters":null}}',
               f'{{"keyId":"{key}","requestParameters":{{}}}}']

    def post(body: str, signed: str) -> requests.Response:
        timestamp = str(int(time.time() * 1000))
        headers = {"Content-Type": "application/json", "x-soracom-timestamp": timestamp,
                   "x-soracom-digest-algorithm": "SHA-256",
                   "x-soracom-signature": _own_signature(signed.encode(), timestamp, session.ck)}
        return requests.post(f"{krypton.url}/v1/provisioning/{route}", data=body.encode(), headers=headers,
                             verify=str(ca.ca_path), timeout=5)

    for body in compact:
        reply = post(body, body)
        assert reply.status_code == 200, (body, reply.text)
        assert last_body(krypton, route) == body.encode()
    spaced = f'{{"keyId": "{key}", "requestParameters": null}}'
    assert post(spaced, spaced).status_code == 200  # any bytes the signature covers
    refused = post(spaced, compact[1])  # the same JSON, but not the bytes that were signed
    assert (refused.status_code, refused.json()["code"]) == (401, "KRY0015")


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
    out = gw_home.run_in_process("krypton", "call", "--profile", "sim", "--operation", "inventory-bootstrap", "--param", "endpoint=dev-9")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["applicationKey"] == krypton.inventory_keys[IMSI] and doc["pskId"] == f"{IMSI}-dev-9"
    assert doc["applicationKey"] not in out.stderr
    bad = gw_home.run_in_process("krypton", "call", "--profile", "sim", "--operation", "inventory-bootstrap")
    assert bad.returncode != 0 and bad.stdout == ""
    lines = [line for line in bad.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "request_parameters.endpoint" in lines[0] and "Traceback" not in bad.stderr
    out = gw_home.run_in_process("krypton", "call", "--profile", "sim", "--operation", "arc-bootstrap")
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
    out = gw_home.run_in_process("krypton", "call", "--profile", "sim", "--operation", "azure-iot-register")
    assert out.returncode == 0, out.stderr
    operation_id = json.loads(out.stdout)["operationId"]
    status = gw_home.run_in_process("krypton", "call", "--profile", "sim", "--operation", "azure-iot-registration-status",
                         "--param", f"operationId={operation_id}")
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert doc["status"] == "assigned" and doc["deviceId"] == IMSI and "PRIVATE KEY" in doc["privateKey"]
    assert doc["privateKey"] not in status.stderr and krypton.handshakes == 1
