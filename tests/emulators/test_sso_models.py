"""The SSO emulator against botocore's own service models (docs/protocols.md §11).

The models are read from the installed botocore (``botocore/data/sso-oidc/2019-06-10`` and
``botocore/data/sso/2019-06-10``). Every operation the emulator serves is called with a real
botocore client, which serializes the request from the model; each raw answer is checked
member by member against the operation's output shape (no member the model does not know,
every required one, each of the modelled type), and each refusal must be a modelled error
(botocore maps it to the client's exception class) whose body fits that error's shape.
CreateTokenWithIAM is out of scope: it is SigV4-signed and for IAM-identity applications.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from gw_emulators.sso import SsoEmulator

OUT_OF_SCOPE = {"CreateTokenWithIAM"}
TYPES = {"string": str, "integer": int, "long": int, "boolean": bool, "list": list, "structure": dict,
         "timestamp": (int, float, str)}


def check_shape(value: Any, shape: Any, where: str) -> None:
    """``value`` (decoded JSON) fits botocore ``shape``: known members, required ones, types."""
    expected = TYPES.get(shape.type_name)
    assert expected is not None, f"{where}: shape type {shape.type_name} not handled by this test"
    assert isinstance(value, expected) and not (shape.type_name in ("integer", "long") and isinstance(value, bool)), \
        f"{where}: {value!r} is not a {shape.type_name}"
    if shape.type_name == "structure":
        names = {m.serialization.get("name", n): (n, m) for n, m in shape.members.items()
                 if m.serialization.get("location") is None}
        unknown = set(value) - set(names)
        assert not unknown, f"{where}: members the model does not have: {sorted(unknown)}"
        for required in shape.required_members:
            member = shape.members[required]
            if member.serialization.get("location") is None:
                assert member.serialization.get("name", required) in value, f"{where}: required {required} missing"
        for key, item in value.items():
            check_shape(item, names[key][1], f"{where}.{key}")
    elif shape.type_name == "list":
        for i, item in enumerate(value):
            check_shape(item, shape.member, f"{where}[{i}]")


@pytest.fixture
def emulator(ca, moto):
    server = SsoEmulator(ca, moto=moto)
    server.add_account("111111111111", "Development", ["AdministratorAccess", "ReadOnly", "Billing"])
    server.add_account("222222222222", "Production", ["ReadOnly"])
    server.add_account("333333333333", "Audit", ["SecurityAudit"])
    with server:
        yield server


@pytest.fixture
def clients(emulator, ca):
    """Real botocore clients of both services, recording every raw answer and its operation model."""
    import botocore.session
    from botocore import UNSIGNED
    from botocore.config import Config

    session = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
    seen: list[tuple[Any, int, bytes]] = []

    def record(http_response: Any, model: Any, **_: Any) -> None:
        seen.append((model, http_response.status_code, http_response.content))

    made = {}
    for service in ("sso-oidc", "sso"):
        client = session.create_client(service, region_name="us-east-1", endpoint_url=emulator.url,
                                       verify=str(ca.ca_path), config=Config(signature_version=UNSIGNED,
                                                                             retries={"max_attempts": 1}))
        client.meta.events.register("after-call", record)
        made[service] = client
    return made["sso-oidc"], made["sso"], seen


def _check_answers(seen: list[tuple[Any, int, bytes]]) -> set[str]:
    checked = set()
    for model, status, body in seen:
        assert status == 200, f"{model.name} answered {status} in the success path"
        if model.output_shape is not None:
            check_shape(json.loads(body), model.output_shape, model.name)
        checked.add(model.name)
    return checked


def _modelled_error(client: Any, op: str, exc: Any, name: str) -> None:
    model = client.meta.service_model.operation_model(op)
    codes = {e.name for e in model.error_shapes}
    code = exc.response["Error"]["Code"]
    assert code == name and code in codes, f"{op}: {code} is not one of the modelled errors {sorted(codes)}"
    error_shape = client.meta.service_model.shape_for(code)
    members = {m.serialization.get("name", n) for n, m in error_shape.members.items()}
    extra = {k for k in exc.response if k not in ("Error", "ResponseMetadata")}
    assert extra <= members, f"{code}: body members the model does not have: {sorted(extra - members)}"
    assert isinstance(exc, getattr(client.exceptions, code)), f"botocore did not map {code} to its exception class"
    assert error_shape.metadata.get("error", {}).get("httpStatusCode", 400) == \
        exc.response["ResponseMetadata"]["HTTPStatusCode"], f"{code}: status differs from the model"


def _authorize(emulator: SsoEmulator, ca: Any, client_id: str, redirect: str, decision: str = "approve") -> str:
    verifier = "v" * 64
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect, "state": "s1",
             "code_challenge_method": "S256", "scopes": "sso:account:access", "code_challenge": challenge}
    page = requests.get(f"{emulator.url}/authorize?{urlencode(query)}", verify=str(ca.ca_path), timeout=10).text
    request_id = re.search(r'name="request" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    answer = requests.post(f"{emulator.url}/authorize/decide", data={"request": request_id, "decision": decision},
                           verify=str(ca.ca_path), allow_redirects=False, timeout=10)
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == redirect
    params = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert params["state"] == "s1"
    return params.get("code") or params["error"]


def test_every_operation_of_both_models_is_served_and_fits(emulator, clients, ca):
    oidc, portal, seen = clients
    # device grant
    reg = oidc.register_client(clientName="model-test", clientType="public", scopes=["sso:account:access"])
    device = oidc.start_device_authorization(clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                                             startUrl="https://d-1.awsapps.com/start")
    emulator.approve(device["userCode"])
    grant = "urn:ietf:params:oauth:grant-type:device_code"
    token = oidc.create_token(clientId=reg["clientId"], clientSecret=reg["clientSecret"], grantType=grant,
                              deviceCode=device["deviceCode"])
    refreshed = oidc.create_token(clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                                  grantType="refresh_token", refreshToken=token["refreshToken"])
    # authorization code with PKCE
    redirect = "http://127.0.0.1/oauth/callback"
    pkce = oidc.register_client(clientName="model-test", clientType="public", scopes=["sso:account:access"],
                                grantTypes=["authorization_code", "refresh_token"], redirectUris=[redirect],
                                issuerUrl="https://d-1.awsapps.com/start")
    code = _authorize(emulator, ca, pkce["clientId"], "http://127.0.0.1:4711/oauth/callback")
    oidc.create_token(clientId=pkce["clientId"], clientSecret=pkce["clientSecret"], grantType="authorization_code",
                      code=code, codeVerifier="v" * 64, redirectUri="http://127.0.0.1:4711/oauth/callback")
    # the portal, with botocore's own paginators (the emulator pages by 2)
    access = refreshed["accessToken"]
    accounts = [a for page in portal.get_paginator("list_accounts").paginate(accessToken=access)
                for a in page["accountList"]]
    assert [a["accountId"] for a in accounts] == ["111111111111", "222222222222", "333333333333"]
    roles = [r["roleName"] for page in portal.get_paginator("list_account_roles").paginate(
        accessToken=access, accountId="111111111111") for r in page["roleList"]]
    assert roles == ["AdministratorAccess", "ReadOnly", "Billing"]
    creds = portal.get_role_credentials(accessToken=access, accountId="222222222222", roleName="ReadOnly")
    assert creds["roleCredentials"]["accessKeyId"].startswith("ASIA")
    portal.logout(accessToken=access)

    served = {name for model in (oidc, portal) for name in model.meta.service_model.operation_names} - OUT_OF_SCOPE
    assert _check_answers(seen) == served
    assert emulator.calls["ListAccounts"] == 2 and emulator.calls["ListAccountRoles"] == 2


def test_every_refusal_is_a_modelled_error(emulator, clients, ca):
    from botocore.exceptions import ClientError

    oidc, portal, _ = clients
    reg = oidc.register_client(clientName="model-test", clientType="public")
    secret = reg["clientSecret"]
    grant = "urn:ietf:params:oauth:grant-type:device_code"

    def refused(client: Any, op: str, name: str, **kwargs: Any) -> None:
        with pytest.raises(ClientError) as caught:
            getattr(client, op)(**kwargs)
        _modelled_error(client, client.meta.method_to_api_mapping[op], caught.value, name)

    refused(oidc, "create_token", "InvalidClientException", clientId=reg["clientId"], clientSecret="wrong",
            grantType=grant, deviceCode="x")
    device = oidc.start_device_authorization(clientId=reg["clientId"], clientSecret=secret, startUrl="https://s/start")
    refused(oidc, "create_token", "AuthorizationPendingException", clientId=reg["clientId"], clientSecret=secret,
            grantType=grant, deviceCode=device["deviceCode"])
    refused(oidc, "create_token", "SlowDownException", clientId=reg["clientId"], clientSecret=secret,
            grantType=grant, deviceCode=device["deviceCode"])
    emulator.deny(device["userCode"])
    refused(oidc, "create_token", "AccessDeniedException", clientId=reg["clientId"], clientSecret=secret,
            grantType=grant, deviceCode=device["deviceCode"])
    emulator.device_lifetime = -1
    late = oidc.start_device_authorization(clientId=reg["clientId"], clientSecret=secret, startUrl="https://s/start")
    refused(oidc, "create_token", "ExpiredTokenException", clientId=reg["clientId"], clientSecret=secret,
            grantType=grant, deviceCode=late["deviceCode"])
    refused(oidc, "create_token", "InvalidGrantException", clientId=reg["clientId"], clientSecret=secret,
            grantType="refresh_token", refreshToken="aor-not-issued")
    refused(oidc, "create_token", "UnsupportedGrantTypeException", clientId=reg["clientId"], clientSecret=secret,
            grantType="password")
    refused(oidc, "register_client", "InvalidRedirectUriException", clientName="x", clientType="public",
            redirectUris=["https://evil.example/cb"])
    refused(portal, "list_accounts", "UnauthorizedException", accessToken="aoa-not-issued")
    refused(portal, "get_role_credentials", "UnauthorizedException", accessToken="aoa-not-issued",
            accountId="111111111111", roleName="ReadOnly")
    refused(portal, "logout", "UnauthorizedException", accessToken="aoa-not-issued")


def test_the_authorize_page_refuses_an_unregistered_redirect_and_denies_with_access_denied(emulator, clients, ca):
    oidc, _, _ = clients
    reg = oidc.register_client(clientName="x", clientType="public", grantTypes=["authorization_code"],
                               redirectUris=["http://127.0.0.1/oauth/callback"])
    assert _authorize(emulator, ca, reg["clientId"], "http://127.0.0.1:5000/oauth/callback", "deny") == "access_denied"
    bad = requests.get(f"{emulator.url}/authorize", params={
        "response_type": "code", "client_id": reg["clientId"], "redirect_uri": "http://127.0.0.1:5000/elsewhere",
        "state": "s", "code_challenge_method": "S256", "code_challenge": "c"}, verify=str(ca.ca_path), timeout=10)
    assert bad.status_code == 400


def test_role_credentials_are_moto_credentials_of_that_account(emulator, clients, moto):
    oidc, portal, _ = clients
    reg = oidc.register_client(clientName="x", clientType="public")
    device = oidc.start_device_authorization(clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                                             startUrl="https://s/start")
    emulator.approve(device["userCode"])
    token = oidc.create_token(clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                              grantType="urn:ietf:params:oauth:grant-type:device_code",
                              deviceCode=device["deviceCode"])
    role = portal.get_role_credentials(accessToken=token["accessToken"], accountId="222222222222",
                                       roleName="ReadOnly")["roleCredentials"]
    identity = moto.client("sts", role["accessKeyId"], role["secretAccessKey"], role["sessionToken"]) \
        .get_caller_identity()
    assert identity["Account"] == "222222222222"
    assert identity["Arn"].startswith("arn:aws:sts::222222222222:assumed-role/ReadOnly/")
