"""No request that carries a secret, or whose answer decides trust, follows a redirect
(issue 15, finding 2): ``gw.plugin.http_request`` never does, and every 3xx becomes one
:class:`gw.plugin.RedirectRefused` line naming where it pointed (``refuse_redirect``).

The upstream is a real HTTPS emulator on 127.0.0.1 whose fault injection answers with a
``Location`` on a tripwire listener. Each client's own case lives beside its plugin's tests
(tests/plugins/*/test_redirects.py, tests/plugins/endorse/test_client_redirects.py).
"""

from __future__ import annotations

import pytest

from gw.plugin import RedirectRefused, StepError, http_request, refuse_redirect
from gw.testing import StubStepContext
from gw_emulators.httpserver import EmulatorServer, json_response
from tests.redirect_checks import POLICY


class Upstream(EmulatorServer):
    name = "upstream"

    def __init__(self, ca) -> None:
        super().__init__(ca)
        self.route("POST", r"/token", lambda request: json_response(200, {"token": "from-the-upstream"}), "token")


@pytest.fixture
def upstream(ca):
    with Upstream(ca) as server:
        yield server


@pytest.fixture
def ctx(tmp_path, ca):
    return StubStepContext(tmp_path, tls_verify=str(ca.ca_path))


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_http_request_never_follows_a_redirect(ctx, upstream, tripwire, status):
    upstream.inject("token", status=status, location=tripwire.url(path="/token"))
    with pytest.raises(RedirectRefused) as caught:
        http_request(ctx, "POST", f"{upstream.url}/token", what="my token service",
                     json={"secret": "s3cr3t-value-0123"}, allow_redirects=True)  # a caller cannot turn it on
    assert str(caught.value) == (f"my token service: {upstream.url}/token answered {status}, a redirect to "
                                 f"http://127.0.0.1:{tripwire.port} - {POLICY}")
    assert caught.value.status == status and caught.value.target == f"http://127.0.0.1:{tripwire.port}"
    assert isinstance(caught.value, StepError) and tripwire.contacts() == []
    assert upstream.calls["token"] == 1
    assert http_request(ctx, "POST", f"{upstream.url}/token", what="my token service").json() == {
        "token": "from-the-upstream"}


def test_other_statuses_are_returned(ctx, upstream):
    upstream.inject("token", status=404)
    assert http_request(ctx, "POST", f"{upstream.url}/token", what="x").status_code == 404


@pytest.mark.parametrize(("url", "location", "target"), [
    ("https://api.soracom.io/v1/auth", "http://evil.example/v1/auth", "http://evil.example:80"),
    ("https://api.soracom.io/v1/auth", "https://u:pw@Evil.Example:8443/x?k=v", "https://evil.example:8443"),
    ("https://api.soracom.io/v1/auth", "/elsewhere", "https://api.soracom.io:443"),
    ("https://api.soracom.io/v1/auth", "//evil.example/x", "https://evil.example:443"),
    ("https://api.soracom.io/v1/auth", "http://[::1]:8080/", "http://[::1]:8080"),
    ("https://api.soracom.io/v1/auth", "http://evil.example:99999999/", "an unreadable Location"),
    ("https://api.soracom.io/v1/auth", "http://ev\x1bil\u00e9.example/", "http://ev?il?.example:80"),
])
def test_the_line_names_where_the_redirect_pointed(url, location, target):
    with pytest.raises(RedirectRefused) as caught:
        refuse_redirect("soracom", url, 307, location)
    assert str(caught.value) == f"soracom: {url} answered 307, a redirect to {target} - {POLICY}"


def test_the_line_never_shows_a_query_or_user_info_and_stays_one_line():
    with pytest.raises(RedirectRefused) as caught:
        refuse_redirect("the federation endpoint", "https://user:pw@signin.example/federation?Session=SECRET", 302,
                        "https://x.example/?SigninToken=SECRET\r\nX: y" + "a" * 500)
    message = str(caught.value)
    assert "SECRET" not in message and "pw" not in message and "\n" not in message and len(message) < 400
    assert message.startswith("the federation endpoint: https://signin.example/federation answered 302, "
                              "a redirect to https://x.example:443 - ")


def test_a_redirect_without_location_and_non_redirects():
    with pytest.raises(RedirectRefused, match=r"^x: https://h.example/ answered 302, a redirect without a Location - "):
        refuse_redirect("x", "https://h.example", 302, None)
    for status in (200, 204, 299, 400, 401, 500):
        refuse_redirect("x", "https://h.example", status, "http://evil.example/")  # no error


# -- no answer at all: NoAnswer, which a plugin may retry (the cognito plugin does) ---------------
def test_no_answer_is_a_step_error_a_plugin_can_retry(ctx, upstream):
    import socket

    from gw.plugin import NoAnswer

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: the connection is refused
        with pytest.raises(NoAnswer) as refused:
            http_request(ctx, "POST", f"https://127.0.0.1:{port}/token", what="my token service")
    assert str(refused.value) == f"cannot reach my token service (127.0.0.1:{port}): connection failed"
    assert refused.value.reason == "connection failed" and isinstance(refused.value, StepError)

    upstream.inject("token", delay=1.5, count=1)
    with pytest.raises(NoAnswer) as slow:
        http_request(ctx, "POST", f"{upstream.url}/token", what="my token service", timeout=0.5)
    assert slow.value.reason == "no answer within 0.5 s"
    assert str(slow.value) == f"my token service ({upstream.url.split('//')[1]}) did not answer within 0.5 s"


def test_the_cognito_token_post_is_http_request():
    """cognito's _post_once keeps no error mapping of its own (it was a copy of http_request's)."""
    from pathlib import Path

    source = (Path(__file__).resolve().parents[2] / "plugins" / "cognito.py").read_text()
    assert "http_request(" in source and "requests.exceptions" not in source and "requests.post" not in source
