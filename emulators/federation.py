"""A stand-in for the AWS console federation endpoint (protocols.md section 2).

``GET /federation?Action=getSigninToken`` trades a temporary session triple for
a sign-in token, ``GET /federation?Action=login`` redeems the token with a 302 to
``Destination``, ``GET /oauth?Action=logout`` answers 302 to ``redirect_uri``.
Credentials are checked against what :class:`gw_emulators.aws.MotoStack` really
issued, with the real endpoint's rules: only role-session and federation-token
credentials work; SessionDuration is accepted only for a role assumed with
long-term IAM user keys (and web-identity/SAML roles), refused for federation-token
credentials, role-chained credentials and a role assumed from GetSessionToken
credentials. Errors are HTML 400 pages, as upstream.

Sign-in tokens live 15 minutes and are single-use here (the real endpoint's reuse
behaviour is not documented; a client that needs one twice is doing it wrong).
"""

from __future__ import annotations

import html
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from .aws import (
    KIND_ASSUME_ROLE,
    KIND_FEDERATION_TOKEN,
    KIND_LONG_TERM,
    ROLE_KINDS,
    IssuedCredential,
    MotoStack,
)
from .httpserver import EmulatorServer, Request, Response, text_response
from .tls import LocalCA

SIGNIN_TOKEN_LIFETIME = timedelta(minutes=15)
SESSION_DURATION_MIN = 900
SESSION_DURATION_MAX = 43200
#: without SessionDuration the console session follows the credentials' own lifetime,
#: up to the longest console session the credential kind allows
ROLE_CONSOLE_MAX = 43200
FEDERATION_TOKEN_CONSOLE_MAX = 129600
SESSION_KEYS = frozenset({"sessionId", "sessionKey", "sessionToken"})


@dataclass(frozen=True)
class ConsoleSession:
    """What a sign-in token grants (no secrets)."""

    arn: str | None
    kind: str
    chained: bool
    duration: int  # console session length in seconds
    duration_requested: bool  # True when SessionDuration was sent
    token_expires: datetime
    logged_in: bool = False
    issuer: str | None = None
    destination: str | None = None


def _error_page(message: str) -> Response:
    body = (
        "<!DOCTYPE html><html><head><title>Amazon Web Services Sign-In</title></head>"
        f"<body><h1>400 Bad Request</h1><p>{html.escape(message)}</p></body></html>"
    )
    return text_response(400, body, "text/html; charset=utf-8")


def _redirect(location: str) -> Response:
    return Response(302, b"", {"Location": location, "Cache-Control": "no-store"})


def _absolute_url(value: str | None) -> bool:
    if not value:
        return False
    parts = urlsplit(value)
    return parts.scheme in ("https", "http") and bool(parts.netloc)


def _duration_refused(cred: IssuedCredential) -> str | None:
    """Why SessionDuration is refused for ``cred``, or None when it is accepted.

    protocols.md section 2: accepted only when the role was assumed with long-term IAM
    user keys; refused for GetFederationToken credentials, role-chained credentials and a
    role assumed from GetSessionToken (MFA session) credentials. AssumeRoleWithWebIdentity
    and AssumeRoleWithSAML are signed by no credential and are not on that list: accepted.
    An AssumeRole signed by keys moto never issued (so unknown here) is taken as long-term
    keys, the only other kind of key moto accepts.
    """
    if cred.kind == KIND_FEDERATION_TOKEN:
        return "SessionDuration is not allowed with federation token credentials."
    if cred.chained:
        return "SessionDuration is not allowed with role-chained credentials."
    if cred.kind == KIND_ASSUME_ROLE and cred.source_kind not in (None, KIND_LONG_TERM):
        return ("SessionDuration is allowed only for a role assumed with long-term IAM user credentials "
                f"(this role was assumed with {cred.source_kind} credentials).")
    return None


