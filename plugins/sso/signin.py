"""Signing in: authorization code with PKCE on a loopback redirect, or the device grant.

Modelled on the AWS CLI v2 (aws/aws-cli, branch v2, ``awscli/customizations/sso/utils.py``:
``AuthCodeFetcher`` listens on 127.0.0.1 for ``/oauth/callback``, ``PKCEAuthorizer`` and
``DeviceAuthorizer``) and botocore's ``SSOTokenFetcher`` (``botocore/utils.py``: polling
with ``interval``, +5 s on ``slow_down``). The URL (and the device flow's user code) are
written to ``/dev/tty`` so a person sees them under an SDK; the browser is ``$BROWSER``
or the platform's opener. No code, verifier or token is ever shown.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from gw.plugin import StepError

from .oidc import DEVICE_GRANT, OidcError, SsoSession, create_token, oidc_call, register_client

SIGNIN_TIMEOUT = 600.0  # seconds a person gets to finish signing in
CALLBACK_PATH = "/oauth/callback"


def notify(ctx: Any, message: str) -> None:
    """Show ``message`` to the person: on ``/dev/tty`` when there is one, else on stderr."""
    try:
        with open("/dev/tty", "w") as tty:
            tty.write(f"gw: {message}\n")
            return
    except OSError:
        pass
    ctx.warn(message)


def open_browser(url: str) -> bool:
    """Open ``url`` with ``$BROWSER`` (each of its ``:``-separated commands, ``%s`` for the URL)
    or the platform's opener; False when there is no browser to open."""
    candidates: list[list[str]] = []
    for entry in (os.environ.get("BROWSER") or "").split(os.pathsep):
        try:
            argv = shlex.split(entry)
        except ValueError:
            continue
        if argv:
            candidates.append([a.replace("%s", url) for a in argv] if "%s" in entry else [*argv, url])
    if not os.environ.get("BROWSER"):
        if sys.platform == "darwin":
            candidates.append(["open", url])
        elif os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
            candidates.append(["xdg-open", url])
    for argv in candidates:
        if shutil.which(argv[0]) is None:
            continue
        try:
            subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
            return True
        except OSError:
            continue
    return False


@dataclass
class Callback:
    code: str | None = None
    error: str | None = None
    state: str | None = None


class _Listener:
    """The loopback redirect target: one answer on ``http://127.0.0.1:<port>/oauth/callback``."""

    def __init__(self) -> None:
        self.result: Callback | None = None
        self.done = threading.Event()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != CALLBACK_PATH or listener.done.is_set():
                    self.send_error(404)
                    return
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                listener.result = Callback(query.get("code"), query.get("error"), query.get("state"))
                text = ("Signed in. You can close this window and return to gw." if query.get("code")
                        else "Sign-in did not complete. Return to gw for details.")
                body = f"<!doctype html><title>gw</title><p>{text}</p>".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                listener.done.set()

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.server.timeout = 0.5
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self.done.is_set():
            self.server.handle_request()

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{CALLBACK_PATH}"

    def __enter__(self) -> _Listener:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.done.set()
        self.thread.join(2)
        self.server.server_close()


def registered_client(ctx: Any, session: SsoSession, *, pkce: bool) -> dict[str, Any]:
    """A client registration for this session and flow: gw's saved one until it nears expiry
    (kept in gw's encrypted state, as the AWS CLI keeps its own), else a new RegisterClient."""
    name = "client." + hashlib.sha256(f"{session.cache_key}\0{session.oidc}\0{pkce}".encode()).hexdigest()[:32]
    saved = ctx.state_get(name)
    if saved and isinstance(saved.get("clientSecret"), str):
        ctx.add_secret(saved["clientSecret"])
        return saved
    try:
        # The AWS CLI registers the port-less loopback URI; the port is chosen per sign-in (RFC 8252 7.3).
        client = register_client(ctx, session, redirect_uri=f"http://127.0.0.1{CALLBACK_PATH}" if pkce else None)
    except OidcError as exc:
        raise StepError(f"the SSO OIDC service refused RegisterClient: {exc}") from None
    expires = client.get("clientSecretExpiresAt")
    if isinstance(expires, int) and expires - time.time() > 86400:
        keep = {k: client[k] for k in ("clientId", "clientSecret", "clientSecretExpiresAt")}
        ctx.state_put(name, keep, float(expires) - 86400)
    return client


