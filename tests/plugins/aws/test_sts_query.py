"""STS without boto3 (issue 20, target 2): what ``gw_plugins.aws.sts`` sends, how it retries, where
it goes, and the one line each failure gives.

gw runs in-process against a scripted HTTPS upstream on 127.0.0.1 (to see the request byte for
byte and play any answer) or against moto's server. The request is compared with what botocore's
own client sends for the same parameters (its query serializer, caught on ``before-send``; no
network), and its signature is recomputed with botocore's ``SigV4Auth``.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl

import pytest

from gw_plugins.aws import sts
from tests.core.hardening_upstream import ScriptedUpstream

ROLE = "arn:aws:iam::123456789012:role/Admin"
KEYS = '{ use = "aws-keys", access_key_id = "env:GWT_AKID", secret_access_key = "env:GWT_SECRET" }'
TOKEN_KEYS = ('{ use = "aws-keys", access_key_id = "env:GWT_AKID", secret_access_key = "env:GWT_SECRET",'
              ' session_token = "env:GWT_TOKEN" }')
NS = "https://sts.amazonaws.com/doc/2011-06-15/"
AKID, SECRET = "AKIAEXAMPLEEXAMPLE01", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def ok_body(action: str, expiration: str = "2999-01-01T00:00:00Z") -> bytes:
    user = "FederatedUser" if action == "GetFederationToken" else "AssumedRoleUser"
    return (f'<{action}Response xmlns="{NS}"><{action}Result><Credentials><AccessKeyId>ASIAQUERYQUERYQUERY1'
            "</AccessKeyId><SecretAccessKey>s3cr3t/s3cr3t+s3cr3t</SecretAccessKey><SessionToken>FwoGZXIvYXdzEXAMPLE"
            f"</SessionToken><Expiration>{expiration}</Expiration></Credentials><{user}><Arn>"
            f"arn:aws:sts::123456789012:assumed-role/Admin/x</Arn></{user}></{action}Result><ResponseMetadata>"
            f"<RequestId>r</RequestId></ResponseMetadata></{action}Response>").encode()


def error_body(code: str, message: str) -> bytes:
    return (f"<ErrorResponse xmlns=\"{NS}\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}"
            "</Message></Error><RequestId>r</RequestId></ErrorResponse>").encode()


@pytest.fixture
def upstream(ca):
    with ScriptedUpstream(ca) as server:
        yield server


@pytest.fixture
def waits(monkeypatch):
    """The waits between attempts, recorded instead of slept; botocore's jitter at its maximum (1.0)."""
    seen: list[float] = []
    monkeypatch.setattr(sts, "sleep", seen.append)
    monkeypatch.setattr(sts, "jitter", lambda: 1.0)
    return seen


def _keys(home, akid=AKID, secret=SECRET):
    home.env["GWT_AKID"], home.env["GWT_SECRET"] = akid, secret


def _one_line(result) -> str:
    assert result.returncode != 0 and result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gw: "), result.stderr
    return lines[0]


# -- what is sent: botocore's serializer, botocore's signature -------------------------------------
STEPS = {
    "AssumeRole": (
        f'{{ use = "assume-role", role_arn = "{ROLE}", session_name = "s n", duration = 1800, external_id = "ext&=1",'
        ' tags = { team = "a b", "cost/center" = "42" }, transitive_tag_keys = ["team", "cost/center"],'
        ' source_identity = "alice@example.com", policy = "{\\"Version\\":\\"2012-10-17\\"}",'
        ' mfa_serial = "arn:aws:iam::123456789012:mfa/alice", mfa_code = "env:GWT_MFA", endpoint = "URL" }',
        {"RoleArn": ROLE, "RoleSessionName": "s-n", "DurationSeconds": 1800, "ExternalId": "ext&=1",
         "Tags": [{"Key": "team", "Value": "a b"}, {"Key": "cost/center", "Value": "42"}],
         "TransitiveTagKeys": ["team", "cost/center"], "SourceIdentity": "alice@example.com",
         "Policy": '{"Version":"2012-10-17"}', "SerialNumber": "arn:aws:iam::123456789012:mfa/alice",
         "TokenCode": "123456"},
    ),
    "GetSessionToken": (
        '{ use = "session-token", duration = 3600, mfa_serial = "GAHT12345678", mfa_code = "env:GWT_MFA",'
        ' endpoint = "URL" }',
        {"DurationSeconds": 3600, "SerialNumber": "GAHT12345678", "TokenCode": "123456"},
    ),
    "GetFederationToken": (
        '{ use = "federation-token", name = "bob", duration = 7200, policy_arns = ["arn:aws:iam::aws:policy/A",'
        ' "arn:aws:iam::aws:policy/B"], endpoint = "URL" }',
        {"Name": "bob", "DurationSeconds": 7200,
         "PolicyArns": [{"arn": "arn:aws:iam::aws:policy/A"}, {"arn": "arn:aws:iam::aws:policy/B"}]},
    ),
}


