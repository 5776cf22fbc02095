"""A local stand-in for the SORACOM API authentication endpoints.

Follows ``shared/protocols.md`` section 3: ``POST /v1/auth`` with root
(email/password), SAM user (operatorId/userName/password) or AuthKey
(authKeyId/authKey) credentials, optional ``mfaOTPCode`` checked with pyotp
against one shared seed, ``tokenTimeoutSeconds`` 180..172800;
``POST /v1/auth/switch_user`` (180..3600), ``POST /v1/auth/logout`` (revokes)
and ``GET /v1/subscribers`` (needs a live ``X-Soracom-API-Key`` +
``X-Soracom-Token``). Errors are ``{"code", "message"}`` bodies.

A one-time code is accepted once per user and time step: a replay answers 401.
Every accepted code is appended to :attr:`SoracomApiEmulator.accepted_codes`.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .httpserver import EmulatorServer, Request, Response, json_response
from .tls import LocalCA

INVALID_CREDENTIALS = "AUM0002"
# Not confirmed by any public source (protocols.md section 3): the plugin detects
# the "MFA required" answer by its message and keeps the code configurable.
MFA_REQUIRED_CODE = "AUM0016"
BAD_REQUEST = "AUM0001"
INVALID_SESSION = "AUM0003"
MFA_REQUIRED_MESSAGE = "MFA OTP code is required for this user."
MFA_INVALID_MESSAGE = "Invalid MFA OTP code."


@dataclass
class _Account:
    key: str  # "root:<email>", "sam:<operator>/<user>", "authkey:<id>"
    operator_id: str
    secret: str
    user_name: str | None = None
    mfa: bool = False


@dataclass
class EmulatedSession:
    api_key: str
    token: str
    operator_id: str
    user_name: str | None
    expires_at: float
    revoked: bool = False


@dataclass
class _Subscriber:
    imsi: str
    operator_id: str
    extra: dict[str, Any] = field(default_factory=dict)


def _error(status: int, code: str, message: str) -> Response:
    return json_response(status, {"code": code, "message": message})


class SoracomApiEmulator(EmulatorServer):
    """SORACOM API auth emulator; ``mfa_seed`` is the base32 TOTP seed of every MFA user."""

    name = "soracom-api"

    def __init__(
        self,
        ca: LocalCA | None = None,
        *,
        mfa_seed: str | None = None,
        totp_period: int = 30,
        totp_digits: int = 6,
        mfa_required_code: str = MFA_REQUIRED_CODE,
    ) -> None:
        super().__init__(ca)
        self.mfa_seed = mfa_seed
        self.totp_period = totp_period
        self.totp_digits = totp_digits
        self.mfa_required_code = mfa_required_code
        self.accepted_codes: list[str] = []
        self.rejected_codes: list[str] = []
        self.sessions: dict[str, EmulatedSession] = {}  # by api key
        self.logged_out: list[str] = []  # api keys
        self._accounts: dict[str, _Account] = {}
        self._subscribers: list[_Subscriber] = []
        self._used_steps: set[tuple[str, int]] = set()
        self._state_lock = threading.Lock()
        self.route("POST", r"/v1/auth", self._auth, "auth")
        self.route("POST", r"/v1/auth/switch_user", self._switch_user, "switch_user")
        self.route("POST", r"/v1/auth/logout", self._logout, "logout")
        self.route("GET", r"/v1/subscribers", self._subscribers_list, "subscribers")

    # -- set-up --------------------------------------------------------------
    def add_root(self, email: str, password: str, operator_id: str, mfa: bool = False) -> None:
        self._accounts[f"root:{email}"] = _Account(f"root:{email}", operator_id, password, None, mfa)
        self._default_subscriber(operator_id)

    def add_sam_user(self, operator_id: str, username: str, password: str, mfa: bool = False) -> None:
        key = f"sam:{operator_id}/{username}"
        self._accounts[key] = _Account(key, operator_id, password, username, mfa)
        self._default_subscriber(operator_id)

    def add_auth_key(self, auth_key_id: str, auth_key: str, operator_id: str, mfa: bool = False) -> None:
        """Register an AuthKey. ``mfa=True`` makes it demand a code too (the real
        service's behaviour for AuthKeys of MFA users is not documented)."""
        key = f"authkey:{auth_key_id}"
        self._accounts[key] = _Account(key, operator_id, auth_key, None, mfa)
        self._default_subscriber(operator_id)

    def add_subscriber(self, operator_id: str, imsi: str, **extra: Any) -> None:
        self._subscribers.append(_Subscriber(imsi, operator_id, extra))

    def _default_subscriber(self, operator_id: str) -> None:
        if not any(s.operator_id == operator_id for s in self._subscribers):
            digits = "".join(c for c in operator_id if c.isdigit())[-10:].rjust(10, "0")
            self.add_subscriber(operator_id, "44010" + digits)

    # -- helpers -------------------------------------------------------------
    def current_code(self, at: float | None = None) -> str:
        """The code an authenticator app would show now (for tests)."""
        return self._totp().at(at if at is not None else time.time())

    def _totp(self) -> Any:
        import pyotp

        assert self.mfa_seed, "SoracomApiEmulator needs mfa_seed for MFA users"
        return pyotp.TOTP(self.mfa_seed, digits=self.totp_digits, interval=self.totp_period)

    def _check_otp(self, account: _Account, code: Any) -> Response | None:
        """None when the code is valid and unused; otherwise the 401 answer."""
        if not account.mfa:
            return None
        if not code:
            return _error(401, self.mfa_required_code, MFA_REQUIRED_MESSAGE)
        code = str(code)
        totp = self._totp()
        now = time.time()
        step = int(now // self.totp_period)
        with self._state_lock:
            for offset in (0, -1, 1):  # valid_window 1
                if secrets.compare_digest(totp.generate_otp(step + offset), code):
                    if (account.key, step + offset) in self._used_steps:
                        self.rejected_codes.append(code)
                        return _error(401, INVALID_CREDENTIALS, MFA_INVALID_MESSAGE + " (already used)")
                    self._used_steps.add((account.key, step + offset))
                    self.accepted_codes.append(code)
                    return None
            self.rejected_codes.append(code)
        return _error(401, INVALID_CREDENTIALS, MFA_INVALID_MESSAGE)

    @staticmethod
    def _timeout(body: dict[str, Any], low: int, high: int, default: int) -> int | Response:
        value = body.get("tokenTimeoutSeconds", default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            return _error(400, BAD_REQUEST, f"tokenTimeoutSeconds must be an integer between {low} and {high}.")
        return value

    def _new_session(self, operator_id: str, user_name: str | None, timeout: int) -> Response:
        session = EmulatedSession(
            api_key="api-" + secrets.token_hex(16),
            token=secrets.token_urlsafe(48),
            operator_id=operator_id,
            user_name=user_name,
            expires_at=time.time() + timeout,
        )
        with self._state_lock:
            self.sessions[session.api_key] = session
        doc: dict[str, Any] = {"apiKey": session.api_key, "operatorId": operator_id, "token": session.token}
        if user_name:
            doc["userName"] = user_name
        return json_response(200, doc)

    def session_for(self, request: Request) -> EmulatedSession | None:
        api_key = request.header("x-soracom-api-key")
        token = request.header("x-soracom-token")
        if not api_key or not token:
            return None
        session = self.sessions.get(api_key)
        if (
            session is None
            or session.revoked
            or session.expires_at < time.time()
            or not secrets.compare_digest(session.token, token)
        ):
            return None
        return session

    def live_sessions(self) -> list[EmulatedSession]:
        now = time.time()
        return [s for s in self.sessions.values() if not s.revoked and s.expires_at > now]

    # -- handlers ------------------------------------------------------------
    def _auth(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            return _error(400, BAD_REQUEST, "Request body must be JSON.")
        if not isinstance(body, dict):
            return _error(400, BAD_REQUEST, "Request body must be a JSON object.")
        timeout = self._timeout(body, 180, 172800, 86400)
        if isinstance(timeout, Response):
            return timeout
        if body.get("authKeyId"):
            account = self._accounts.get(f"authkey:{body['authKeyId']}")
            given = body.get("authKey")
            bad = "Invalid AuthKeyId or AuthKey."
        elif body.get("email"):
            account = self._accounts.get(f"root:{body['email']}")
            given = body.get("password")
            bad = "Invalid email address or password."
        elif body.get("operatorId") and body.get("userName"):
            account = self._accounts.get(f"sam:{body['operatorId']}/{body['userName']}")
            given = body.get("password")
            bad = "Invalid operator ID, user name or password."
        else:
            return _error(400, BAD_REQUEST, "One of email, authKeyId or operatorId+userName is required.")
        if account is None or not isinstance(given, str) or not secrets.compare_digest(account.secret, given):
            return _error(401, INVALID_CREDENTIALS, bad)
        refused = self._check_otp(account, body.get("mfaOTPCode"))
        if refused is not None:
            return refused
        return self._new_session(account.operator_id, account.user_name, timeout)

    def _switch_user(self, request: Request) -> Response:
        source = self.session_for(request)
        if source is None:
            return _error(401, INVALID_SESSION, "Invalid API key or token.")
        try:
            body = request.json()
        except ValueError:
            return _error(400, BAD_REQUEST, "Request body must be JSON.")
        timeout = self._timeout(body, 180, 3600, 3600)
        if isinstance(timeout, Response):
            return timeout
        target = self._accounts.get(f"sam:{body.get('operatorId')}/{body.get('userName')}")
        if target is None:
            return _error(403, "AUM0009", "Switching to that user is not allowed.")
        return self._new_session(target.operator_id, target.user_name, timeout)

    def _logout(self, request: Request) -> Response:
        session = self.session_for(request)
        if session is None:
            return _error(401, INVALID_SESSION, "Invalid API key or token.")
        with self._state_lock:
            session.revoked = True
            self.logged_out.append(session.api_key)
        return Response(200)

    def _subscribers_list(self, request: Request) -> Response:
        session = self.session_for(request)
        if session is None:
            return _error(401, INVALID_SESSION, "Invalid API key or token.")
        rows = [
            {"imsi": s.imsi, "operatorId": s.operator_id, "status": "active", **s.extra}
            for s in self._subscribers
            if s.operator_id == session.operator_id
        ]
        return json_response(200, rows)
