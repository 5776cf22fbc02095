"""A scripted $BROWSER for the tests that are not about the browser: it loads the page gw
opens, presses Approve (or Deny, with SSO_TEST_DECISION=deny) and follows the redirect to
gw's loopback listener, as a person's browser would. tests/e2e/sso/test_browser.py
does the same with headless Chromium."""

from __future__ import annotations

import os
import re
import ssl
import sys
import urllib.parse
import urllib.request


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


def main(url: str) -> None:
    context = ssl.create_default_context(cafile=os.environ["SSO_TEST_CA"])
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), _NoRedirect)
    page = opener.open(url, timeout=10).read().decode()
    log = os.environ.get("SSO_TEST_BROWSER_LOG")
    if log:
        with open(log, "a") as f:
            f.write(url + "\n")
    action = re.search(r'action="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page))
    fields["decision"] = os.environ.get("SSO_TEST_DECISION", "approve")
    base = urllib.parse.urlsplit(url)
    target = f"{base.scheme}://{base.netloc}{action}"
    try:
        opener.open(target, data=urllib.parse.urlencode(fields).encode(), timeout=10)
        return  # the device page answers 200
    except urllib.error.HTTPError as exc:
        if exc.code != 302:
            raise
        location = exc.headers["Location"]
    if os.environ.get("SSO_TEST_TAMPER_STATE"):
        location = re.sub(r"state=[^&]*", "state=forged", location)
    urllib.request.urlopen(location, timeout=10).read()


if __name__ == "__main__":
    if os.fork() == 0:  # like a real browser, return at once and work in the background
        try:
            main(sys.argv[1])
        finally:
            os._exit(0)
