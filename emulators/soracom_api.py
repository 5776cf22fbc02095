"""A local stand-in for the SORACOM API (authentication and a few read calls).

Follows ``docs/protocols.md`` section 3:

* ``POST /v1/auth`` with root (email/password), SAM user (operatorId/userName/password)
  or AuthKey (authKeyId/authKey) credentials; ``mfaOTPCode`` (checked with pyotp against
  one shared seed) only for password sign-ins of MFA users - an AuthKey sign-in takes no
  MFA code; ``tokenTimeoutSeconds`` 180..172800. 200 -> ``{apiKey, operatorId, token,
  userName?}``; the token is a JWT whose payload carries ``operator.operatorId`` (soracom-cli
  reads the operator ID from it).
* ``POST /v1/auth/switch_user`` (180..3600; refused -> 400), ``POST /v1/auth/logout``
  (revokes -> 204).
* ``GET /v1/operators/{id}``, ``GET /v1/subscribers/{imsi}``, ``GET /v1/subscribers``
  (``limit``, ``last_evaluated_key``, next page key in ``x-soracom-next-key``), all with
  a live ``X-Soracom-API-Key`` + ``X-Soracom-Token``.
* Errors are ``{"code", "message"}``; the message follows ``X-Soracom-Lang`` (``en``
  default, ``ja``). AUM0002 (invalid credentials) and AUM0063 (MFA code required,
  reported with a Japanese message) are the publicly known codes; the others are
  this emulator's own and are not relied on by gw.

A one-time code is accepted once per user and time step: a replay answers 401.
Every accepted code is appended to :attr:`SoracomApiEmulator.accepted_codes`.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

from .httpserver import EmulatorServer, Request, Response, json_response
from .tls import LocalCA

INVALID_CREDENTIALS = "AUM0002"
MFA_REQUIRED_CODE = "AUM0063"
# Codes below are not from a public source (protocols.md lists AUM0002 and AUM0063 only).
BAD_REQUEST = "AUM0001"
INVALID_SESSION = "AUM0004"
SWITCH_REFUSED = "AUM0009"
NOT_FOUND = "SEM0001"

MESSAGES = {
    "invalid_credentials": ("Invalid username/password supplied.", "ユーザー名またはパスワードが正しくありません。"),
    "mfa_required": ("MFA OTP code is required.", "MFA OTPコードが必要です。"),
    "mfa_invalid": ("Invalid MFA OTP code.", "MFA OTPコードが正しくありません。"),
    "mfa_used": ("Invalid MFA OTP code (already used).", "MFA OTPコードが正しくありません（使用済み）。"),
    "bad_json": ("Request body must be a JSON object.", "リクエストボディは JSON オブジェクトである必要があります。"),
    "bad_body": ("One of email, authKeyId or operatorId+userName is required.",
                 "email、authKeyId、operatorId+userName のいずれかが必要です。"),
    "timeout": ("tokenTimeoutSeconds must be an integer between {low} and {high}.",
                "tokenTimeoutSeconds は {low} から {high} の整数である必要があります。"),
    "invalid_session": ("Invalid API key or token.", "API キーまたはトークンが無効です。"),
    "switch_refused": ("Switching to that user is not allowed.", "そのユーザーへの切り替えは許可されていません。"),
    "no_subscriber": ("No such subscriber.", "指定された SIM が見つかりません。"),
    "no_operator": ("No such operator.", "指定されたオペレーターが見つかりません。"),
    "bad_limit": ("limit must be a positive integer.", "limit は正の整数である必要があります。"),
}


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
class Subscriber:
    imsi: str
    operator_id: str
    status: str = "active"
    group_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        return {"imsi": self.imsi, "operatorId": self.operator_id, "status": self.status,
                "groupId": self.group_id, **self.extra}


class SoracomApiEmulator(EmulatorServer):
    """SORACOM API emulator; ``mfa_seed`` is the base32 TOTP seed of every MFA user."""

    name = "soracom-api"

    def __init__(
        self,
        ca: LocalCA | None = None,
        *,
        mfa_seed: str | None = None,
        totp_period: int = 30,
        totp_digits: int = 6,
        mfa_required_code: str = MFA_REQUIRED_CODE,
        clock: Any = None,
    ) -> None:
        super().__init__(ca, clock=clock)
        self.mfa_seed = mfa_seed
        self.totp_period = totp_period
        self.totp_digits = totp_digits
        self.mfa_required_code = mfa_required_code
        self.accepted_codes: list[str] = []
        self.rejected_codes: list[str] = []
        self.auth_bodies: list[dict[str, Any]] = []  # every /v1/auth body received (tests check fields)
        self.langs: list[str | None] = []  # X-Soracom-Lang of every call
        self.sessions: dict[str, EmulatedSession] = {}  # by api key
        self.logged_out: list[str] = []  # api keys
        self.seen_keys: list[str] = []  # the API key of every call a session authorised
        self.operators: dict[str, dict[str, Any]] = {}
        self._accounts: dict[str, _Account] = {}
        self._subscribers: list[Subscriber] = []
        self._used_steps: set[tuple[str, int]] = set()
        self._state_lock = threading.Lock()
        self._jwt_key = secrets.token_bytes(32)
        self.route("POST", r"/v1/auth", self._auth, "auth")
        self.route("POST", r"/v1/auth/switch_user", self._switch_user, "switch_user")
        self.route("POST", r"/v1/auth/logout", self._logout, "logout")
        self.route("GET", r"/v1/subscribers", self._subscribers_list, "subscribers")
        self.route("GET", r"/v1/subscribers/(?P<imsi>[^/]+)", self._subscriber_get, "subscriber")
        self.route("GET", r"/v1/operators/(?P<operator_id>[^/]+)", self._operator_get, "operator")

    # -- set-up --------------------------------------------------------------
    def add_root(self, email: str, password: str, operator_id: str, mfa: bool = False) -> None:
        self._accounts[f"root:{email}"] = _Account(f"root:{email}", operator_id, password, None, mfa)
        self._operator(operator_id, email)

    def add_sam_user(self, operator_id: str, username: str, password: str, mfa: bool = False) -> None:
        key = f"sam:{operator_id}/{username}"
        self._accounts[key] = _Account(key, operator_id, password, username, mfa)
        self._operator(operator_id)

    def add_auth_key(self, auth_key_id: str, auth_key: str, operator_id: str) -> None:
        """Register an AuthKey (its sign-in never takes an MFA code)."""
        key = f"authkey:{auth_key_id}"
        self._accounts[key] = _Account(key, operator_id, auth_key, None, False)
        self._operator(operator_id)

    def add_subscriber(self, imsi: str, status: str = "active", group_id: str | None = None, *,
                       operator_id: str | None = None, **extra: Any) -> Subscriber:
        """Add a SIM (of ``operator_id``, default the first operator registered)."""
        owner = operator_id or next(iter(self.operators), "OP0000000000")
        sim = Subscriber(imsi, owner, status, group_id, dict(extra))
        with self._state_lock:
            self._subscribers = [s for s in self._subscribers if s.imsi != imsi] + [sim]
        self._operator(owner)
        return sim

    def _operator(self, operator_id: str, email: str | None = None) -> None:
        doc = self.operators.setdefault(operator_id, {"operatorId": operator_id, "email": None,
                                                      "createDate": "2024-01-01T00:00:00Z"})
        if email and not doc["email"]:
            doc["email"] = email

    # -- helpers -------------------------------------------------------------
    def current_code(self, at: float | None = None) -> str:
        """The code an authenticator app would show now (for tests)."""
        return str(self._totp().at(at if at is not None else self.clock()))

    def _totp(self) -> Any:
        import pyotp

        assert self.mfa_seed, "SoracomApiEmulator needs mfa_seed for MFA users"
        return pyotp.TOTP(self.mfa_seed, digits=self.totp_digits, interval=self.totp_period)

    def _error(self, request: Request, status: int, code: str, key: str, **fmt: Any) -> Response:
        en, ja = MESSAGES[key]
        text = ja if (request.header("x-soracom-lang") or "en").lower().startswith("ja") else en
        return json_response(status, {"code": code, "message": text.format(**fmt)})

    def _check_otp(self, request: Request, account: _Account, code: Any) -> Response | None:
        """None when the code is valid and unused; otherwise the 401 answer."""
        if not account.mfa:
            return None
        if not code:
            return self._error(request, 401, self.mfa_required_code, "mfa_required")
        code = str(code)
        totp = self._totp()
        step = int(self.clock() // self.totp_period)
        with self._state_lock:
            for offset in (0, -1, 1):  # valid_window 1
                if secrets.compare_digest(totp.generate_otp(step + offset), code):
                    if (account.key, step + offset) in self._used_steps:
                        self.rejected_codes.append(code)
                        return self._error(request, 401, INVALID_CREDENTIALS, "mfa_used")
                    self._used_steps.add((account.key, step + offset))
                    self.accepted_codes.append(code)
                    return None
            self.rejected_codes.append(code)
        return self._error(request, 401, INVALID_CREDENTIALS, "mfa_invalid")

    def _timeout(self, request: Request, body: dict[str, Any], low: int, high: int, default: int) -> int | Response:
        value = body.get("tokenTimeoutSeconds", default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            return self._error(request, 400, BAD_REQUEST, "timeout", low=low, high=high)
        return value

    def _token(self, operator_id: str, user_name: str | None, expires_at: float) -> str:
        import jwt

        now = int(self.clock())
        payload: dict[str, Any] = {
            "iss": "soracom-api-emulator",
            "iat": now,
            "exp": int(expires_at),
            "jti": secrets.token_hex(8),
            "operator": {"operatorId": operator_id},
        }
        if user_name:
            payload["user"] = {"userName": user_name, "operatorId": operator_id}
        return jwt.encode(payload, self._jwt_key, algorithm="HS256")

    def _new_session(self, operator_id: str, user_name: str | None, timeout: int) -> Response:
        expires_at = self.clock() + timeout
        session = EmulatedSession(
            api_key="api-" + secrets.token_hex(16),
            token=self._token(operator_id, user_name, expires_at),
            operator_id=operator_id,
            user_name=user_name,
            expires_at=expires_at,
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
            or session.expires_at < self.clock()
            or not secrets.compare_digest(session.token, token)
        ):
            return None
        with self._state_lock:
            self.seen_keys.append(api_key)
        return session

    def live_sessions(self) -> list[EmulatedSession]:
        now = self.clock()
        return [s for s in self.sessions.values() if not s.revoked and s.expires_at > now]

    def dispatch(self, request: Request) -> Response:
        with self._state_lock:
            self.langs.append(request.header("x-soracom-lang"))
        return super().dispatch(request)

    # -- handlers ------------------------------------------------------------
    def _auth(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return self._error(request, 400, BAD_REQUEST, "bad_json")
        with self._state_lock:
            self.auth_bodies.append({k: v for k, v in body.items() if k in ("email", "authKeyId", "operatorId",
                                                                            "userName", "tokenTimeoutSeconds")}
                                    | {"fields": sorted(body)})
        timeout = self._timeout(request, body, 180, 172800, 86400)
        if isinstance(timeout, Response):
            return timeout
        if body.get("authKeyId"):
            account = self._accounts.get(f"authkey:{body['authKeyId']}")
            given = body.get("authKey")
        elif body.get("email"):
            account = self._accounts.get(f"root:{body['email']}")
            given = body.get("password")
        elif body.get("operatorId") and body.get("userName"):
            account = self._accounts.get(f"sam:{body['operatorId']}/{body['userName']}")
            given = body.get("password")
        else:
            return self._error(request, 400, BAD_REQUEST, "bad_body")
        if account is None or not isinstance(given, str) or not secrets.compare_digest(account.secret, given):
            return self._error(request, 401, INVALID_CREDENTIALS, "invalid_credentials")
        refused = self._check_otp(request, account, body.get("mfaOTPCode"))
        if refused is not None:
            return refused
        return self._new_session(account.operator_id, account.user_name, timeout)

    def _switch_user(self, request: Request) -> Response:
        source = self.session_for(request)
        if source is None:
            return self._error(request, 401, INVALID_SESSION, "invalid_session")
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return self._error(request, 400, BAD_REQUEST, "bad_json")
        timeout = self._timeout(request, body, 180, 3600, 3600)
        if isinstance(timeout, Response):
            return timeout
        target = self._accounts.get(f"sam:{body.get('operatorId')}/{body.get('userName')}")
        if target is None:
            return self._error(request, 400, SWITCH_REFUSED, "switch_refused")
        return self._new_session(target.operator_id, target.user_name, timeout)

    def _logout(self, request: Request) -> Response:
        session = self.session_for(request)
        if session is None:
            return self._error(request, 401, INVALID_SESSION, "invalid_session")
        with self._state_lock:
            session.revoked = True
            self.logged_out.append(session.api_key)
        return Response(204)

    def _subscribers_list(self, request: Request) -> Response:
        session = self.session_for(request)
        if session is None:
            return self._error(request, 401, INVALID_SESSION, "invalid_session")
        rows = sorted((s for s in self._subscribers if s.operator_id == session.operator_id), key=lambda s: s.imsi)
        after = request.arg("last_evaluated_key")
        if after:
            rows = [s for s in rows if s.imsi > after]
        limit_text = request.arg("limit")
        headers: dict[str, str] = {}
        if limit_text is not None:
            if not limit_text.isdigit() or int(limit_text) < 1:
                return self._error(request, 400, BAD_REQUEST, "bad_limit")
            limit = int(limit_text)
            if len(rows) > limit:
                rows = rows[:limit]
                headers["x-soracom-next-key"] = rows[-1].imsi
        return json_response(200, [s.document() for s in rows], headers)

    def _subscriber_get(self, request: Request) -> Response:
        session = self.session_for(request)
        if session is None:
            return self._error(request, 401, INVALID_SESSION, "invalid_session")
        imsi = request.match.group("imsi") if request.match else ""
        for sim in self._subscribers:
            if sim.imsi == imsi and sim.operator_id == session.operator_id:
                return json_response(200, sim.document())
        return self._error(request, 404, NOT_FOUND, "no_subscriber")

    def _operator_get(self, request: Request) -> Response:
        session = self.session_for(request)
        if session is None:
            return self._error(request, 401, INVALID_SESSION, "invalid_session")
        operator_id = request.match.group("operator_id") if request.match else ""
        if operator_id != session.operator_id or operator_id not in self.operators:
            return self._error(request, 404, NOT_FOUND, "no_operator")
        return json_response(200, self.operators[operator_id])
