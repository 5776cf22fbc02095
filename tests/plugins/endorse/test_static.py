"""The local server's page routes: GET / and /static/<file> from the package's static/ directory
(the browser page, another helper's), nothing outside it."""

from __future__ import annotations

import threading

import requests

from gw_plugins.endorse import server as server_module
from gw_plugins.endorse.service import ExchangeService
from gw_plugins.endorse.settings import ExchangeSettings


def test_static_files_served_and_nothing_else(tmp_path, monkeypatch, endorse):
    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_text("<!doctype html><title>chat</title>")
    (static / "app.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("outside")
    monkeypatch.setattr(server_module, "STATIC_DIR", static)
    settings = ExchangeSettings(role_arn="arn:aws:iam::123456789012:role/D", allowed_imsis=("440101234567890",),
                                key_store_url=endorse.key_store_url)
    httpd = server_module.make_server(ExchangeService(settings, log=lambda line: None), "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        page = requests.get(base + "/", timeout=10)
        assert page.status_code == 200 and "chat" in page.text and page.headers["Content-Type"].startswith("text/html")
        script = requests.get(base + "/static/app.js", timeout=10)
        assert script.status_code == 200 and "javascript" in script.headers["Content-Type"]
        for path in ("/static/../secret.txt", "/static/%2e%2e/secret.txt", "/static/.hidden", "/static/sub/app.js",
                     "/static/"):
            response = requests.get(base + path, timeout=10)
            assert response.status_code == 404 and "outside" not in response.text, path
        assert requests.post(base + "/", timeout=10).status_code == 404
    finally:
        httpd.shutdown()
        httpd.server_close()
