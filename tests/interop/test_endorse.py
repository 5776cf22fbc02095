"""SORACOM Endorse against a client gw did not write: curl (Debian's, see tests/install-tools.sh).

* curl -> the Endorse emulator: the requests SORACOM's own pages show (docs/protocols.md section 5):
  a GET with query parameters, a POST of a form (``username=sora``, the
  URL-redirection page's login form) and the ``curl -X POST -d '{...}'`` of the request
  page, which sends JSON labelled as a form. Each token's claim is read back.
* curl -> gw's exchange service (``gw serve endorse-exchange``): both ``redirect_url``
  deliveries, the 302 followed by ``curl -L`` and the auto-posted form submitted by curl.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import jwt
import pytest

from tests.plugins.endorse.conftest import base_settings, device_role, endorse, exchange_server  # noqa: F401
from tests.plugins.endorse.test_emulator_and_keys import _auto_post_form


@pytest.fixture
def curl(ca):
    found = shutil.which("curl")
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("curl is not installed (tests/install-tools.sh) and CI=true")
        pytest.skip("curl is not installed (tests/install-tools.sh)")

    def run(*args: str) -> str:
        done = subprocess.run([found, "--silent", "--show-error", "--fail-with-body", "--cacert", str(ca.ca_path),
                               "--max-time", "30", *args], capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr + done.stdout
        return done.stdout

    return run


def claim(answer: str) -> dict:
    token = json.loads(answer)["token"]
    return jwt.decode(token, options={"verify_signature": False})["soracom-endorse-claim"]


def test_curl_requests_from_soracoms_pages_are_accepted(endorse, curl):  # noqa: F811
    assert claim(curl(endorse.url + "/?username=sora&sessionId=123"))["requestParameters"] == {
        "username": "sora", "sessionId": "123"}
    assert claim(curl("--data", "username=sora", endorse.url + "/"))["requestParameters"] == {"username": "sora"}
    labelled = curl("-X", "POST", "--data", '{"username": "sora", "sessionId": "123"}', endorse.url + "/")
    assert claim(labelled)["requestParameters"] == {"username": "sora", "sessionId": "123"}
    bare = claim(curl(endorse.url + "/"))
    assert bare["imsi"] == endorse.default_imsi and "requestParameters" not in bare


@pytest.mark.parametrize("delivery", ["query", "post"])
def test_curl_takes_both_redirect_deliveries_to_the_exchange_service(endorse, base_settings, exchange_server,  # noqa: F811
                                                                    curl, delivery):
    server = exchange_server(base_settings)
    endorse.authorized_redirects = (server.exchange_url,)
    endorse.redirect_delivery = delivery
    start = f"{endorse.url}/?redirect_url={server.exchange_url}"
    if delivery == "query":
        answer = curl("--location", "--data", "username=sora", start)  # the login form's POST, 302 -> GET
    else:
        action, fields = _auto_post_form(curl("--data", "username=sora", start))
        answer = curl("--data-urlencode", f"soracom_endorse_token={fields['soracom_endorse_token']}", action)
    doc = json.loads(answer)
    assert doc["Imsi"] == endorse.default_imsi and doc["AccessKeyId"].startswith("ASIA")
