"""Shared pieces of the browser-page tests (tests/e2e/endorse/test_browser*.py).

- ``browser_factory``: Debian's headless Chromium through selenium and Debian's chromedriver
  (never a downloaded driver), trusting exactly the TLS leaves it is given (SPKI pins);
- :func:`wait_state` / :func:`wait_message`: wait on what the page shows, never on sleeps;
- :func:`csp_violations`: what Chromium reported as Content-Security-Policy violations, from
  the browser log (``get_log('browser')``) and the page's own ``securitypolicyviolation``
  events (recorded by a script Chromium runs before any of the page's);
- :func:`shot`: a small PNG of the page (docs/images/ when GW_PAGE_SCREENSHOTS is set).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.iot_fixtures import chromium_paths, require

STATIC_DIR = Path(__file__).resolve().parents[2] / "plugins" / "endorse" / "static"
VENDOR_BUNDLE = STATIC_DIR / "vendor" / "mqtt.min.js"
FINAL_STATES = ("connected", "error", "closed", "disconnected")

# runs in every document before the page's scripts: records CSP violations the page meets
_CSP_WATCH = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI.split(':')[0]);
});
"""


def spki_sha256(cert_pem: bytes) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)): what --ignore-certificate-errors-spki-list takes."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(cert_pem)
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def leaf(ca: Any, server: Any) -> bytes:
    return (Path(ca.directory) / f"{server.name}-server.pem").read_bytes()


@pytest.fixture
def browser_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    chromium, chromedriver = chromium_paths()
    require(chromium is not None, "chromium")
    require(chromedriver is not None, "chromium-driver (chromedriver)")
    require(VENDOR_BUNDLE.is_file(), "the vendored mqtt.js bundle (plugins/endorse/static/vendor/mqtt.min.js)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # selenium must never try to download a driver
    drivers: list[Any] = []

    def start(pins: list[str], *, width: int = 900, height: int = 640, block: tuple[str, ...] = ()) -> Any:
        options = webdriver.ChromeOptions()
        options.binary_location = str(chromium)
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-extensions", "--disable-background-networking",
                    f"--window-size={width},{height}", "--hide-scrollbars",
                    f"--user-data-dir={tmp_path / f'chromium-profile-{len(drivers)}'}",
                    # trust exactly the test leaves, nothing else (no blanket --ignore-certificate-errors)
                    "--ignore-certificate-errors-spki-list=" + ",".join(pins)):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(executable_path=str(chromedriver)))
        driver.set_page_load_timeout(30)
        drivers.append(driver)
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": _CSP_WATCH})
        if block:  # URLs the browser must fail to load (a page without its bundle)
            driver.execute_cdp_cmd("Network.enable", {})
            driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": list(block)})
        return driver

    yield start
    for driver in drivers:
        driver.quit()


def redact(text: str) -> str:
    return re.sub(r"(X-Amz-(?:Security-Token|Signature|Credential)=|soracom_endorse_token=)[^&'\s\"]+",
                  r"\1<redacted>", text)


def state(driver: Any) -> str | None:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, "status").get_attribute("data-state")


def status_text(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.ID, "status").text)


def wait_state(driver: Any, wanted: str, timeout: float = 30, *, settle: tuple[str, ...] = FINAL_STATES) -> None:
    """Wait until the page shows ``wanted`` or settles in another final state, and check it is ``wanted``."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: state(d) in (wanted, *settle))
    except TimeoutException:
        pass
    if state(driver) != wanted:
        console = [entry.get("message") for entry in driver.get_log("browser")]
        raise AssertionError(redact(f"page state {state(driver)!r} ({status_text(driver)!r}), wanted {wanted!r}; "
                                    f"url {driver.current_url}; console {console}"))


def wait_message(driver: Any, text: str, timeout: float = 20) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def found(d: Any) -> Any:
        items = d.find_elements(By.CSS_SELECTOR, "#messages li")
        return next((item for item in items if text in item.text), False)

    return WebDriverWait(driver, timeout).until(found)


def csp_violations(driver: Any) -> list[str]:
    """CSP violations Chromium reported: its console log plus the page's securitypolicyviolation events."""
    logged = [str(e.get("message")) for e in driver.get_log("browser")
              if "Content Security Policy" in str(e.get("message"))]
    seen = driver.execute_script("return window.__cspViolations || [];")
    return logged + [str(v) for v in seen]


def shot(driver: Any, tmp_path: Path, name: str) -> Path:
    """A PNG of the page as shown, in the test's tmp dir; with GW_PAGE_SCREENSHOTS=DIR also
    DIR/endorse-page-<name>.png (how docs/images/ is made: see docs/plugins/endorse.md)."""
    path = tmp_path / f"endorse-page-{name}.png"
    # the page's content only (no empty space below it): a smaller file
    height = driver.execute_script("return Math.ceil(document.querySelector('main').getBoundingClientRect().bottom)")
    width = driver.execute_script("return document.documentElement.clientWidth")
    shot_png = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "clip": {"x": 0, "y": 0, "width": width, "height": int(height) + 16, "scale": 1}})
    path.write_bytes(base64.b64decode(shot_png["data"]))
    target = os.environ.get("GW_PAGE_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        (Path(target) / path.name).write_bytes(path.read_bytes())
    return path
