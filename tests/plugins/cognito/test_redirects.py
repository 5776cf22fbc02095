"""The Cognito token request (HTTP Basic with the client secret) never follows a redirect, and
a 3xx is one line naming where it pointed (issue 15, finding 2). The user pool emulator's
fault injection answers 302/307 with a ``Location`` on a tripwire listener; gw runs in-process."""

from __future__ import annotations

import pytest

from tests.redirect_checks import STATUSES, assert_redirect_refused

from .conftest import write_m2m


@pytest.mark.parametrize("status", STATUSES)
def test_token_request_refuses_a_redirect(gw_home, pool, tripwire, status):
    write_m2m(gw_home, pool, retries=3)
    pool.inject("token", status=status, location=tripwire.url(path="/oauth2/token"), count=4)
    result = gw_home.run_in_process("env", "--profile", "m2m", "--format", "json")
    line = assert_redirect_refused(result, tripwire, [pool.clients["reader"].secret], status=status)
    assert line.startswith(f"gw: the Cognito token endpoint: {pool.token_url} answered {status}"), line
    assert pool.calls["token"] == 1  # a redirect is final: no retry
    pool.faults.clear()