def botocore_request(action: str, params: dict, url: str):
    """The request botocore's own STS client makes for ``params`` (caught before it is sent)."""
    import botocore.session

    class Caught(Exception):
        pass

    seen = {}

    def catch(request, **_):
        seen["request"] = request
        raise Caught

    session = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
    client = session.create_client("sts", region_name="us-east-1", endpoint_url=url, aws_access_key_id=AKID,
                                   aws_secret_access_key=SECRET)
    client.meta.events.register("before-send", catch)
    method = re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower()
    with pytest.raises(Caught):
        getattr(client, method)(**params)
    return seen["request"]


@pytest.mark.parametrize("action", list(STEPS))
def test_the_form_is_botocores_and_the_signature_botocores(gw_home, upstream, action):
    step, params = STEPS[action]
    gw_home.write_config(f"[profiles.p]\nsteps = [{KEYS}, {step.replace('URL', upstream.url)}]\n")
    _keys(gw_home)
    gw_home.env["GWT_MFA"] = "123456"
    upstream.answer(200, ok_body(action), {"Content-Type": "text/xml"})
    result = gw_home.run_in_process("credential-process", "--profile", "p")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["AccessKeyId"] == "ASIAQUERYQUERYQUERY1"
    sent = upstream.requests[-1]
    theirs = botocore_request(action, params, upstream.url)
    # the same pairs (names flattened as botocore flattens them), in the same order, byte for byte once encoded
    assert parse_qsl(sent.body.decode(), keep_blank_values=True) == parse_qsl(theirs.body, keep_blank_values=True)
    assert sent.body == theirs.body.encode()
    assert sent.method == "POST" and sent.path == "/"
    assert sent.header("content-type") == theirs.headers["Content-Type"].decode()
    assert sent.header("user-agent").startswith("gw")
    # botocore's signer, run independently on what arrived, gives the signature that was sent
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    authorization = sent.header("authorization")
    assert authorization.startswith(f"AWS4-HMAC-SHA256 Credential={AKID}/")
    assert "/us-east-1/sts/aws4_request" in authorization
    signed = re.search(r"SignedHeaders=([^,]+)", authorization).group(1).split(";")
    assert {"host", "x-amz-date", "content-type"} <= set(signed)
    request = AWSRequest(method="POST", url=f"{upstream.url}/", data=sent.body,
                         headers={name: sent.header(name) for name in signed if name != "host"})
    request.context["timestamp"] = sent.header("x-amz-date")
    auth = SigV4Auth(Credentials(AKID, SECRET), "sts", "us-east-1")
    expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    assert authorization.endswith(f"Signature={expected}")


def test_a_session_token_is_sent_and_signed(gw_home, upstream):
    gw_home.write_config(f"""[profiles.p]
steps = [{TOKEN_KEYS},
         {{ use = "assume-role", role_arn = "{ROLE}", endpoint = "{upstream.url}", region = "eu-west-1" }}]
""")
    _keys(gw_home)
    gw_home.env["GWT_TOKEN"] = "FwoGZXIvYXdzEXAMPLETOKEN"
    upstream.answer(200, ok_body("AssumeRole"), {"Content-Type": "text/xml"})
    assert gw_home.run_in_process("credential-process", "--profile", "p").returncode == 0
    sent = upstream.requests[-1]
    assert sent.header("x-amz-security-token") == "FwoGZXIvYXdzEXAMPLETOKEN"
    authorization = sent.header("authorization")
    assert "/eu-west-1/sts/aws4_request" in authorization and "x-amz-security-token" in authorization


