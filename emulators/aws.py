"""moto in server mode, watched by a small WSGI observer.

:class:`MotoStack` runs ``moto.server.ThreadedMotoServer`` on 127.0.0.1 (plain
HTTP, a free port) and wraps its WSGI app so that tests can see what really
reached AWS: STS calls are counted by ``Action`` and every credential moto hands
out (STS temporary credentials and IAM ``CreateAccessKey`` user keys) is recorded
as an :class:`IssuedCredential`. The console federation emulator
(:mod:`gw_emulators.federation`) validates session triples against that record.

One deliberate deviation from plain moto: moto answers every GetSessionToken and
GetFederationToken with the same fixed example key (``AKIAIOSFODNN7EXAMPLE``).
Real STS issues a fresh ``ASIA...`` key, secret and token each time, and gw
relies on telling those kinds apart, so the observer replaces that fixed triple
with fresh random values in the response (moto never looks those keys up
again: its GetCallerIdentity already treats them as unknown).

Faults: :meth:`MotoStack.inject` makes the observer answer the next calls of an
operation itself (a status, optionally a ``Location``: ``status=307,
location=tripwire.url()`` is a redirect to another host), as the HTTP emulators'
``inject`` does for their routes.

Nothing here sets process-wide environment variables; point clients at
:attr:`MotoStack.url` explicitly (``endpoint_url=`` or a subprocess env).
"""

from __future__ import annotations

import collections
import io
import json
import logging
import re
import secrets
import string
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from .httpserver import Fault, FaultQueue

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
DUMMY_KEY = "testing"

#: kinds of credential recorded in :attr:`MotoStack.issued`
KIND_ASSUME_ROLE = "assume-role"
KIND_WEB_IDENTITY = "web-identity"
KIND_SAML = "saml"
KIND_FEDERATION_TOKEN = "federation-token"
KIND_SESSION_TOKEN = "session-token"
KIND_LONG_TERM = "long-term"
#: kinds that are role sessions (an AssumeRole made with them is role chaining)
ROLE_KINDS = frozenset({KIND_ASSUME_ROLE, KIND_WEB_IDENTITY, KIND_SAML})

_STS_KINDS = {
    "AssumeRole": KIND_ASSUME_ROLE,
    "AssumeRoleWithWebIdentity": KIND_WEB_IDENTITY,
    "AssumeRoleWithSAML": KIND_SAML,
    "GetFederationToken": KIND_FEDERATION_TOKEN,
    "GetSessionToken": KIND_SESSION_TOKEN,
}
_STS_ACTIONS = frozenset(
    set(_STS_KINDS) | {"GetCallerIdentity", "GetAccessKeyInfo", "DecodeAuthorizationMessage"}
)
_IAM_WATCHED = frozenset({"CreateAccessKey", "DeleteAccessKey"})
_MOTO_FIXED_KEY = "AKIAIOSFODNN7EXAMPLE"
_MAX_FORM_BODY = 1 << 20
_CREDENTIAL_RE = re.compile(r"Credential=([^/,\s]+)/[^/]*/[^/]*/([^/,\s]+)/")
_KEY_ALPHABET = string.ascii_uppercase + "234567"
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"


