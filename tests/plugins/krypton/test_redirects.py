"""Krypton's handshake (the SIM's IMSI, then its RES) and its signed calls never follow a
redirect, and a 3xx is one line naming where it pointed (issue 15, finding 2). The Krypton
emulator's fault injection answers 302/307 with a ``Location`` on a tripwire listener; the
emulated SIM answers the challenge; gw runs in-process."""

from __future__ import annotations

import pytest

from tests.redirect_checks import STATUSES, assert_redirect_refused

from .conftest import write_sim

ROUTES = {  # route name -> where gw's line says it was
    "keys": "/v1/keys",
    "verify": "/v1/keys/",
    "soracom/air/subscriber_metadata": "/v1/provisioning/soracom/air/subscriber_metadata",
}


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("route", list(ROUTES))
def test_krypton_refuses_a_redirect(gw_home, krypton, tmp_path, tripwire, route, status):
    sim = write_sim(tmp_path / "sim.json")
    gw_home.write_config(f'''
[profiles.sim]
steps = [{{ use = "krypton", operation = "subscriber-metadata", endpoint = "{krypton.url}", reader = "emulated", sim_file = "{sim}", timeout = 5 }}]
''')
    krypton.inject(route, status=status, location=tripwire.url(path="/v1/keys"))
    result = gw_home.run_in_process("env", "--profile", "sim", "--format", "json")
    line = assert_redirect_refused(result, tripwire, status=status, notices=("gw: using an EMULATED SIM",))
    assert f": {krypton.url}{ROUTES[route]}" in line and line.startswith("gw: Krypton "), line
    assert krypton.calls[route] == 1


@pytest.mark.parametrize("status", STATUSES)
def test_cognito_identity_after_krypton_refuses_a_redirect(aws_home, moto, ca, tmp_path, tripwire, status):
    """Krypton's OpenID token handed to Cognito Identity (botocore, JSON protocol) in moto:
    GetCredentialsForIdentity answered with a redirect is one line, not a parser error."""
    from gw_emulators.krypton import KryptonEmulator

    from .conftest import IMSI, OPC, K

    with KryptonEmulator(ca, aws_endpoint=moto.url) as krypton:
        krypton.add_subscriber(IMSI, K, OPC)
        sim = write_sim(tmp_path / "sim.json")
        aws_home.write_config(f'''
[profiles.cognito]
steps = [
  {{ use = "krypton", operation = "cognito-openid-token", endpoint = "{krypton.url}", reader = "emulated", sim_file = "{sim}" }},
  {{ use = "cognito-identity", region = "ap-northeast-1" }},
]
''')
        moto.inject("GetCredentialsForIdentity", status=status, location=tripwire.url(), count=5)
        try:
            result = aws_home.run_in_process("credential-process", "--profile", "cognito")
        finally:
            moto.faults.clear()
        line = assert_redirect_refused(result, tripwire, status=status, notices=("gw: using an EMULATED SIM",))
        assert line.startswith(f"gw: AWS Cognito Identity GetCredentialsForIdentity: {moto.url}/ answered {status}")