class FederationEmulator(EmulatorServer):
    """``/federation`` and ``/oauth`` of signin.aws.amazon.com, over local TLS.

    ``clock`` (returns an aware UTC datetime) lets tests move time forward.
    ``last_session`` is the most recent :class:`ConsoleSession` granted or used.
    """

    name = "federation"

    def now(self) -> datetime:
        """The emulator's clock as an aware UTC datetime."""
        return datetime.fromtimestamp(self.clock(), UTC)

    def __init__(
        self,
        ca: LocalCA | None,
        moto: MotoStack,
        *,
        clock: Callable[[], float] | None = None,
        single_use_tokens: bool = True,
    ) -> None:
        super().__init__(ca, clock=clock)
        self.moto = moto
        self.single_use_tokens = single_use_tokens
        self.last_session: ConsoleSession | None = None
        self._tokens: dict[str, ConsoleSession] = {}
        self._token_lock = threading.Lock()
        self.route("GET", r"/federation", self._federation, "federation")
        self.route("GET", r"/oauth", self._oauth, "oauth")
        self.route("GET", r"/console/?", self._console, "console")

    @property
    def federation_url(self) -> str:
        return f"{self.url}/federation"

    @property
    def logout_url(self) -> str:
        return f"{self.url}/oauth"

    @property
    def console_url(self) -> str:
        """A local landing page to use as Destination."""
        return f"{self.url}/console/"

    # -- /federation -----------------------------------------------------------
    def _federation(self, request: Request) -> Response:
        action = request.arg("Action")
        if action == "getSigninToken":
            response = self._get_signin_token(request)
        elif action == "login":
            response = self._login(request)
        else:
            response = _error_page("Unsupported or missing Action.")
        self.count(f"{action or 'no-action'}{'' if response.status < 400 else '-rejected'}")
        return response

    def _check_session(self, raw: str | None) -> IssuedCredential | str:
        """The issued credential named by the Session JSON, or an error message."""
        if not raw:
            return "Missing Session parameter."
        try:
            session = json.loads(raw)
        except ValueError:
            return "Session is not valid JSON."
        if not isinstance(session, dict) or set(session) != SESSION_KEYS:
            return "Session must hold exactly sessionId, sessionKey and sessionToken."
        if not all(isinstance(v, str) and v for v in session.values()):
            return "Session values must be non-empty strings."
        cred = self.moto.lookup(session["sessionId"])
        if cred is None:
            return "The security token included in the request is invalid."
        if cred.kind == "long-term" or cred.session_token is None:
            return "Long-term credentials cannot be used to sign in to the console."
        if not secrets.compare_digest(cred.secret_access_key, session["sessionKey"]):
            return "The security token included in the request is invalid."
        if not secrets.compare_digest(cred.session_token, session["sessionToken"]):
            return "The security token included in the request is invalid."
        if cred.kind not in ROLE_KINDS and cred.kind != KIND_FEDERATION_TOKEN:
            return "Credentials of this kind cannot be used to sign in to the console."
        if cred.expiration is not None and cred.expiration <= self.now():
            return "The security token included in the request is expired."
        return cred

    def _get_signin_token(self, request: Request) -> Response:
        checked = self._check_session(request.arg("Session"))
        if isinstance(checked, str):
            return _error_page(checked)
        cred = checked
        now = self.now()
        requested = request.arg("SessionDuration")
        if requested is not None:
            refused = _duration_refused(cred)
            if refused is not None:
                return _error_page(refused)
            if not requested.isdigit() or not (
                SESSION_DURATION_MIN <= int(requested) <= SESSION_DURATION_MAX
            ):
                return _error_page(
                    f"SessionDuration must be an integer from {SESSION_DURATION_MIN} to {SESSION_DURATION_MAX}."
                )
            duration = int(requested)
        else:
            remaining = int((cred.expiration - now).total_seconds()) if cred.expiration else ROLE_CONSOLE_MAX
            cap = FEDERATION_TOKEN_CONSOLE_MAX if cred.kind == KIND_FEDERATION_TOKEN else ROLE_CONSOLE_MAX
            duration = max(0, min(remaining, cap))
        granted = ConsoleSession(
            arn=cred.arn,
            kind=cred.kind,
            chained=cred.chained,
            duration=duration,
            duration_requested=requested is not None,
            token_expires=now + SIGNIN_TOKEN_LIFETIME,
        )
        token = secrets.token_urlsafe(96)
        with self._token_lock:
            self._tokens[token] = granted
            self.last_session = granted
        return Response(
            200, json.dumps({"SigninToken": token}).encode(), {"Content-Type": "application/json"}
        )

    def _login(self, request: Request) -> Response:
        token = request.arg("SigninToken")
        destination = request.arg("Destination")
        if not token:
            return _error_page("Missing SigninToken.")
        if not _absolute_url(destination):
            return _error_page("Destination must be an absolute console URL.")
        with self._token_lock:
            granted = self._tokens.get(token)
            if granted is None:
                return _error_page("The sign-in token is invalid or was already used.")
            if granted.token_expires <= self.now():
                self._tokens.pop(token, None)
                return _error_page("The sign-in token has expired.")
            if self.single_use_tokens:
                self._tokens.pop(token, None)
            self.last_session = replace(
                granted, logged_in=True, issuer=request.arg("Issuer"), destination=destination
            )
        return _redirect(destination)  # type: ignore[arg-type]

    # -- /oauth ------------------------------------------------------------------
    def _oauth(self, request: Request) -> Response:
        if request.arg("Action") != "logout":
            self.count("logout-rejected")
            return _error_page("Unsupported or missing Action.")
        self.count("logout")
        target = request.arg("redirect_uri")
        if target is None:
            return text_response(
                200, "<!DOCTYPE html><html><body><p>You have signed out.</p></body></html>", "text/html"
            )
        if not _absolute_url(target):
            return _error_page("redirect_uri must be an absolute URL.")
        return _redirect(target)

    # -- a tiny console ------------------------------------------------------------
    def _console(self, request: Request) -> Response:
        session = self.last_session
        who = html.escape(session.arn or "?") if session and session.logged_in else "nobody"
        page = (
            "<!DOCTYPE html><html><head><title>AWS Management Console (emulated)</title></head>"
            f"<body><h1>AWS Management Console (emulated)</h1><p>Signed in as {who}</p></body></html>"
        )
        return text_response(200, page, "text/html; charset=utf-8")
