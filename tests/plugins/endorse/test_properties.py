"""Property-based tests (hypothesis): whatever arrives, nothing but the service's own error type
escapes the verifier, the request parsing and the Lambda event parsing; the service answers
every request without a 500. Bounded: few examples, no deadline surprises (< 20 s in all)."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gw_plugins.endorse.lambda_handler import request_from_event
from gw_plugins.endorse.service import ExchangeService, HttpRequest, token_and_output
from gw_plugins.endorse.settings import ExchangeSettings
from gw_plugins.endorse.verify import EndorseClaims, ExchangeError, KeyStore, Verifier

FAST = settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    from gw_emulators.endorse import EndorseEmulator
    from gw_emulators.tls import LocalCA

    ca = LocalCA(tmp_path_factory.mktemp("endorse-ca"))
    with EndorseEmulator(ca) as emu:
        emu.ca_path = str(ca.ca_path)
        yield emu


@pytest.fixture(scope="module")
def verifier(emulator):
    return Verifier(KeyStore(emulator.key_store_url, verify=emulator.ca_path), leeway=30)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)


@FAST
@given(st.one_of(st.text(max_size=300), st.binary(max_size=100).map(lambda b: b.decode("latin-1")),
                 st.none(), st.integers(), st.lists(st.text(max_size=5), max_size=3)))
def test_verifier_raises_only_its_error_on_arbitrary_input(verifier, value):
    with pytest.raises(ExchangeError) as exc:
        verifier.verify(value)
    assert exc.value.status in (400, 401)


@FAST
@given(header=st.dictionaries(st.sampled_from(["alg", "kid", "typ", "jku", "x5u"]), json_values, max_size=4),
       payload=st.dictionaries(st.sampled_from(["iss", "aud", "sub", "exp", "nbf", "iat", "jti",
                                                "soracom-endorse-claim"]), json_values, max_size=8),
       signature=st.binary(max_size=300))
def test_verifier_refuses_forged_structures(verifier, header, payload, signature):
    token = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}.{b64(signature)}"
    with pytest.raises(ExchangeError):
        verifier.verify(token)


@FAST
@given(data=st.data())
def test_mutated_valid_tokens_never_verify_as_something_else(verifier, emulator, data):
    token = emulator.mint()
    index = data.draw(st.integers(0, len(token) - 1))
    char = data.draw(st.sampled_from("AQgw_-.=+/ xZ9"))
    mutated = token[:index] + char + token[index + 1:]
    try:
        claims = verifier.verify(mutated)
    except ExchangeError:
        return
    # base64url can decode two spellings of the last character alike: then it is the same token
    assert isinstance(claims, EndorseClaims) and claims == verifier.verify(token)


requests_strategy = st.builds(
    HttpRequest,
    method=st.sampled_from(["GET", "POST", "PUT", "OPTIONS", "DELETE", "", "\x00"]),
    path=st.text(max_size=20),
    query=st.dictionaries(st.sampled_from(["soracom_endorse_token", "output", "token", "x"]),
                          st.lists(st.text(max_size=40), max_size=3), max_size=3),
    headers=st.dictionaries(st.sampled_from(["authorization", "content-type", "origin", "x"]),
                            st.text(max_size=60), max_size=4),
    body=st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode()),
                   st.dictionaries(st.sampled_from(["token", "output", "soracom_endorse_token"]), json_values)
                   .map(lambda v: json.dumps(v).encode())),
)


@FAST
@given(requests_strategy)
def test_request_parsing_raises_only_its_error(request):
    try:
        token, output = token_and_output(request, 4096)
    except ExchangeError as exc:
        assert exc.status == 400
        return
    assert isinstance(token, str) and token and output in ("aws", "iot-wss")


@pytest.fixture(scope="module")
def service(emulator):
    settings_ = ExchangeSettings(role_arn="arn:aws:iam::123456789012:role/D", key_store_url=emulator.key_store_url,
                                 allowed_imsis=("440101234567890",), ca_bundle=emulator.ca_path,
                                 sts_endpoint="http://127.0.0.1:9", allowed_origins=("https://a.example",))
    return ExchangeService(settings_, log=lambda line: None)


@FAST
@given(requests_strategy)
def test_service_answers_every_request_without_a_500(service, request):
    answer = service.handle(request)
    assert answer.status in (200, 204, 400, 401, 403, 405, 502)
    if answer.body is not None:
        assert set(answer.body) == {"code", "message"}


@FAST
@given(st.one_of(json_values, st.dictionaries(
    st.sampled_from(["version", "httpMethod", "rawQueryString", "queryStringParameters",
                     "multiValueQueryStringParameters", "headers", "body", "isBase64Encoded", "requestContext",
                     "rawPath", "path"]), json_values, max_size=8)))
def test_event_parsing_raises_only_its_error(event):
    try:
        request = request_from_event(event)
    except ExchangeError as exc:
        assert exc.status == 400
        return
    assert isinstance(request, HttpRequest) and request.method


CLAIM_NAMES = ["iss", "aud", "sub", "exp", "nbf", "iat", "jti", "soracom-endorse-claim"]
ENDORSE_FIELDS = ["imsi", "imei", "msisdn", "simId", "requestParameters"]


@FAST
@given(name=st.sampled_from(CLAIM_NAMES + ENDORSE_FIELDS + ["kid", "typ"]), value=json_values)
def test_garbage_in_any_field_of_a_properly_signed_token(verifier, emulator, name, value):
    """Signed with the real key, so every claim check (not just the signature) is exercised."""
    if name in ("kid", "typ"):
        token = emulator.mint(header={name: value})
    elif name in ENDORSE_FIELDS:
        claim = {"imsi": "440101234567890", "requestParameters": {}, name: value}
        token = emulator.mint(claims={"soracom-endorse-claim": claim})
    else:
        token = emulator.mint(claims={name: value} if value is not None else {name: None})
    try:
        claims = verifier.verify(token)
    except ExchangeError as exc:
        assert exc.status in (400, 401)
        return
    # accepted only when the garbage was harmless: the result is still well-formed
    assert isinstance(claims.imsi, str) and claims.imsi.isdigit()
    assert isinstance(claims.exp, int) and isinstance(claims.jti, str) and isinstance(claims.request_parameters, dict)
    assert name not in ("iss", "aud", "sub", "kid") or value in (
        "https://soracom.io", "soracom-endorse-audience", "soracom-endorse", emulator.kid)