def pkce_pair() -> tuple[str, str]:
    """(code verifier, S256 code challenge) as RFC 7636 describes them."""
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def _tokens(answer: dict[str, Any], client: dict[str, Any]) -> dict[str, Any]:
    return {"answer": answer, "client": client}


def sign_in_pkce(ctx: Any, session: SsoSession, *, timeout: float = SIGNIN_TIMEOUT) -> dict[str, Any] | None:
    """The browser sign-in; None when no browser could be opened (the caller uses the device grant)."""
    with _Listener() as listener:
        client = registered_client(ctx, session, pkce=True)
        verifier, challenge = pkce_pair()
        ctx.add_secret(verifier)
        state = secrets.token_urlsafe(24)
        url = session.oidc + "/authorize?" + urlencode({
            "response_type": "code", "client_id": client["clientId"], "redirect_uri": listener.redirect_uri,
            "state": state, "code_challenge_method": "S256", "scopes": " ".join(session.scopes),
            "code_challenge": challenge,
        })
        if not open_browser(url):
            return None
        notify(ctx, f"sign in to {session.start_url} in your browser (on another machine? stop and run "
                    f"{session.login_hint} --use-device-code); if it did not open, visit:\n{url}")
        if not listener.done.wait(timeout):
            raise StepError(f"no answer from the browser sign-in within {timeout:g} s; run {session.login_hint}")
        result = listener.result
    assert result is not None
    if result.state is None or not secrets.compare_digest(result.state, state):
        raise StepError("sign-in refused: the browser's answer did not carry the state gw sent (nothing was written)")
    if result.error:
        reason = "was denied" if result.error == "access_denied" else f"failed ({result.error[:40]})"
        raise StepError(f"the browser sign-in to {session.start_url} {reason}")
    if not result.code:
        raise StepError("the browser sign-in answered without an authorization code")
    ctx.add_secret(result.code)
    try:
        answer = create_token(ctx, session, client, grantType="authorization_code", code=result.code,
                              codeVerifier=verifier, redirectUri=listener.redirect_uri)
    except OidcError as exc:
        raise StepError(f"the SSO OIDC service refused the authorization code: {exc}") from None
    return _tokens(answer, client)


def sign_in_device(ctx: Any, session: SsoSession, *, sleep: Any = time.sleep) -> dict[str, Any]:
    """The device authorization grant: show the code, open the page if possible, poll CreateToken."""
    client = registered_client(ctx, session, pkce=False)
    try:
        device = oidc_call(ctx, session, "/device_authorization",
                           {"clientId": client["clientId"], "clientSecret": client["clientSecret"],
                            "startUrl": session.start_url})
    except OidcError as exc:
        raise StepError(f"the SSO OIDC service refused StartDeviceAuthorization: {exc}") from None
    device_code, user_code = device.get("deviceCode"), device.get("userCode")
    if not isinstance(device_code, str) or not isinstance(user_code, str):
        raise StepError("the SSO OIDC service answered StartDeviceAuthorization without a device and user code")
    ctx.add_secret(device_code)
    page = device.get("verificationUriComplete") or device.get("verificationUri") or ""
    opened = open_browser(page) if page else False
    notify(ctx, f"sign in to {session.start_url}{' in your browser' if opened else ''}: open\n"
                f"{device.get('verificationUri') or page}\nand enter the code {user_code}")
    interval: int = device["interval"] if isinstance(device.get("interval"), int) else 5
    lifetime: float = device["expiresIn"] if isinstance(device.get("expiresIn"), int) else SIGNIN_TIMEOUT
    deadline = time.monotonic() + min(float(lifetime), SIGNIN_TIMEOUT)
    while True:
        try:
            answer = create_token(ctx, session, client, grantType=DEVICE_GRANT, deviceCode=device_code)
            return _tokens(answer, client)
        except OidcError as exc:
            if exc.error == "authorization_pending" or exc.type == "AuthorizationPendingException":
                pass
            elif exc.error == "slow_down" or exc.type == "SlowDownException":
                interval += 5
            elif exc.error == "expired_token" or exc.type == "ExpiredTokenException":
                raise StepError(f"the sign-in code expired before it was approved; run {session.login_hint}") from None
            elif exc.error == "access_denied" or exc.type == "AccessDeniedException":
                raise StepError(f"the sign-in to {session.start_url} was denied") from None
            else:
                raise StepError(f"the SSO OIDC service refused the device sign-in: {exc}") from None
        if time.monotonic() + interval > deadline:
            raise StepError(f"the sign-in code expired before it was approved; run {session.login_hint}")
        sleep(interval)
