"""The PKCE sign-in in a real browser: headless Chromium (Debian's chromium + chromedriver,
driven by selenium as tests/plugins/endorse/test_browser.py does).

gw runs as the AWS CLI would run it (``credential-process``); its ``$BROWSER`` hands the URL
to the test, which loads it in Chromium and clicks Approve (or Deny) on the emulator's
``/authorize`` page. Chromium then follows the 302 to gw's loopback listener on 127.0.0.1,
which receives the code (or the refusal).
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.iot_fixtures import chromium_paths, require
from tests.core.gw_test_support import assert_clean_failure
from tests.plugins.sso.conftest import START_URL
from tests.plugins.sso.test_step import token_path


def _spki_sha256(cert_pem: bytes) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(cert_pem)
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@pytest.fixture
def chromium(tmp_path: Path, ca: Any, sso: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    browser, driver_path = chromium_paths()
    require(browser is not None, "chromium")
    require(driver_path is not None, "chromium-driver (chromedriver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")
    pin = _spki_sha256((Path(ca.directory) / f"{sso.name}-server.pem").read_bytes())
    options = webdriver.ChromeOptions()
    options.binary_location = str(browser)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-extensions", "--disable-background-networking",
                f"--user-data-dir={tmp_path / 'chromium-profile'}",
                "--ignore-certificate-errors-spki-list=" + pin):  # trust exactly the emulator's leaf
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(driver_path)))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _hand_over(home: Any, tmp_path: Path) -> Path:
    """``$BROWSER`` = a launcher that hands the URL to the test's Chromium (a file it waits for)."""
    handoff = tmp_path / "url"
    launcher = tmp_path / "launcher.py"
    launcher.write_text(f"import sys\nopen({str(handoff)!r}, 'w').write(sys.argv[1])\n")
    home.env["BROWSER"] = f"{sys.executable} {launcher}"
    return handoff


def _wait_for(path: Path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError("gw never opened the browser")


def _sign_in(chromium: Any, url: str, button: str) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    chromium.get(url)
    chromium.find_element(By.ID, button).click()
    WebDriverWait(chromium, 30).until(lambda d: d.current_url.startswith("http://127.0.0.1:"))
    WebDriverWait(chromium, 30).until(lambda d: "gw" in d.title)
    return chromium.find_element(By.TAG_NAME, "body").text


def test_chromium_approves_and_gws_loopback_listener_gets_the_code(sso_home, sso, chromium, tmp_path):
    handoff = _hand_over(sso_home, tmp_path)
    proc = sso_home.popen("credential-process", "--profile", "dev")
    page = _sign_in(chromium, _wait_for(handoff), "approve")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Signed in" in page
    assert chromium.current_url.split("?")[0].endswith("/oauth/callback")
    assert json.loads(out)["AccountId"] == "111111111111"
    assert sso.calls["authorize-decide"] == 1 and sso.calls["CreateToken"] == 1
    assert token_path(sso_home).exists()


def test_chromium_deny_is_one_line_and_writes_nothing(sso_home, sso, chromium, tmp_path):
    handoff = _hand_over(sso_home, tmp_path)
    proc = sso_home.popen("credential-process", "--profile", "dev")
    page = _sign_in(chromium, _wait_for(handoff), "deny")
    out, err = proc.communicate(timeout=60)
    assert "did not complete" in page
    result = type("R", (), {"returncode": proc.returncode, "stdout": out, "stderr": err})()
    assert_clean_failure(result, contains=f"the browser sign-in to {START_URL} was denied")  # type: ignore[arg-type]
    assert not token_path(sso_home).exists() and sso.calls["CreateToken"] == 0
