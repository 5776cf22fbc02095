"""MotoStack: real boto3 calls against moto, observed by the WSGI middleware."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import requests

from gw_emulators.aws import MotoStack


def _sts(moto: MotoStack, creds: dict | tuple | None = None):
    if creds is None:
        return moto.client("sts")
    if isinstance(creds, tuple):
        return moto.client("sts", creds[0], creds[1])
    return moto.client("sts", creds["AccessKeyId"], creds["SecretAccessKey"], creds.get("SessionToken"))


def test_user_keys_are_recorded_as_long_term(moto: MotoStack, user: tuple[str, str], unique: str) -> None:
    akid, secret = user
    cred = moto.lookup(akid)
    assert cred is not None
    assert (cred.kind, cred.secret_access_key, cred.session_token, cred.expiration) == ("long-term", secret, None, None)
    assert cred.arn == f"arn:aws:iam::{moto.account_id}:user/user-{unique}"
    assert moto.lookup("AKIANOTISSUEDBYMOTO0") is None
    assert secret not in repr(cred)


def test_assume_role_from_user_keys(moto: MotoStack, user: tuple[str, str], role_arn: str) -> None:
    moto.reset_counts()
    reply = _sts(moto, user).assume_role(RoleArn=role_arn, RoleSessionName="alice", DurationSeconds=7200)
    creds = reply["Credentials"]
    cred = moto.lookup(creds["AccessKeyId"])
    assert cred is not None
    assert cred.kind == "assume-role" and cred.chained is False
    assert cred.secret_access_key == creds["SecretAccessKey"] and cred.session_token == creds["SessionToken"]
    assert cred.arn == reply["AssumedRoleUser"]["Arn"]
    assert cred.expiration is not None and cred.expiration.tzinfo is not None
    assert abs(cred.expiration - creds["Expiration"]) < timedelta(seconds=1)
    left = cred.expiration - datetime.now(UTC)
    assert timedelta(minutes=115) < left <= timedelta(hours=2)
    assert moto.count("AssumeRole") == 1
    # moto itself still works with what it issued (observer is transparent)
    assert _sts(moto, creds).get_caller_identity()["Arn"] == cred.arn
    assert moto.count("GetCallerIdentity") == 1


def test_role_chaining_is_detected(moto: MotoStack, user: tuple[str, str], role_arn: str) -> None:
    first = _sts(moto, user).assume_role(RoleArn=role_arn, RoleSessionName="hop1")["Credentials"]
    second = _sts(moto, first).assume_role(RoleArn=role_arn, RoleSessionName="hop2")["Credentials"]
    third = _sts(moto, second).assume_role(RoleArn=role_arn, RoleSessionName="hop3")["Credentials"]
    assert moto.lookup(first["AccessKeyId"]).chained is False
    assert moto.lookup(second["AccessKeyId"]).chained is True
    assert moto.lookup(third["AccessKeyId"]).chained is True


def test_session_token_then_assume_role_is_not_chaining(moto: MotoStack, user: tuple[str, str], role_arn: str) -> None:
    session = _sts(moto, user).get_session_token()["Credentials"]
    assumed = _sts(moto, session).assume_role(RoleArn=role_arn, RoleSessionName="mfa")["Credentials"]
    assert moto.lookup(session["AccessKeyId"]).kind == "session-token"
    assert moto.lookup(assumed["AccessKeyId"]).chained is False


def test_federation_and_session_tokens_get_unique_keys(moto: MotoStack, user: tuple[str, str]) -> None:
    moto.reset_counts()
    sts = _sts(moto, user)
    fed1 = sts.get_federation_token(Name="bob", Policy='{"Version":"2012-10-17","Statement":[]}')
    fed2 = sts.get_federation_token(Name="carol")
    sess = sts.get_session_token(DurationSeconds=900)["Credentials"]
    keys = {fed1["Credentials"]["AccessKeyId"], fed2["Credentials"]["AccessKeyId"], sess["AccessKeyId"]}
    assert len(keys) == 3 and all(k.startswith("ASIA") for k in keys)
    assert len({fed1["Credentials"]["SessionToken"], sess["SessionToken"]}) == 2
    got = moto.lookup(fed1["Credentials"]["AccessKeyId"])
    assert got.kind == "federation-token"
    assert got.arn == fed1["FederatedUser"]["Arn"] == f"arn:aws:sts::{moto.account_id}:federated-user/bob"
    assert got.secret_access_key == fed1["Credentials"]["SecretAccessKey"]
    assert moto.lookup(sess["AccessKeyId"]).kind == "session-token"
    assert moto.lookup(sess["AccessKeyId"]).session_token == sess["SessionToken"]
    assert (moto.count("GetFederationToken"), moto.count("GetSessionToken")) == (2, 1)


def test_web_identity_is_unsigned_and_counts_as_role(moto: MotoStack, role_arn: str) -> None:
    moto.reset_counts()
    reply = _sts(moto).assume_role_with_web_identity(
        RoleArn=role_arn, RoleSessionName="oidc", WebIdentityToken="header.payload.signature"
    )
    cred = moto.lookup(reply["Credentials"]["AccessKeyId"])
    assert cred.kind == "web-identity" and cred.chained is False
    assert moto.count("AssumeRoleWithWebIdentity") == 1
    chained = _sts(moto, reply["Credentials"]).assume_role(RoleArn=role_arn, RoleSessionName="next")
    assert moto.lookup(chained["Credentials"]["AccessKeyId"]).chained is True


def test_action_in_query_string(moto: MotoStack, user: tuple[str, str], role_arn: str) -> None:
    """A GET with Action in the query (moto does not verify signatures)."""
    first = _sts(moto, user).assume_role(RoleArn=role_arn, RoleSessionName="q1")["Credentials"]
    moto.reset_counts()
    auth = f"AWS4-HMAC-SHA256 Credential={first['AccessKeyId']}/20260101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=00"
    r = requests.get(
        moto.url + "/",
        params={"Action": "AssumeRole", "Version": "2011-06-15", "RoleArn": role_arn, "RoleSessionName": "q2"},
        headers={"Authorization": auth},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert moto.count("AssumeRole") == 1
    chained = [c for c in moto.issued.values() if c.arn and c.arn.endswith("/q2")]
    assert len(chained) == 1 and chained[0].chained is True


def test_iam_calls_are_not_counted_and_deleted_keys_are_forgotten(moto: MotoStack, unique: str) -> None:
    moto.reset_counts()
    akid, _ = moto.create_user(f"gone-{unique}")
    assert sum(moto.calls.values()) == 0
    moto.client("iam").delete_access_key(UserName=f"gone-{unique}", AccessKeyId=akid)
    assert moto.lookup(akid) is None
    assert moto.observer_errors == 0


def test_stop_and_context_manager() -> None:
    with MotoStack() as stack:
        url = stack.url
        assert url.startswith("http://127.0.0.1:")
        assert _sts(stack).get_caller_identity()["Account"] == stack.account_id
    try:
        requests.get(url, timeout=2)
    except requests.ConnectionError:
        pass
    else:  # pragma: no cover
        raise AssertionError("server still answering after stop()")


def test_an_injected_fault_answers_instead_of_moto(moto: MotoStack, user: tuple[str, str], tripwire) -> None:
    """``inject(operation, status=, location=)``: a redirect (Location, no body) or an AWS error document."""
    import botocore.exceptions
    import pytest

    try:
        moto.inject("GetCallerIdentity", status=307, location=tripwire.url())
        raw = requests.post(moto.url, data={"Action": "GetCallerIdentity", "Version": "2011-06-15"}, timeout=10,
                            allow_redirects=False)
        assert raw.status_code == 307 and raw.headers["Location"] == tripwire.url() and raw.content == b""
        moto.inject("GetCallerIdentity", status=403)
        with pytest.raises(botocore.exceptions.ClientError, match="Fault403"):
            _sts(moto, user).get_caller_identity()
        assert _sts(moto, user).get_caller_identity()["Account"] == moto.account_id  # faults are used up
        assert tripwire.contacts() == []
    finally:
        moto.faults.clear()