# -- answers and failures: one line each --------------------------------------------------------------
def _assume_role(home, url: str) -> None:
    home.write_config(f'[profiles.p]\nsteps = [{KEYS}, {{ use = "assume-role", role_arn = "{ROLE}", endpoint = "{url}" }}]\n')
    _keys(home)


def test_an_sts_error_is_its_code_and_message_with_the_clock_note(gw_home, upstream, waits):
    _assume_role(gw_home, upstream.url)
    upstream.clock = lambda: 1577836800.0  # its Date header: 2020-01-01
    upstream.answer(403, error_body("SignatureDoesNotMatch", "Signature expired: 20200101T000000Z is now earlier"),
                    {"Content-Type": "text/xml"})
    line = _one_line(gw_home.run_in_process("credential-process", "--profile", "p"))
    assert line.startswith(f"gw: AssumeRole {ROLE} failed: SignatureDoesNotMatch: Signature expired: "), line
    assert "this computer's clock is" in line and "of AWS STS's (by its Date header)" in line
    assert len(upstream.requests) == 1 and waits == []  # not a retryable error


@pytest.mark.parametrize("status, body", [(400, b"<html>oops"), (404, b""), (200, b"not xml"),
                                          (200, error_body("AccessDenied", "no")), (200, b"<AssumeRoleResponse/>")])
def test_a_garbled_answer_is_one_line(gw_home, upstream, status, body):
    _assume_role(gw_home, upstream.url)
    upstream.answer(status, body, {"Content-Type": "text/xml"})
    line = _one_line(gw_home.run_in_process("credential-process", "--profile", "p"))
    host = upstream.url.partition("://")[2]
    if status == 200:
        assert line == f"gw: AssumeRole {ROLE} failed: the answer from AWS STS ({host}) holds no credentials"
    else:
        assert line == f"gw: AssumeRole {ROLE} failed: AWS STS ({host}) answered HTTP {status} without an STS error document"


@pytest.mark.parametrize("field, value", [("Expiration", "tomorrow"), ("SessionToken", "")])
def test_credentials_that_make_no_sense_are_refused(gw_home, upstream, field, value):
    _assume_role(gw_home, upstream.url)
    body = ok_body("AssumeRole").decode()
    body = re.sub(f"<{field}>[^<]*</{field}>", f"<{field}>{value}</{field}>", body)
    upstream.answer(200, body.encode(), {"Content-Type": "text/xml"})
    line = _one_line(gw_home.run_in_process("credential-process", "--profile", "p"))
    assert field in line and "failed: the answer from AWS STS" in line


def test_credentials_already_expired_by_the_date_header_are_refused(gw_home, upstream):
    _assume_role(gw_home, upstream.url)
    upstream.answer(200, ok_body("AssumeRole", "2001-01-01T00:00:00.000Z"), {"Content-Type": "text/xml"})
    line = _one_line(gw_home.run_in_process("credential-process", "--profile", "p"))
    assert line.startswith("gw: AWS STS just issued credentials expiring at 2001-01-01T00:00:00Z"), line


@pytest.mark.parametrize("status, code", [(400, "Throttling"), (400, "RequestLimitExceeded"),
                                          (400, "IDPCommunicationError"), (503, "ServiceUnavailable"),
                                          (500, None)])
