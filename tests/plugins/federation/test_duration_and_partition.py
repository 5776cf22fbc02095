# ruff: noqa: F811 - login_home is a fixture imported from test_login
"""``gw login``: SessionDuration only for roles assumed with long-term keys; the partition's STS.

Real gw against moto's STS and the federation emulator over real HTTPS (protocols.md section 2).
"""

from __future__ import annotations

import pytest

from tests.plugins.federation.test_login import (  # noqa: F401
    USER,
    _assume,
    _config,
    _follow,
    _login,
    login_home,
)

MFA_SESSION = '{ use = "session-token", duration = 3600 }'


def test_role_assumed_from_an_mfa_session_gets_no_duration(login_home, federation, ca):
    """aws-keys -> session-token -> assume-role: the endpoint would answer 400 to SessionDuration."""
    _config(login_home, federation, USER, MFA_SESSION, _assume())
    url, stderr = _login(login_home, "--duration", "3600")
    assert stderr.splitlines() == [(
        "gw: warning: SessionDuration is not allowed with a role assumed with session-token credentials, "
        "not long-term IAM user keys; the console session follows their lifetime"
    )]
    session = federation.last_session
    assert session.kind == "assume-role" and not session.duration_requested
    assert _follow(url, ca).status_code == 302


def test_role_assumed_from_long_term_keys_keeps_the_duration(login_home, federation):
    _config(login_home, federation, USER, _assume(), login="duration = 7200")
    _, stderr = _login(login_home)
    assert stderr == ""
    assert federation.last_session.duration_requested and federation.last_session.duration == 7200


def test_no_duration_asked_means_no_warning(login_home, federation):
    _config(login_home, federation, USER, MFA_SESSION, _assume())
    _, stderr = _login(login_home)
    assert stderr == "" and not federation.last_session.duration_requested


@pytest.mark.parametrize("partition, arn_prefix", [
    ("aws", "arn:aws:sts::"), ("aws-cn", "arn:aws-cn:sts::"), ("aws-us-gov", "arn:aws-us-gov:sts::")])
def test_get_federation_token_goes_to_the_partitions_sts(login_home, federation, moto, partition, arn_prefix):
    """moto names the federated user's partition after the region the request was signed for."""
    _config(login_home, federation, USER, login=f'partition = "{partition}"')
    before = moto.count("GetFederationToken")
    _login(login_home)
    assert moto.count("GetFederationToken") == before + 1
    assert federation.last_session.kind == "federation-token"
    assert federation.last_session.arn.startswith(arn_prefix)


def test_login_refresh_fetches_new_role_credentials(login_home, federation, moto):
    _config(login_home, federation, USER, _assume())
    _login(login_home)
    first = federation.last_session.arn
    before = moto.count("AssumeRole")
    _login(login_home)  # cached
    assert moto.count("AssumeRole") == before
    _login(login_home, "--refresh")
    assert moto.count("AssumeRole") == before + 1
    _login(login_home, "--min-ttl", "2h")  # a 1 h role never has 2 h left: fetched again
    assert moto.count("AssumeRole") == before + 2
    assert federation.last_session.arn == first
