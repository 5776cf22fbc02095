"""A stand-in for AWS IAM Identity Center: the SSO OIDC service and the access portal.

Follows docs/protocols.md §11, which was taken from botocore's own service models
(boto/botocore, ``botocore/data/sso-oidc/2019-06-10/service-2.json`` and
``botocore/data/sso/2019-06-10/service-2.json``; rest-json, unsigned); a test reads
those models from the installed botocore and checks every operation against this
emulator. One server answers both APIs (the paths do not overlap), so
``AWS_ENDPOINT_URL_SSO_OIDC`` and ``AWS_ENDPOINT_URL_SSO`` may name the same URL.

OIDC (all POST JSON): ``/client/register`` (RegisterClient), ``/device_authorization``
(StartDeviceAuthorization), ``/token`` (CreateToken: ``authorization_code`` with PKCE S256,
``refresh_token``, and the device code grant with ``authorization_pending``, ``slow_down``,
``expired_token`` and ``access_denied``). Errors are ``{error, error_description}`` with the
exception name in ``x-amzn-ErrorType``. The browser pages: ``GET /authorize`` (the query the
AWS CLI v2 sends, see awscli ``customizations/sso/utils.py``; not in the model, so read
tolerantly) and ``GET /device`` show Approve and Deny buttons; the answer goes to the
loopback ``redirect_uri`` with ``code`` or ``error=access_denied`` and the ``state``.

Portal (bearer token in ``x-amz-sso_bearer_token``): ``GET /federation/credentials``
(GetRoleCredentials), ``GET /assignment/accounts`` (ListAccounts), ``GET /assignment/roles``
(ListAccountRoles), both paginated with ``next_token``/``max_result``, and ``POST /logout``.
Role credentials come from moto's STS (AssumeRole of ``arn:aws:iam::<account>:role/<role>``)
when a :class:`gw_emulators.aws.MotoStack` is given, so the AWS CLI can use them; else
they are random.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import string
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from .httpserver import EmulatorServer, Request, Response, json_response, text_response
from .tls import LocalCA

ACCESS_TOKEN_LIFETIME = 8 * 3600
REGISTRATION_LIFETIME = 90 * 86400
DEVICE_CODE_LIFETIME = 600
AUTH_CODE_LIFETIME = 300
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
ROLE_SESSION = 3600
PAGE_SIZE = 2  # small, so every client must follow nextToken
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"


@dataclass
class Client:
    client_id: str
    secret: str
    expires_at: float
    grant_types: tuple[str, ...]
    redirect_uris: tuple[str, ...]
    scopes: tuple[str, ...]


@dataclass
class DeviceAuth:
    device_code: str
    user_code: str
    client_id: str
    start_url: str
    expires_at: float
    interval: int
    state: str = "pending"  # pending | approved | denied | used
    last_poll: float = 0.0


@dataclass
class AuthRequest:
    """One visit to /authorize, waiting for Approve or Deny."""

    client_id: str
    redirect_uri: str
    state: str
    challenge: str
    scopes: str


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    expires_at: float
    used: bool = False


@dataclass
class Session:
    """What one access token (and its refresh token) stands for."""

    client_id: str
    expires_at: float
    refresh_token: str
    revoked: bool = False


@dataclass
class Account:
    account_id: str
    name: str
    email: str
    roles: list[str] = field(default_factory=list)


def _error(status: int, exc: str, error: str, description: str) -> Response:
    return json_response(status, {"error": error, "error_description": description}, {"x-amzn-ErrorType": exc})


def _portal_error(status: int, exc: str, message: str) -> Response:
    return json_response(status, {"message": message}, {"x-amzn-ErrorType": exc})


def _token(prefix: str, n: int = 32) -> str:
    return prefix + secrets.token_urlsafe(n)


class SsoEmulator(EmulatorServer):
    """IAM Identity Center's OIDC service and access portal on 127.0.0.1 (docs/protocols.md §11)."""

    name = "sso"

    def __init__(self, ca: LocalCA | None = None, *, region: str = "us-east-1", moto: Any = None,
                 user: str = "alice@example.com", clock: Callable[[], float] | None = None,
                 access_token_lifetime: int = ACCESS_TOKEN_LIFETIME, auto_approve: bool = False) -> None:
        super().__init__(ca, clock=clock)
        self.region = region
        self.moto = moto
        self.user = user
        self.access_token_lifetime = access_token_lifetime
        self.auto_approve = auto_approve
        self.device_lifetime = DEVICE_CODE_LIFETIME
        self.clients: dict[str, Client] = {}
        self.devices: dict[str, DeviceAuth] = {}
        self.pending: dict[str, AuthRequest] = {}
        self.grants: dict[str, Grant] = {}
        self.sessions: dict[str, Session] = {}
        self.refresh: dict[str, str] = {}  # refresh token -> access token
        self.accounts: dict[str, Account] = {}
        self.issued_roles: list[tuple[str, str]] = []
        self._state_lock = threading.Lock()
        self.route("POST", r"/client/register", self._register, "RegisterClient")
        self.route("POST", r"/device_authorization", self._device_authorization, "StartDeviceAuthorization")
        self.route("POST", r"/token", self._create_token, "CreateToken")
        self.route("GET", r"/authorize", self._authorize_page, "authorize")
        self.route("POST", r"/authorize/decide", self._authorize_decide, "authorize-decide")
        self.route("GET", r"/device", self._device_page, "device")
        self.route("POST", r"/device/decide", self._device_decide, "device-decide")
        self.route("GET", r"/federation/credentials", self._role_credentials, "GetRoleCredentials")
        self.route("GET", r"/assignment/accounts", self._list_accounts, "ListAccounts")
        self.route("GET", r"/assignment/roles", self._list_roles, "ListAccountRoles")
        self.route("POST", r"/logout", self._logout, "Logout")

    # -- set-up helpers for tests and the demo ----------------------------------
    def add_account(self, account_id: str, name: str, roles: list[str], email: str | None = None) -> Account:
        account = Account(account_id, name, email or f"aws+{name.lower()}@example.com", list(roles))
        self.accounts[account_id] = account
        return account

    def approve(self, user_code: str) -> None:
        """The person approves a device sign-in (as the /device page's Approve button does)."""
        self._decide_device(user_code, True)

    def deny(self, user_code: str) -> None:
        self._decide_device(user_code, False)

    def revoke_all(self) -> None:
        """Revoke every access and refresh token (an administrator ended the sessions)."""
        with self._state_lock:
            for session in self.sessions.values():
                session.revoked = True

    def valid_token(self, token: str | None) -> bool:
        session = self.sessions.get(token or "")
        return bool(session and not session.revoked and session.expires_at > self.clock())

    # -- OIDC ----------------------------------------------------------------------
    def _body(self, request: Request) -> dict[str, Any] | None:
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError):
            return None
        return body if isinstance(body, dict) else None

    def _register(self, request: Request) -> Response:
        body = self._body(request)
        if body is None or not isinstance(body.get("clientName"), str) or body.get("clientType") != "public":
            return _error(400, "InvalidRequestException", "invalid_request", "clientName and clientType public are required")
        redirects = tuple(body.get("redirectUris") or ())
        for uri in redirects:
            parts = urlsplit(uri)
            if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost"):
                return _error(400, "InvalidRedirectUriException", "invalid_redirect_uri", "redirect URIs must be loopback")
        now = int(self.clock())
        client = Client(_token("cid-", 16), _token("csecret-", 48), now + REGISTRATION_LIFETIME,
                        tuple(body.get("grantTypes") or (DEVICE_GRANT, "refresh_token")), redirects,
                        tuple(body.get("scopes") or ()))
        with self._state_lock:
            self.clients[client.client_id] = client
        return json_response(200, {
            "clientId": client.client_id, "clientSecret": client.secret, "clientIdIssuedAt": now,
            "clientSecretExpiresAt": int(client.expires_at),
            "authorizationEndpoint": f"{self.url}/authorize", "tokenEndpoint": f"{self.url}/token",
        })

    def _client(self, body: dict[str, Any]) -> Client | None:
        client = self.clients.get(str(body.get("clientId")))
        if client is None or not secrets.compare_digest(client.secret, str(body.get("clientSecret"))):
            return None
        return client if client.expires_at > self.clock() else None

    def _authenticated(self, request: Request, required: str) -> tuple[dict[str, Any], Client] | Response:
        """The JSON body (with string member ``required``) and the client it authenticates, or the refusal."""
        body = self._body(request)
        if body is None or not isinstance(body.get(required), str):
            return _error(400, "InvalidRequestException", "invalid_request", f"{required} is required")
        client = self._client(body)
        if client is None:
            return _error(401, "InvalidClientException", "invalid_client", "client authentication failed")
        return body, client

    def _device_authorization(self, request: Request) -> Response:
        found = self._authenticated(request, "startUrl")
        if isinstance(found, Response):
            return found
        body, client = found
        user_code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))
        user_code = f"{user_code[:4]}-{user_code[4:]}"
        device = DeviceAuth(_token("dev-"), user_code, client.client_id, body["startUrl"],
                            self.clock() + self.device_lifetime, 1)
        if self.auto_approve:
            device.state = "approved"
        with self._state_lock:
            self.devices[device.device_code] = device
        uri = f"{self.url}/device"
        return json_response(200, {
            "deviceCode": device.device_code, "userCode": user_code, "verificationUri": uri,
            "verificationUriComplete": f"{uri}?{urlencode({'user_code': user_code})}",
            "expiresIn": self.device_lifetime, "interval": device.interval,
        })

    def _create_token(self, request: Request) -> Response:
        found = self._authenticated(request, "grantType")
        if isinstance(found, Response):
            return found
        body, client = found
        grant = body["grantType"]
        if grant == "authorization_code":
            return self._code_grant(client, body)
        if grant == "refresh_token":
            return self._refresh_grant(client, body)
        if grant == DEVICE_GRANT:
            return self._device_grant(client, body)
        return _error(400, "UnsupportedGrantTypeException", "unsupported_grant_type", "unsupported grant type")

    def _issue(self, client: Client) -> Response:
        access, refresh = _token("aoa-", 48), _token("aor-", 48)
        with self._state_lock:
            self.sessions[access] = Session(client.client_id, self.clock() + self.access_token_lifetime, refresh)
            self.refresh[refresh] = access
        return json_response(200, {"accessToken": access, "tokenType": "Bearer",
                                   "expiresIn": self.access_token_lifetime, "refreshToken": refresh})

    def _code_grant(self, client: Client, body: dict[str, Any]) -> Response:
        with self._state_lock:
            grant = self.grants.get(str(body.get("code")))
            ok = grant is not None and not grant.used and grant.client_id == client.client_id
            if grant is not None:
                grant.used = True
        if not ok or grant is None or grant.expires_at < self.clock() or grant.redirect_uri != body.get("redirectUri"):
            return _error(400, "InvalidGrantException", "invalid_grant", "invalid authorization code")
        verifier = str(body.get("codeVerifier") or "")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if not secrets.compare_digest(digest, grant.challenge):
            return _error(400, "InvalidGrantException", "invalid_grant", "code verifier does not match")
        return self._issue(client)

    def _refresh_grant(self, client: Client, body: dict[str, Any]) -> Response:
        with self._state_lock:
            access = self.refresh.pop(str(body.get("refreshToken")), None)
            session = self.sessions.get(access or "")
        if session is None or session.revoked or session.client_id != client.client_id:
            return _error(400, "InvalidGrantException", "invalid_grant", "refresh token is invalid or expired")
        session.revoked = True  # the old access token ends with the rotation
        return self._issue(client)

    def _device_grant(self, client: Client, body: dict[str, Any]) -> Response:
        now = self.clock()
        with self._state_lock:
            device = self.devices.get(str(body.get("deviceCode")))
            if device is None or device.client_id != client.client_id or device.state == "used":
                return _error(400, "InvalidGrantException", "invalid_grant", "invalid device code")
            if device.expires_at < now:
                return _error(400, "ExpiredTokenException", "expired_token", "the device code expired")
            if device.state == "denied":
                return _error(400, "AccessDeniedException", "access_denied", "the sign-in was denied")
            if device.state == "pending":
                too_fast = now - device.last_poll < device.interval
                device.last_poll = now
                if too_fast:
                    device.interval += 5
                    return _error(400, "SlowDownException", "slow_down", "polling too fast")
                return _error(400, "AuthorizationPendingException", "authorization_pending", "waiting for the user")
            device.state = "used"
        return self._issue(client)

    # -- browser pages --------------------------------------------------------------
    def _page(self, title: str, action: str, fields: dict[str, str]) -> Response:
        hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in fields.items())
        doc = (f"<!doctype html><html><head><title>{html.escape(title)}</title></head><body>"
               f"<h1>{html.escape(title)}</h1><p>Signed in as {html.escape(self.user)}</p>"
               f'<form method="post" action="{action}">{hidden}'
               '<button id="approve" type="submit" name="decision" value="approve">Approve</button> '
               '<button id="deny" type="submit" name="decision" value="deny">Deny</button>'
               "</form></body></html>")
        return text_response(200, doc, "text/html; charset=utf-8")

    def _authorize_page(self, request: Request) -> Response:
        client = self.clients.get(request.arg("client_id") or "")
        redirect = request.arg("redirect_uri") or ""
        if client is None or request.arg("response_type") != "code" or request.arg("code_challenge_method") != "S256":
            return text_response(400, "bad authorization request")
        parts = urlsplit(redirect)
        registered = {(urlsplit(u).scheme, urlsplit(u).hostname, urlsplit(u).path) for u in client.redirect_uris}
        if (parts.scheme, parts.hostname, parts.path) not in registered:  # any loopback port (RFC 8252 7.3)
            return text_response(400, "redirect_uri was not registered")
        pending = AuthRequest(client.client_id, redirect, request.arg("state") or "",
                              request.arg("code_challenge") or "", request.arg("scopes") or "")
        request_id = secrets.token_urlsafe(16)
        with self._state_lock:
            self.pending[request_id] = pending
        if self.auto_approve:
            return self._finish(request_id, True)
        return self._page("Allow gw to access your data?", "/authorize/decide", {"request": request_id})

    def _finish(self, request_id: str, approved: bool) -> Response:
        with self._state_lock:
            pending = self.pending.pop(request_id, None)
        if pending is None:
            return text_response(400, "this sign-in request is over")
        if approved:
            code = _token("code-", 24)
            with self._state_lock:
                self.grants[code] = Grant(pending.client_id, pending.redirect_uri, pending.challenge,
                                          self.clock() + AUTH_CODE_LIFETIME)
            query = {"code": code, "state": pending.state}
        else:
            query = {"error": "access_denied", "error_description": "the user denied access", "state": pending.state}
        return Response(302, b"", {"Location": f"{pending.redirect_uri}?{urlencode(query)}"})

    def _authorize_decide(self, request: Request) -> Response:
        form = request.form()
        return self._finish((form.get("request") or [""])[0], (form.get("decision") or [""])[0] == "approve")

    def _device_page(self, request: Request) -> Response:
        return self._page("Authorize request", "/device/decide", {"user_code": request.arg("user_code") or ""})

    def _decide_device(self, user_code: str, approved: bool) -> bool:
        with self._state_lock:
            for device in self.devices.values():
                if device.user_code == user_code and device.state == "pending":
                    device.state = "approved" if approved else "denied"
                    return True
        return False

    def _device_decide(self, request: Request) -> Response:
        form = request.form()
        approved = (form.get("decision") or [""])[0] == "approve"
        if not self._decide_device((form.get("user_code") or [""])[0], approved):
            return text_response(400, "unknown or finished request")
        return text_response(200, "Request approved" if approved else "Request denied")

    # -- the portal -------------------------------------------------------------------
    def _bearer(self, request: Request) -> Response | None:
        if not self.valid_token(request.header("x-amz-sso_bearer_token")):
            return _portal_error(401, "UnauthorizedException", "Session token not found or invalid")
        return None

    def _role_credentials(self, request: Request) -> Response:
        refused = self._bearer(request)
        if refused:
            return refused
        account_id, role = request.arg("account_id"), request.arg("role_name")
        if not account_id or not role:
            return _portal_error(400, "InvalidRequestException", "account_id and role_name are required")
        account = self.accounts.get(account_id)
        if account is None or role not in account.roles:
            return _portal_error(403, "ForbiddenException", "No access")
        self.issued_roles.append((account_id, role))
        return json_response(200, {"roleCredentials": self._credentials(account_id, role)})

    def _credentials(self, account_id: str, role: str) -> dict[str, Any]:
        if self.moto is not None:
            answer = self.moto.client("sts").assume_role(
                RoleArn=f"arn:aws:iam::{account_id}:role/{role}", RoleSessionName=self.user, DurationSeconds=ROLE_SESSION)
            c = answer["Credentials"]
            return {"accessKeyId": c["AccessKeyId"], "secretAccessKey": c["SecretAccessKey"],
                    "sessionToken": c["SessionToken"], "expiration": int(c["Expiration"].timestamp() * 1000)}
        alphabet = string.ascii_uppercase + "234567"
        return {"accessKeyId": "ASIA" + "".join(secrets.choice(alphabet) for _ in range(16)),
                "secretAccessKey": secrets.token_urlsafe(30), "sessionToken": secrets.token_urlsafe(120),
                "expiration": int((self.clock() + ROLE_SESSION) * 1000)}

    def _page_of(self, request: Request, items: list[Any], key: str) -> Response:
        try:
            start = int(request.arg("next_token") or 0)
            size = max(1, min(int(request.arg("max_result") or PAGE_SIZE), PAGE_SIZE))
        except ValueError:
            return _portal_error(400, "InvalidRequestException", "bad next_token or max_result")
        page: dict[str, Any] = {key: items[start : start + size]}
        if start + size < len(items):
            page["nextToken"] = str(start + size)
        return json_response(200, page)

    def _list_accounts(self, request: Request) -> Response:
        refused = self._bearer(request)
        if refused:
            return refused
        items = [{"accountId": a.account_id, "accountName": a.name, "emailAddress": a.email}
                 for a in sorted(self.accounts.values(), key=lambda a: a.account_id)]
        return self._page_of(request, items, "accountList")

    def _list_roles(self, request: Request) -> Response:
        refused = self._bearer(request)
        if refused:
            return refused
        account = self.accounts.get(request.arg("account_id") or "")
        if account is None:
            return _portal_error(404, "ResourceNotFoundException", "account not found")
        items = [{"roleName": r, "accountId": account.account_id} for r in account.roles]
        return self._page_of(request, items, "roleList")

    def _logout(self, request: Request) -> Response:
        refused = self._bearer(request)
        if refused:
            return refused
        with self._state_lock:
            self.sessions[request.header("x-amz-sso_bearer_token") or ""].revoked = True
        return Response(200, b"")