def test_transient_errors_are_tried_three_times_with_botocores_backoff(gw_home, upstream, waits, status, code):
    _assume_role(gw_home, upstream.url)
    upstream.answer(status, error_body(code, "Rate exceeded") if code else b"", {"Content-Type": "text/xml"})
    line = _one_line(gw_home.run_in_process("credential-process", "--profile", "p"))
    assert len(upstream.requests) == 3
    assert waits == [1.0, 2.0]  # random() * min(2 ** (attempt - 1), 20), random() at its maximum
    assert (f"failed: {code}: Rate exceeded" if code else f"answered HTTP {status}") in line
    dates = {r.header("x-amz-date") for r in upstream.requests}
    assert all(r.header("authorization") for r in upstream.requests) and dates  # each attempt signed


def test_a_retry_that_succeeds_gives_credentials(aws_home, iam_user, moto, waits):
    aws_home.write_config(f'[profiles.p]\nsteps = [{KEYS}, {{ use = "session-token" }}]\n')
    _keys(aws_home, *iam_user)
    before = moto.count("GetSessionToken")
    moto.inject("GetSessionToken", status=503, count=2)
    result = aws_home.run_in_process("credential-process", "--profile", "p")
    assert result.returncode == 0, result.stderr
    assert moto.lookup(json.loads(result.stdout)["AccessKeyId"]).kind == "session-token"
    assert moto.count("GetSessionToken") == before + 3 and len(waits) == 2


def test_a_refused_connection_is_tried_three_times_then_one_line(gw_home, waits):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _assume_role(gw_home, f"http://127.0.0.1:{port}")
    line = _one_line(gw_home.run_in_process("credential-process", "--profile", "p"))
    assert line == f"gw: AssumeRole {ROLE} failed: cannot reach AWS STS AssumeRole (127.0.0.1:{port}): connection failed"
    assert waits == [1.0, 2.0]


def test_no_answer_in_time_is_one_line(aws_home, iam_user, moto, waits, monkeypatch):
    monkeypatch.setattr(sts, "TIMEOUT", 0.3)
    aws_home.write_config(f'[profiles.p]\nsteps = [{KEYS}, {{ use = "session-token" }}]\n')
    _keys(aws_home, *iam_user)
    moto.inject("GetSessionToken", status=500, delay=1.0, count=3)
    try:
        line = _one_line(aws_home.run_in_process("credential-process", "--profile", "p"))
    finally:
        moto.faults.clear()
    host = moto.url.partition("://")[2]
    assert line == f"gw: GetSessionToken failed: AWS STS GetSessionToken ({host}) did not answer within 0.3 s"
    assert len(waits) == 2


def test_no_secret_in_an_error_that_echoes_the_request(gw_home, upstream):
    """An upstream that quotes the request (MFA code, signature, token) in its message: gw's line carries
    none of the secrets."""
    gw_home.write_config(f"""[profiles.p]
steps = [{TOKEN_KEYS},
         {{ use = "assume-role", role_arn = "{ROLE}", endpoint = "{upstream.url}", mfa_serial = "arn:aws:iam::123456789012:mfa/a", mfa_code = "env:GWT_MFA" }}]
""")
    _keys(gw_home)
    gw_home.env.update(GWT_TOKEN="FwoGZXIvYXdzSECRETTOKEN0123456789", GWT_MFA="918273")
    upstream.answer(400, error_body("AccessDenied", "denied: TokenCode=918273 token FwoGZXIvYXdzSECRETTOKEN0123456789 "
                                                    f"secret {SECRET}"), {"Content-Type": "text/xml"})
    line = _one_line(gw_home.run_in_process("credential-process", "--profile", "p"))
    assert "AccessDenied" in line
    for secret in (SECRET, "FwoGZXIvYXdzSECRETTOKEN0123456789", "918273"):
        assert secret not in line and secret[:10] not in line


