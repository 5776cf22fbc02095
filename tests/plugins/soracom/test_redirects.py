"""SORACOM sign-in, switch_user and logout never follow a redirect (issue 15, finding 2).

The finding: a 307 from the HTTPS endpoint to another host over plain HTTP made gw re-send
the ``authKey`` there and accept that host's session. The SORACOM API emulator's fault
injection answers with a ``Location`` on a tripwire listener; gw runs in-process.
"""

from __future__ import annotations

import pytest

from tests.plugins.soracom.soracom_testdata import AUTHKEY, SAM, make_emulator
from tests.redirect_checks import STATUSES, assert_redirect_refused


@pytest.fixture
def api(ca):
    with make_emulator(ca) as emulator:
        yield emulator


@pytest.fixture
def home(gw_home, api):
    gw_home.write_config(f'''
[profiles.s]
steps = [
  {{ use = "soracom-keys", auth_key_id = "{AUTHKEY[0]}", auth_key = "env:GWT_AUTH_KEY" }},
  {{ use = "soracom-auth", endpoint = "{api.url}" }},
]

[profiles.switch]
steps = [
  {{ use = "soracom-keys", auth_key_id = "{AUTHKEY[0]}", auth_key = "env:GWT_AUTH_KEY" }},
  {{ use = "soracom-auth", endpoint = "{api.url}", switch_to = {{ operator_id = "{SAM[0]}", username = "reader" }} }},
]
''')
    gw_home.env["GWT_AUTH_KEY"] = AUTHKEY[1]
    return gw_home


def _session_secrets(api) -> list[str]:
    return [AUTHKEY[1]] + [s for session in api.sessions.values() for s in (session.api_key, session.token)]


@pytest.mark.parametrize("status", STATUSES)
def test_sign_in_refuses_a_redirect(home, api, tripwire, status):
    api.inject("auth", status=status, location=tripwire.url(path="/v1/auth"))
    result = home.run_in_process("env", "--profile", "s", "--format", "json")
    line = assert_redirect_refused(result, tripwire, _session_secrets(api), status=status)
    assert f"{api.url}/v1/auth answered {status}" in line
    assert api.sessions == {} and api.calls["auth"] == 1


@pytest.mark.parametrize("status", STATUSES)
def test_switch_user_refuses_a_redirect(home, api, tripwire, status):
    api.inject("switch_user", status=status, location=tripwire.url(path="/v1/auth/switch_user"))
    result = home.run_in_process("env", "--profile", "switch", "--format", "json")
    line = assert_redirect_refused(result, tripwire, _session_secrets(api), status=status)
    assert "(switch_user)" in line and api.calls["switch_user"] == 1


@pytest.mark.parametrize("status", STATUSES)
def test_logout_refuses_a_redirect(home, api, tripwire, status):
    """``gw cache clear`` logs the cached session out; a redirect is refused (one warning line,
    the session token never sent on) and the local entry is dropped all the same."""
    signed_in = home.run_in_process("env", "--profile", "s", "--format", "json")
    assert signed_in.returncode == 0, signed_in.stderr
    api.inject("logout", status=status, location=tripwire.url(path="/v1/auth/logout"))
    result = home.run_in_process("cache", "clear", "--profile", "s")
    line = assert_redirect_refused(result, tripwire, _session_secrets(api), status=status, warning=True)
    assert line.startswith("gw: warning: could not log out the SORACOM session") and api.calls["logout"] == 1
    assert api.logged_out == []
