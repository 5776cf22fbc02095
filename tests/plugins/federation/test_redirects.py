"""The console federation request (the session's secret key and token in its query) never
follows a redirect, and a 3xx is one line naming where it pointed (issue 15, finding 2).
The federation emulator's fault injection answers 302/307 with a ``Location`` on a tripwire
listener; gw runs in-process."""

from __future__ import annotations

import pytest

from tests.redirect_checks import STATUSES, assert_redirect_refused

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLEsessionTOKEN0123456789abcdef"


@pytest.mark.parametrize("status", STATUSES)
def test_federation_endpoint_refuses_a_redirect(gw_home, federation, tripwire, status):
    gw_home.write_config(f'''
[profiles.p]
steps = [{{ use = "aws-keys", access_key_id = "env:GWT_AKID", secret_access_key = "env:GWT_SECRET", session_token = "env:GWT_TOKEN" }}]
login = {{ endpoint = "{federation.url}/federation" }}
''')
    gw_home.env.update(GWT_AKID="ASIAEXAMPLEEXAMPLE01", GWT_SECRET=SECRET, GWT_TOKEN=TOKEN)
    federation.inject("federation", status=status, location=tripwire.url(path="/federation?Action=getSigninToken"))
    result = gw_home.run_in_process("login", "--profile", "p", "--print")
    line = assert_redirect_refused(result, tripwire, [SECRET, TOKEN], status=status)
    assert line.startswith(f"gw: the federation endpoint: {federation.url}/federation answered {status}"), line
    assert federation.calls["federation"] == 1
