"""gw's STS client (``gw_plugins.aws.sts``: Query API requests, botocore's SigV4 signer, no boto3)
against moto's server, which gw did not write (docs/protocols.md section 10).

Each of the four calls, with every parameter gw sends: MFA serial and code, session tags and
transitive tag keys, an inline policy, external id and source identity, policy ARNs. moto
checks SigV4 signatures only with its IAM authentication on (``INITIAL_NO_AUTH_ACTION_COUNT``,
set at run time through ``POST /moto-api/reset-auth``: getmoto/moto ``moto/core/authorization.py``,
``moto/iam/access_control.py``, which recomputes the signature with botocore's ``SigV4Auth``); the
signature tests turn it on for their calls only.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest

ROLE_NAME = "GwQueryRole"
KEYS = '{ use = "aws-keys", access_key_id = "env:GWT_AKID", secret_access_key = "env:GWT_SECRET" }'
MFA_SERIAL = "arn:aws:iam::123456789012:mfa/gw-query"


@pytest.fixture(scope="module")
def role(moto) -> str:
    return moto.create_role(ROLE_NAME, max_session_duration=7200)


@pytest.fixture(scope="module")
def admin(moto) -> tuple[str, str]:
    """An IAM user allowed everything (moto's authorization checks policies once authentication is on)."""
    iam = moto.client("iam")
    name = "gw-query-admin"
    try:
        iam.create_user(UserName=name)
    except iam.exceptions.EntityAlreadyExistsException:
        pass
    iam.put_user_policy(UserName=name, PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


@pytest.fixture(scope="module")
def open_role(moto) -> str:
    """A role anyone may assume (with tags), allowed everything: for the calls moto authorizes."""
    iam = moto.client("iam")
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": ["sts:AssumeRole", "sts:TagSession"]}]}
    try:
        arn = iam.create_role(RoleName="GwQuerySigned", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        arn = iam.get_role(RoleName="GwQuerySigned")["Role"]["Arn"]
    iam.put_role_policy(RoleName="GwQuerySigned", PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    return arn


def _reset_auth(moto, count: str) -> str:
    request = urllib.request.Request(f"{moto.url}/moto-api/reset-auth", data=count.encode(), method="POST",
                                     headers={"Content-Type": "text/plain"})  # a form body would be read as a form
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"]


@pytest.fixture
def signatures_checked(moto, admin, open_role) -> Iterator[None]:
    """moto checking every request's SigV4 signature (and IAM policies) while the test runs."""
    previous = _reset_auth(moto, "0")
    try:
        yield
    finally:
        _reset_auth(moto, previous)


def _run(home, step: str, keys: tuple[str, str], **env: str):
    home.write_config(f"[profiles.p]\nsteps = [{KEYS}, {step}]\n")
    home.env["GWT_AKID"], home.env["GWT_SECRET"] = keys
    home.env.update(env)
    return home.run_in_process("credential-process", "--profile", "p")


ASSUME_ROLE = ('{{ use = "assume-role", role_arn = "{role}", session_name = "query", duration = 1800, '
               'external_id = "ext-1", tags = {{ team = "a b", project = "gw" }}, transitive_tag_keys = ["team"], '
               'source_identity = "alice", policy = "{{\\"Version\\":\\"2012-10-17\\",\\"Statement\\":[{{'
               '\\"Effect\\":\\"Allow\\",\\"Action\\":\\"s3:*\\",\\"Resource\\":\\"*\\"}}]}}", '
               f'mfa_serial = "{MFA_SERIAL}", mfa_code = "env:GWT_MFA" }}}}')


def test_assume_role_with_every_parameter(aws_home, moto, iam_user, role):
    result = _run(aws_home, ASSUME_ROLE.format(role=role), iam_user, GWT_MFA="246810")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    issued = moto.lookup(doc["AccessKeyId"])
    assert issued is not None and issued.kind == "assume-role" and issued.source_kind == "long-term"
    assert issued.arn.endswith(f":assumed-role/{ROLE_NAME}/query")
    assert doc["AccountId"] == moto.account_id and doc["SessionToken"] == issued.session_token
    assert moto.mfa_codes[-1][:2] == (MFA_SERIAL, "246810")


def test_session_token_with_mfa(aws_home, moto, iam_user):
    result = _run(aws_home, f'{{ use = "session-token", duration = 900, mfa_serial = "{MFA_SERIAL}", '
                            'mfa_code = "env:GWT_MFA" }', iam_user, GWT_MFA="135791")
    assert result.returncode == 0, result.stderr
    assert moto.lookup(json.loads(result.stdout)["AccessKeyId"]).kind == "session-token"
    assert moto.mfa_codes[-1][:2] == (MFA_SERIAL, "135791")


def test_federation_token_with_policy_arns(aws_home, moto, iam_user):
    result = _run(aws_home, '{ use = "federation-token", name = "bob", duration = 3600, policy_arns = '
                            '["arn:aws:iam::aws:policy/ReadOnlyAccess", "arn:aws:iam::aws:policy/job-function/ViewOnlyAccess"] }',
                  iam_user)
    assert result.returncode == 0, result.stderr
    issued = moto.lookup(json.loads(result.stdout)["AccessKeyId"])
    assert issued.kind == "federation-token" and issued.arn.endswith(":federated-user/bob")


def test_web_identity_unsigned(aws_home, moto, ca, tmp_path, role):
    from gw_emulators.krypton import KryptonEmulator
    from tests.plugins.krypton.conftest import IMSI, OPC, K, write_sim

    with KryptonEmulator(ca, aws_endpoint=moto.url) as krypton:
        krypton.add_subscriber(IMSI, K, OPC)
        sim = write_sim(tmp_path / "sim.json")
        aws_home.write_config(f"""[profiles.web]
steps = [
  {{ use = "krypton", operation = "cognito-openid-token", endpoint = "{krypton.url}", reader = "emulated", sim_file = "{sim}" }},
  {{ use = "web-identity", role_arn = "{role}", session_name = "device", duration = 900 }},
]
""")
        before = moto.count("AssumeRoleWithWebIdentity")
        result = aws_home.run_in_process("credential-process", "--profile", "web")
    assert result.returncode == 0, result.stderr
    issued = moto.lookup(json.loads(result.stdout)["AccessKeyId"])
    assert issued.kind == "web-identity" and issued.arn.endswith(f":assumed-role/{ROLE_NAME}/device")
    assert moto.count("AssumeRoleWithWebIdentity") == before + 1


# -- signatures, checked by moto ---------------------------------------------------------------------------
@pytest.mark.parametrize("step", ["assume-role", "session-token", "federation-token"])
def test_moto_accepts_the_signature(aws_home, moto, admin, open_role, signatures_checked, step):
    steps = {"assume-role": ASSUME_ROLE.format(role=open_role),
             "session-token": f'{{ use = "session-token", mfa_serial = "{MFA_SERIAL}", mfa_code = "env:GWT_MFA" }}',
             "federation-token": '{ use = "federation-token", policy_arns = ["arn:aws:iam::aws:policy/ReadOnlyAccess"] }'}
    result = _run(aws_home, steps[step], admin, GWT_MFA="112233")
    assert result.returncode == 0, result.stderr
    assert moto.lookup(json.loads(result.stdout)["AccessKeyId"]) is not None


def test_a_chained_assume_role_signed_with_a_session_token_is_accepted(aws_home, moto, admin, open_role,
                                                                       signatures_checked):
    """Role chaining: the second AssumeRole is signed with the first one's session (X-Amz-Security-Token)."""
    aws_home.write_config(f"""[profiles.p]
steps = [{KEYS}, {{ use = "assume-role", role_arn = "{open_role}" }}, {{ use = "assume-role", role_arn = "{open_role}" }}]
""")
    aws_home.env["GWT_AKID"], aws_home.env["GWT_SECRET"] = admin
    result = aws_home.run_in_process("credential-process", "--profile", "p")
    assert result.returncode == 0, result.stderr
    assert moto.lookup(json.loads(result.stdout)["AccessKeyId"]).chained


def test_moto_refuses_a_wrong_signature_in_one_line(aws_home, moto, admin, signatures_checked):
    """The check above can fail: the same call with the wrong secret is refused, in one line."""
    result = _run(aws_home, '{ use = "session-token" }', (admin[0], "x" + admin[1][1:]))
    assert result.returncode != 0 and result.stdout == ""
    line, = result.stderr.splitlines()
    assert line.startswith("gw: GetSessionToken failed: SignatureDoesNotMatch: "), line
    assert admin[1][1:12] not in line