@dataclass(frozen=True)
class IssuedCredential:
    """A credential moto handed out; ``expiration`` is None for long-term keys."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None
    expiration: datetime | None
    kind: str
    chained: bool = False
    arn: str | None = None
    #: kind of the credential that signed the call which made this one ("long-term",
    #: "session-token", a role kind...); None when the caller was not a credential moto issued
    source_kind: str | None = None

    def __repr__(self) -> str:  # keep secrets out of test output
        return (
            f"IssuedCredential(access_key_id={self.access_key_id!r}, kind={self.kind!r}, "
            f"chained={self.chained}, source_kind={self.source_kind!r}, arn={self.arn!r}, "
            f"expiration={self.expiration!r})"
        )


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find(element: ET.Element, name: str) -> ET.Element | None:
    for child in element.iter():
        if _local(child.tag) == name:
            return child
    return None


def _text(element: ET.Element | None, name: str) -> str | None:
    if element is None:
        return None
    found = _find(element, name)
    return found.text if found is not None and found.text else None


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        if re.fullmatch(r"\d+(\.\d+)?", value):
            return datetime.fromtimestamp(float(value), UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _caller_key(environ: dict[str, Any], query: dict[str, list[str]]) -> tuple[str | None, str | None]:
    """(access key id, service) from the SigV4 Authorization header or a presigned query."""
    m = _CREDENTIAL_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if m:
        return m.group(1), m.group(2)
    cred = (query.get("X-Amz-Credential") or [""])[0].split("/")
    if len(cred) >= 4:
        return cred[0], cred[3]
    return None, None


def _first(root: ET.Element, *names: str) -> ET.Element | None:
    for name in names:
        found = _find(root, name)
        if found is not None:
            return found
    return None


def _parse_credentials(body: bytes) -> dict[str, str | None] | None:
    """Credentials + user ARN from an STS/IAM reply (XML, or JSON as a fallback)."""
    text = body.strip()
    if text.startswith(b"<"):
        root = ET.fromstring(text)
        creds = _first(root, "Credentials", "AccessKey")
        if creds is None:
            return None
        user = _first(root, "AssumedRoleUser", "FederatedUser")
        return {
            "AccessKeyId": _text(creds, "AccessKeyId"),
            "SecretAccessKey": _text(creds, "SecretAccessKey"),
            "SessionToken": _text(creds, "SessionToken"),
            "Expiration": _text(creds, "Expiration"),
            "Arn": _text(user, "Arn"),
            "UserName": _text(creds, "UserName"),
        }
    doc: Any = json.loads(text)
    if isinstance(doc, dict) and len(doc) == 1 and isinstance(next(iter(doc.values())), dict):
        doc = next(iter(doc.values()))  # unwrap a "...Result" envelope
    found: Any = doc.get("Credentials") or doc.get("AccessKey") if isinstance(doc, dict) else None
    if not isinstance(found, dict):
        return None
    who = doc.get("AssumedRoleUser") or doc.get("FederatedUser") or {}
    return {
        "AccessKeyId": found.get("AccessKeyId"),
        "SecretAccessKey": found.get("SecretAccessKey") or found.get("SecretKey"),
        "SessionToken": found.get("SessionToken"),
        "Expiration": str(found["Expiration"]) if found.get("Expiration") is not None else None,
        "Arn": who.get("Arn"),
        "UserName": found.get("UserName"),
    }


def _operation(environ: dict[str, Any], params: dict[str, list[str]]) -> str:
    """The operation a fault is keyed by: Action, X-Amz-Target's operation, or the path."""
    action = next(iter(params.get("Action") or ()), None)
    if action:
        return action
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return target.rpartition(".")[2]
    return str(environ.get("PATH_INFO", "/"))


def _fault_answer(fault: Fault, start_response: Callable[..., Any]) -> Iterable[bytes]:
    """An injected answer: ``Location`` and no body for a redirect, else an AWS query error document."""
    from http.client import responses

    if fault.delay:
        time.sleep(fault.delay)
    status = fault.status or 500
    if fault.location is not None:
        body, headers = b"", [("Location", fault.location)]
    else:
        body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>Fault{status}</Code><Message>injected fault"
                f"</Message></Error><RequestId>{secrets.token_hex(8)}</RequestId></ErrorResponse>").encode()
        headers = [("Content-Type", "text/xml")]
    start_response(f"{status} {responses.get(status, 'Fault')}", [*headers, ("Content-Length", str(len(body)))])
    return [body]


@dataclass
class _Watch:
    service: str
    action: str
    caller: str | None
    params: dict[str, list[str]]


