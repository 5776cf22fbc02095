"""STS never follows a redirect, and a 3xx is one line that says so (issue 15, finding 2).

botocore does not follow redirects, but it handed a 3xx to its XML parser, whose error
("Unable to parse response ... invalid XML received") never said redirect. moto's observer
answers the next call of an operation with a 302/307 and a ``Location`` on a tripwire
listener; gw runs in-process against the real moto server.
"""

from __future__ import annotations

import pytest

from tests.redirect_checks import STATUSES, assert_redirect_refused

ROLE = "arn:aws:iam::123456789012:role/Admin"
KEYS = '{ use = "aws-keys", access_key_id = "env:GWT_AKID", secret_access_key = "env:GWT_SECRET" }'
STEPS = {
    "AssumeRole": f'{{ use = "assume-role", role_arn = "{ROLE}", endpoint = "ENDPOINT" }}',
    "GetSessionToken": '{ use = "session-token", endpoint = "ENDPOINT" }',
    "GetFederationToken": '{ use = "federation-token", endpoint = "ENDPOINT" }',
}


@pytest.fixture
def sts_faults(moto):
    """moto, with any fault a test left unconsumed removed afterwards (it is shared by the session)."""
    yield moto
    moto.faults.clear()


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("operation", list(STEPS))
def test_sts_refuses_a_redirect_with_one_line(gw_home, sts_faults, iam_user, tripwire, operation, status):
    moto = sts_faults
    gw_home.write_config(f"[profiles.p]\nsteps = [{KEYS}, {STEPS[operation].replace('ENDPOINT', moto.url)}]\n")
    gw_home.env["GWT_AKID"], gw_home.env["GWT_SECRET"] = iam_user
    before = moto.count(operation)
    moto.inject(operation, status=status, location=tripwire.url(), count=5)  # retries would meet it too
    result = gw_home.run_in_process("credential-process", "--profile", "p")
    line = assert_redirect_refused(result, tripwire, [iam_user[1]], status=status)
    assert line.startswith(f"gw: AWS STS {operation}: {moto.url}/ answered {status}, "), line
    assert moto.count(operation) == before + 1  # no retry: a redirect is final