# -- where it goes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("options, env, expected", [
    ({"endpoint": "https://opt.example"}, {"AWS_ENDPOINT_URL_STS": "https://svc.example"}, "https://opt.example"),
    ({}, {"AWS_ENDPOINT_URL_STS": "https://svc.example", "AWS_ENDPOINT_URL": "https://all.example"},
     "https://svc.example"),
    ({}, {"AWS_ENDPOINT_URL": "https://all.example"}, "https://all.example"),
    ({}, {"AWS_ENDPOINT_URL": "https://all.example", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"},
     "https://sts.us-east-1.amazonaws.com"),
    ({}, {}, "https://sts.us-east-1.amazonaws.com"),
    ({}, {"AWS_STS_REGIONAL_ENDPOINTS": "regional"}, "https://sts.us-east-1.amazonaws.com"),
])
def test_the_endpoint_is_chosen_as_botocore_chooses_it(tmp_path, options, env, expected):
    env = {"AWS_CONFIG_FILE": str(tmp_path / "none"), **env}
    assert sts.endpoint(options, "us-east-1", env) == expected


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-2", "ap-southeast-7", "il-central-1", "mx-central-1",
                                    "cn-north-1", "cn-northwest-1", "us-gov-west-1", "us-gov-east-1"])
def test_regional_endpoints_are_botocores(tmp_path, region):
    import botocore.session

    env = {"AWS_CONFIG_FILE": str(tmp_path / "none")}
    session = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
    theirs = session.create_client("sts", region_name=region, aws_access_key_id="a", aws_secret_access_key="b")
    assert sts.endpoint({}, region, env) == theirs.meta.endpoint_url


@pytest.mark.parametrize("env, config", [
    ({"AWS_USE_FIPS_ENDPOINT": "true"}, None),
    ({"AWS_USE_DUALSTACK_ENDPOINT": "TRUE"}, None),
    ({"AWS_STS_REGIONAL_ENDPOINTS": "legacy"}, None),
    ({}, "[default]\nuse_fips_endpoint = true\n"),
    ({}, "[profile default]\nendpoint_url = https://x.example\n"),
    ({}, "[default]\nservices = mine\n[services mine]\nsts =\n  endpoint_url = https://x.example\n"),
    ({}, "[default\nbroken"),
])
def test_what_is_not_modelled_goes_through_boto3(tmp_path, env, config):
    path = tmp_path / "config"
    if config is not None:
        path.write_text(config)
    env = {"AWS_CONFIG_FILE": str(path), **env}
    assert sts.endpoint({"endpoint": "https://opt.example"}, "us-east-1", env) is None
    assert sts.endpoint({}, "us-east-1", {"AWS_CONFIG_FILE": str(path)}) is None or config is None


@pytest.mark.parametrize("region", ["us-iso-east-1", "eusc-de-east-1", "aws-global", "moon-1"])
def test_a_region_of_another_partition_goes_through_boto3(tmp_path, region):
    assert sts.endpoint({}, region, {"AWS_CONFIG_FILE": str(tmp_path / "none")}) is None


def test_the_sts_variable_beats_the_global_one(aws_home, iam_user, moto, tripwire):
    aws_home.env.update(AWS_ENDPOINT_URL=tripwire.url(), AWS_ENDPOINT_URL_STS=moto.url)
    aws_home.write_config(f'[profiles.p]\nsteps = [{KEYS}, {{ use = "session-token" }}]\n')
    _keys(aws_home, *iam_user)
    before = moto.count("GetSessionToken")
    result = aws_home.run_in_process("credential-process", "--profile", "p")
    assert result.returncode == 0, result.stderr
    assert moto.count("GetSessionToken") == before + 1


def test_fips_goes_through_boto3(gw_home, upstream):
    """AWS_USE_FIPS_ENDPOINT is not modelled: the call is botocore's (its User-Agent), and still works."""
    gw_home.env["AWS_USE_FIPS_ENDPOINT"] = "true"
    _assume_role(gw_home, upstream.url)
    upstream.answer(200, ok_body("AssumeRole"), {"Content-Type": "text/xml"})
    result = gw_home.run_in_process("credential-process", "--profile", "p")
    assert result.returncode == 0, result.stderr
    assert upstream.requests[-1].header("user-agent").startswith("Boto3/")
    del gw_home.env["AWS_USE_FIPS_ENDPOINT"]
    assert gw_home.run_in_process("credential-process", "--profile", "p", "--refresh").returncode == 0
    assert upstream.requests[-1].header("user-agent").startswith("gw")