class MotoStack:
    """A moto server on 127.0.0.1 plus a record of what it issued.

    ``calls`` counts STS requests by Action; ``issued`` maps access key id to
    :class:`IssuedCredential`. Use as a context manager or call start()/stop().
    """

    account_id = ACCOUNT_ID
    region = REGION

    def __init__(self, *, quiet: bool = True, unique_temporary_keys: bool = True) -> None:
        self.quiet = quiet
        self.unique_temporary_keys = unique_temporary_keys
        self.calls: collections.Counter[str] = collections.Counter()
        self.issued: dict[str, IssuedCredential] = {}
        #: (MFA serial, code, epoch seconds) of every successful STS call that carried an MFA code, in order
        self.mfa_codes: list[tuple[str, str, float]] = []
        self.observer_errors = 0
        self.last_observer_error: str | None = None
        self.faults = FaultQueue()
        self._lock = threading.Lock()
        self._server: Any = None
        self._boto: Any = None
        self._client_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> MotoStack:
        from moto.server import ThreadedMotoServer  # slow import: only when used

        if self.quiet:
            # werkzeug logs one line per request to stderr unless told otherwise
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        wsgi: Any = server._server  # werkzeug server; handlers call self.server.app
        wsgi.app = self._observer(wsgi.app)
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> MotoStack:
        return self if self._server is not None else self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return self._server.get_host_and_port()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- queries ---------------------------------------------------------------
    def lookup(self, access_key_id: str) -> IssuedCredential | None:
        with self._lock:
            return self.issued.get(access_key_id)

    def count(self, action: str) -> int:
        with self._lock:
            return self.calls[action]

    def reset_counts(self) -> None:
        with self._lock:
            self.calls.clear()

    def reset(self) -> None:
        """Wipe moto's (process-wide) state, the issued record and the counters."""
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")).read()
        with self._lock:
            self.calls.clear()
            self.issued.clear()
            self.mfa_codes.clear()

    def inject(self, operation: str, *, status: int, location: str | None = None, delay: float = 0.0,
               count: int = 1) -> None:
        """Answer the next ``count`` calls of ``operation`` with ``status`` instead of moto.

        ``operation`` is the API action (``AssumeRole``, ``GetSessionToken``, ``GetId``: the
        ``Action`` parameter of query protocols, or the ``X-Amz-Target`` operation of JSON ones),
        or the request path for REST APIs (``/endpoint`` for IoT DescribeEndpoint). With
        ``location`` the answer carries that ``Location`` header and no body, as a redirecting
        front end sends; without it, an AWS query-protocol error document (code ``Fault<status>``).
        """
        self.faults.add(operation, Fault(status=status, delay=delay, count=count, location=location))

    # -- helpers for tests and the demo ----------------------------------------
    def client(
        self,
        service: str,
        access_key_id: str = DUMMY_KEY,
        secret_access_key: str = DUMMY_KEY,
        session_token: str | None = None,
    ) -> Any:
        """A boto3 client for this moto, immune to the caller's AWS_PROFILE/config."""
        import boto3
        import botocore.session

        with self._lock:  # one botocore session per stack: its model loading is slow
            if self._boto is None:
                core = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
                self._boto = boto3.session.Session(botocore_session=core)
            boto = self._boto
        with self._client_lock:
            return boto.client(
                service,
                endpoint_url=self.url,
                region_name=REGION,
                aws_access_key_id=access_key_id,
                aws_secret_access_key=secret_access_key,
                aws_session_token=session_token,
            )

    def create_user(self, name: str) -> tuple[str, str]:
        """Create IAM user ``name`` with one access key; returns (akid, secret)."""
        iam = self.client("iam")
        iam.create_user(UserName=name)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def create_role(self, name: str, max_session_duration: int = 3600) -> str:
        """Create a role any principal of the account may assume; returns its ARN."""
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{self.account_id}:root"},
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                }
            ],
        }
        iam = self.client("iam")
        try:
            role = iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=json.dumps(trust),
                MaxSessionDuration=max_session_duration,
            )
        except iam.exceptions.EntityAlreadyExistsException:  # one moto serves several tests and demo parts
            role = iam.get_role(RoleName=name)
        return role["Role"]["Arn"]

    # -- the observer ----------------------------------------------------------
    def _observer_failed(self, exc: Exception) -> None:
        """The observer never breaks moto: failures are only counted (and kept for debugging)."""
        with self._lock:
            self.observer_errors += 1
            self.last_observer_error = f"{type(exc).__name__}: {exc}"

    def _observer(self, app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        stack = self

        def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            fault = None
            try:
                params = stack._params(environ)
                watch = stack._inspect_request(environ, params)
                fault = stack.faults.take(_operation(environ, params))
            except Exception as exc:
                stack._observer_failed(exc)
                watch = None
            if fault is not None:
                return _fault_answer(fault, start_response)
            if watch is None:
                return app(environ, start_response)
            return stack._buffered(app, environ, start_response, watch)

        return middleware

    @staticmethod
    def _params(environ: dict[str, Any]) -> dict[str, list[str]]:
        """The query and form parameters of a request (a form body is put back for moto)."""
        params = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if environ.get("REQUEST_METHOD") == "POST":
            ctype = environ.get("CONTENT_TYPE", "")
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if ctype.startswith("application/x-www-form-urlencoded") and 0 < length <= _MAX_FORM_BODY:
                body = environ["wsgi.input"].read(length)
                environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again
                params.update(parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True))
        return params

    def _inspect_request(self, environ: dict[str, Any], params: dict[str, list[str]]) -> _Watch | None:
        """Count STS calls; returns what to look for when the reply must be read."""
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        action = next(iter(params.get("Action") or ()), None)
        if action is None:
            return None
        caller, service = _caller_key(environ, query)
        if service is None and action in _STS_ACTIONS:
            service = "sts"  # AssumeRoleWithWebIdentity/SAML are unsigned
        if service == "sts":
            with self._lock:
                self.calls[action] += 1
            if action in _STS_KINDS:
                return _Watch(service, action, caller, params)
        elif service == "iam" and action in _IAM_WATCHED:
            return _Watch(service, action, caller, params)
        return None

    def _buffered(
        self,
        app: Callable[..., Iterable[bytes]],
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        watch: _Watch,
    ) -> Iterable[bytes]:
        captured: dict[str, Any] = {}
        chunks: list[bytes] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            captured["status"], captured["headers"], captured["exc_info"] = status, headers, exc_info
            return chunks.append

        result = app(environ, capture)
        try:
            chunks.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        body = b"".join(chunks)
        status: str = captured["status"]
        headers: list[tuple[str, str]] = list(captured["headers"])
        if status.startswith("200"):
            try:
                new_body = self._record(watch, body)
            except Exception as exc:
                self._observer_failed(exc)
                new_body = None
            if new_body is not None and new_body != body:
                body = new_body
                headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
                headers.append(("Content-Length", str(len(body))))
        start_response(status, headers, captured["exc_info"])
        return [body]

    def _record(self, watch: _Watch, body: bytes) -> bytes | None:
        service, action, caller = watch.service, watch.action, watch.caller
        if service == "iam" and action == "DeleteAccessKey":
            key = (watch.params.get("AccessKeyId") or [""])[0]
            if key:
                with self._lock:
                    self.issued.pop(key, None)
            return None
        code = (watch.params.get("TokenCode") or [""])[0]
        if service == "sts" and code:
            with self._lock:
                self.mfa_codes.append(((watch.params.get("SerialNumber") or [""])[0], code, time.time()))
        parsed = _parse_credentials(body)
        if not parsed or not parsed["AccessKeyId"] or not parsed["SecretAccessKey"]:
            return None
        if service == "iam":
            user = parsed.get("UserName")
            arn = f"arn:aws:iam::{self.account_id}:user/{user}" if user else None
            cred = IssuedCredential(
                parsed["AccessKeyId"], parsed["SecretAccessKey"], None, None, KIND_LONG_TERM, False, arn
            )
            with self._lock:
                self.issued[cred.access_key_id] = cred
            return None
        if self.unique_temporary_keys and parsed["AccessKeyId"] == _MOTO_FIXED_KEY:
            body, parsed = self._freshen(body, parsed)
        kind = _STS_KINDS[action]
        with self._lock:
            source = self.issued.get(caller) if caller else None
            chained = action == "AssumeRole" and source is not None and source.kind in ROLE_KINDS
            cred = IssuedCredential(
                access_key_id=parsed["AccessKeyId"],  # type: ignore[arg-type]
                secret_access_key=parsed["SecretAccessKey"],  # type: ignore[arg-type]
                session_token=parsed["SessionToken"],
                expiration=_parse_time(parsed["Expiration"]),
                kind=kind,
                chained=chained,
                arn=parsed["Arn"],
                source_kind=source.kind if source is not None else None,
            )
            self.issued[cred.access_key_id] = cred
        return body

    @staticmethod
    def _freshen(body: bytes, parsed: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
        """Swap moto's fixed example triple for fresh random values, as real STS would."""
        fresh = dict(parsed)
        fresh["AccessKeyId"] = "ASIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))
        fresh["SecretAccessKey"] = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
        if parsed["SessionToken"]:
            fresh["SessionToken"] = "IQoJb3JpZ2luX2Vj" + secrets.token_urlsafe(300)
        for key in ("AccessKeyId", "SecretAccessKey", "SessionToken"):
            if parsed[key]:
                body = body.replace(parsed[key].encode(), fresh[key].encode())
        return body, fresh
