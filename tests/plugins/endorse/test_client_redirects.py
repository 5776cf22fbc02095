"""The device side never follows a redirect (issue 15, finding 2): neither the ``endorse`` step's
call to SORACOM Endorse (whose answer is the device's token) nor ``endorse-exchange``'s POST,
which carries that token. 302/307 with a ``Location`` on a tripwire listener come from the
Endorse emulator's fault injection, and from a scripted exchange service (which records the
token gw sent, to check it shows nowhere). gw runs in-process.

(The exchange service's own SIM check and its key store are guarded in their own tests.)
"""

from __future__ import annotations

import pytest

from tests.core.hardening_upstream import ScriptedUpstream
from tests.redirect_checks import STATUSES, assert_redirect_refused


@pytest.fixture
def exchange(ca):
    """A scripted exchange service: real HTTPS on 127.0.0.1, answering what the test injects."""
    with ScriptedUpstream(ca) as server:
        yield server


def _profile(home, endorse_url: str, exchange_url: str) -> None:
    home.write_config(f'''
[profiles.d]
region = "us-east-1"
steps = [
  {{ use = "endorse", endpoint = "{endorse_url}", verify = false }},
  {{ use = "endorse-exchange", url = "{exchange_url}/exchange", output = "aws" }},
]
''')


@pytest.mark.parametrize("status", STATUSES)
def test_endorse_step_refuses_a_redirect(gw_home, endorse, exchange, tripwire, status):
    _profile(gw_home, endorse.url, exchange.url)
    endorse.inject("token", status=status, location=tripwire.url(path="/?nonce=x"))
    result = gw_home.run_in_process("credential-process", "--profile", "d")
    line = assert_redirect_refused(result, tripwire, status=status)
    assert line.startswith(f"gw: SORACOM Endorse: {endorse.url}/ answered {status}"), line
    assert endorse.issued == [] and exchange.requests == []  # no token taken from anywhere else


@pytest.mark.parametrize("status", STATUSES)
def test_endorse_exchange_refuses_a_redirect(gw_home, endorse, exchange, tripwire, status):
    _profile(gw_home, endorse.url, exchange.url)
    exchange.answer(status, b"", {"Location": tripwire.url(path="/exchange")})
    result = gw_home.run_in_process("credential-process", "--profile", "d")
    (request,) = exchange.requests
    token = (request.header("authorization") or "").removeprefix("Bearer ")
    assert token.count(".") == 2 and len(endorse.issued) == 1
    line = assert_redirect_refused(result, tripwire, [token], status=status)
    assert line.startswith(f"gw: the Endorse exchange service: {exchange.url}/exchange answered {status}"), line
