"""The Endorse exchange service: one stateless request handler behind two front doors.

:class:`ExchangeService.handle` takes an :class:`HttpRequest` (built by the local
server in :mod:`.server` or by the Lambda handler in :mod:`.lambda_handler`) and returns
an :class:`HttpAnswer`. It reads the token (``soracom_endorse_token`` query parameter,
a form or JSON body field ``token`` or ``soracom_endorse_token``, or ``Authorization:
Bearer``), verifies it (:mod:`.verify`), checks that the SIM may exchange tokens (IMSI
allowlist and/or a live SORACOM API check, which never follows a redirect), only then
records the ``jti`` and refuses a replay (:mod:`.replay`), assumes the
configured role with session tags from the SIM, and answers AWS credentials or a
presigned AWS IoT WebSocket URL.

Statuses: 400 malformed, 401 bad/expired/replayed token, 403 SIM not allowed, 502
upstream failure, 503 key-fetch budget spent, replay store full or ``no_aws_credentials``
(the service itself has no AWS credentials: nothing was sent to STS). Bodies are ``{"code", "message"}``; nothing secret is echoed and one
JSON log line per request (no token, no credential) goes to the ``log`` callable.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import parse_qs

from .replay import DynamoReplayStore, MemoryReplayStore, ReplayStore
from .settings import ExchangeSettings
from .verify import EndorseClaims, ExchangeError, KeyStore, Verifier, redirect_refused

TOKEN_PARAM = "soracom_endorse_token"
OUTPUTS = ("aws", "iot-wss")
MAX_BODY_BYTES = 65536
SIM_CHECK_TTL = 60.0  # seconds a live SIM check result is reused
ROLE_SESSION_PREFIX = "endorse-"
NO_CREDENTIALS = ("the exchange service has no AWS credentials to call AssumeRole with (set AWS_PROFILE, "
                  "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run it with an IAM role)")


@dataclass
class HttpRequest:
    """A request as both front doors see it. Header names are lower-case."""

    method: str
    path: str
    query: dict[str, list[str]] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    source: str = ""


@dataclass
class HttpAnswer:
    status: int
    body: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)

    def payload(self) -> bytes:
        return b"" if self.body is None else json.dumps(self.body, separators=(",", ":")).encode()


class SoracomSessionSource(Protocol):
    """Gives a SORACOM API session (``api_key``, ``token``, ``endpoint``) for the live SIM check."""

    def __call__(self, refresh: bool) -> Any: ...


def _first(values: Any) -> str | None:
    if isinstance(values, list) and values and isinstance(values[0], str):
        return values[0]
    return None


def token_and_output(request: HttpRequest, max_token_bytes: int) -> tuple[str, str]:
    """The token and the wanted output from a request; :class:`ExchangeError` 400 when malformed."""
    query = request.query if isinstance(request.query, dict) else {}
    fields: dict[str, Any] = {}
    body = request.body or b""
    if len(body) > MAX_BODY_BYTES:
        raise ExchangeError(400, "body_too_large", "the request body is too large")
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if body and request.method == "POST":
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ExchangeError(400, "malformed_body", "the request body is not UTF-8 text") from None
        if content_type == "application/json" or (not content_type and text.lstrip().startswith("{")):
            try:
                doc = json.loads(text)
            except (ValueError, RecursionError):
                raise ExchangeError(400, "malformed_body", "the request body is not valid JSON") from None
            if not isinstance(doc, dict):
                raise ExchangeError(400, "malformed_body", "the request body must be a JSON object")
            fields = doc
        elif content_type in ("application/x-www-form-urlencoded", ""):
            try:
                form = parse_qs(text, keep_blank_values=True, strict_parsing=False, max_num_fields=20)
            except ValueError:
                raise ExchangeError(400, "malformed_body", "the request body has too many fields") from None
            fields = {k: v[0] for k, v in form.items() if v}
        else:
            raise ExchangeError(400, "unsupported_body", "send the token as JSON, a form or an Authorization header")
    candidates: list[Any] = []
    auth = request.headers.get("authorization")
    if isinstance(auth, str) and auth:
        scheme, _, value = auth.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise ExchangeError(400, "malformed_authorization", "the Authorization header must be 'Bearer <token>'")
        candidates.append(value.strip())
    if TOKEN_PARAM in query:
        candidates.append(_first(query.get(TOKEN_PARAM)))
    if "token" in fields:
        candidates.append(fields["token"])
    if TOKEN_PARAM in fields:
        candidates.append(fields[TOKEN_PARAM])
    if not candidates:
        raise ExchangeError(400, "missing_token", "no Endorse token in the request")
    if len(candidates) > 1:
        raise ExchangeError(400, "several_tokens", "give the token in one place only")
    token = candidates[0]
    if not isinstance(token, str) or not token:
        raise ExchangeError(400, "malformed_token", "the token must be a non-empty string")
    if len(token) > max_token_bytes:
        raise ExchangeError(400, "token_too_large", f"the token is larger than {max_token_bytes} bytes")
    output = _first(query.get("output")) if "output" in query else fields.get("output", "aws")
    if output is None:
        output = "aws"
    if output not in OUTPUTS:
        raise ExchangeError(400, "unknown_output", "output must be aws or iot-wss")
    return token, str(output)


def session_name(imsi: str) -> str:
    """The RoleSessionName and source identity derived from an IMSI."""
    return ROLE_SESSION_PREFIX + re.sub(r"[^0-9]", "", imsi)[:32]


class ExchangeService:
    """Verifies Endorse tokens and exchanges them for AWS credentials; thread-safe."""

    def __init__(self, settings: ExchangeSettings, *, soracom_session: SoracomSessionSource | None = None,
                 log: Callable[[str], None] | None = None, clock: Callable[[], float] = time.time,
                 replay_store: ReplayStore | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.keys = KeyStore(settings.key_store_url, verify=settings.tls_verify,
                             fetch_budget=settings.key_fetches_per_minute)
        self.verifier = Verifier(self.keys, leeway=settings.leeway, max_token_bytes=settings.max_token_bytes, clock=clock)
        self.replay: ReplayStore = replay_store or self._replay_store()
        self.soracom_session = soracom_session
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self._sts: Any = None
        self._lock = threading.Lock()
        self._sim_cache: dict[str, tuple[ExchangeError | None, float]] = {}
        if settings.soracom_profile and soracom_session is None:
            raise ValueError("soracom_profile is set: give a SORACOM session source")

    def _replay_store(self) -> ReplayStore:
        table = self.settings.replay_table
        if table:
            return DynamoReplayStore(table, region=self.settings.region, endpoint=self.settings.dynamodb_endpoint,
                                     verify=self.settings.tls_verify, leeway=self.settings.leeway)
        # the verifier accepts a token until exp + leeway: the store remembers its jti as long
        return MemoryReplayStore(clock=self.clock, leeway=self.settings.leeway)

    # -- the front doors call this -----------------------------------------------------
    def handle(self, request: HttpRequest) -> HttpAnswer:
        """Answer one request; never raises."""
        started = time.perf_counter()
        record: dict[str, Any] = {"event": "endorse-exchange", "method": str(request.method)[:10],
                                  "path": str(request.path)[:100], "source": str(request.source)[:64]}
        cors = self.cors_headers(request)
        try:
            if request.method == "OPTIONS":
                answer = HttpAnswer(204, None, self.preflight_headers(request) if cors else {})
            elif request.method not in ("GET", "POST"):
                raise ExchangeError(405, "method_not_allowed", "use GET or POST")
            else:
                answer = HttpAnswer(200, self.exchange(request, record))
        except ExchangeError as exc:
            answer = HttpAnswer(exc.status, exc.body())
            record["code"] = exc.code
        except Exception as exc:  # noqa: BLE001 - a bug must still answer without a trace or a secret
            answer = HttpAnswer(500, {"code": "internal_error", "message": "internal error"})
            record["code"] = "internal_error"
            record["error_type"] = type(exc).__name__
        answer.headers.update(cors)
        answer.headers.setdefault("Cache-Control", "no-store")
        if answer.body is not None:
            answer.headers["Content-Type"] = "application/json"
        record["status"] = answer.status
        record["ms"] = round((time.perf_counter() - started) * 1000, 1)
        with contextlib.suppress(OSError, ValueError):  # a closed stderr must not fail the request
            self.log(json.dumps(record, separators=(",", ":")))
        return answer

    def cors_headers(self, request: HttpRequest) -> dict[str, str]:
        origin = request.headers.get("origin")
        allowed = self.settings.allowed_origins
        if not origin or not allowed or not isinstance(origin, str):
            return {}
        if "*" in allowed:
            return {"Access-Control-Allow-Origin": "*"}
        if origin in allowed:
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        return {}

    @staticmethod
    def preflight_headers(request: HttpRequest) -> dict[str, str]:
        return {
            "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
            "Access-Control-Allow-Headers": "Authorization, Content-Type",
            "Access-Control-Max-Age": "600",
        }

    # -- the exchange ------------------------------------------------------------------
    def exchange(self, request: HttpRequest, record: dict[str, Any]) -> dict[str, Any]:
        token, output = token_and_output(request, self.settings.max_token_bytes)
        record["output"] = output
        if output == "iot-wss" and not self.settings.iot_endpoint:
            raise ExchangeError(400, "iot_not_configured", "this service has no iot_endpoint: output iot-wss is off")
        claims = self.verifier.verify(token)
        record["imsi"] = claims.imsi
        record["jti_sha256"] = hashlib.sha256(claims.jti.encode()).hexdigest()[:16]
        self.authorize(claims)
        # recorded only once every authorization check has passed: a SIM that may not exchange
        # tokens must not fill the replay store (DynamoDB writes, a full memory store's 503)
        if not self.replay.first_use(claims.jti, claims.exp):
            raise ExchangeError(401, "token_replayed", "the token was used before")
        credentials = self.assume_role(claims)
        if output == "iot-wss":
            return self.iot_answer(claims, credentials)
        return {
            "AccessKeyId": credentials["AccessKeyId"],
            "SecretAccessKey": credentials["SecretAccessKey"],
            "SessionToken": credentials["SessionToken"],
            "Expiration": _rfc3339(credentials["Expiration"]),
            "Region": self.settings.region,
            "Imsi": claims.imsi,
        }

    # -- authorization -------------------------------------------------------------------
    def authorize(self, claims: EndorseClaims) -> None:
        s = self.settings
        if s.allowed_imsis and claims.imsi not in s.allowed_imsis:
            raise ExchangeError(403, "sim_not_allowed", "this SIM may not exchange tokens here")
        if s.soracom_profile:
            self.check_sim_live(claims.imsi)

    def check_sim_live(self, imsi: str) -> None:
        """``GET /v1/subscribers/{imsi}``: the SIM exists, is active and (optionally) in an allowed group."""
        now = self.clock()
        with self._lock:
            cached = self._sim_cache.get(imsi)
        if cached is not None and now - cached[1] < SIM_CHECK_TTL:
            if cached[0] is not None:
                raise cached[0]
            return
        verdict = self._ask_soracom(imsi)
        with self._lock:
            if len(self._sim_cache) > 100_000:
                self._sim_cache.clear()
            self._sim_cache[imsi] = (verdict, now)
        if verdict is not None:
            raise verdict

    def _ask_soracom(self, imsi: str) -> ExchangeError | None:
        import requests

        assert self.soracom_session is not None
        response = None
        for refresh in (False, True):
            try:
                session = self.soracom_session(refresh)
            except ExchangeError:
                raise
            except Exception:  # noqa: BLE001 - whatever gw raised, the answer is one safe line
                raise ExchangeError(502, "soracom_session_failed", "no SORACOM API session for the SIM check") from None
            base = str(session.endpoint).rstrip("/")
            base = base.removesuffix("/v1")
            try:
                response = requests.get(
                    f"{base}/v1/subscribers/{imsi}",
                    headers={"X-Soracom-API-Key": session.api_key, "X-Soracom-Token": session.token,
                             "X-Soracom-Lang": "en", "Accept": "application/json"},
                    timeout=10, verify=self.settings.tls_verify, allow_redirects=False,
                )
            except requests.RequestException:
                raise ExchangeError(502, "soracom_unreachable", "the SORACOM API could not be reached") from None
            if 300 <= response.status_code < 400:  # never re-send the API key and token elsewhere
                # named by its endpoint only: the path holds the IMSI
                raise redirect_refused(response, "the SORACOM API (SIM check)", "soracom_redirect", base + "/")
            if response.status_code != 401:
                break
        assert response is not None
        if response.status_code in (400, 404):
            return ExchangeError(403, "sim_unknown", "this SIM is not one of the operator's subscribers")
        if response.status_code != 200:
            raise ExchangeError(502, "soracom_error", f"the SORACOM API answered HTTP {response.status_code}")
        try:
            doc = response.json()
        except ValueError:
            raise ExchangeError(502, "soracom_error", "the SORACOM API answered something that is not JSON") from None
        if not isinstance(doc, dict) or doc.get("imsi") not in (None, imsi):
            raise ExchangeError(502, "soracom_error", "the SORACOM API answered an unexpected document")
        if doc.get("status") != "active":
            return ExchangeError(403, "sim_inactive", "this SIM is not active")
        groups = self.settings.allowed_groups
        if groups and doc.get("groupId") not in groups:
            return ExchangeError(403, "sim_group_not_allowed", "this SIM's group may not exchange tokens here")
        return None

    # -- credentials ---------------------------------------------------------------------
    def sts(self) -> Any:
        with self._lock:
            if self._sts is None:
                import boto3
                from botocore.config import Config

                self._sts = boto3.session.Session().client(
                    "sts", region_name=self.settings.region, endpoint_url=self.settings.sts_endpoint,
                    verify=self.settings.tls_verify,
                    config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=15,
                                  max_pool_connections=50),
                )
            return self._sts

    def assume_role(self, claims: EndorseClaims) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

        tags = [{"Key": "imsi", "Value": claims.imsi}]
        if claims.imei:
            tags.append({"Key": "imei", "Value": claims.imei})
        name = session_name(claims.imsi)
        try:
            answer = self.sts().assume_role(
                RoleArn=self.settings.role_arn, RoleSessionName=name, SourceIdentity=name,
                DurationSeconds=self.settings.duration, Tags=tags,
            )
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "error"))[:60]
            raise ExchangeError(502, "sts_refused", f"AWS STS refused AssumeRole ({code})") from None
        except (NoCredentialsError, PartialCredentialsError):  # nothing was sent: STS is not to blame
            raise ExchangeError(503, "no_aws_credentials", NO_CREDENTIALS) from None
        except BotoCoreError as exc:
            raise ExchangeError(502, "sts_unreachable", f"AWS STS could not be reached ({type(exc).__name__})") from None
        credentials = answer.get("Credentials") if isinstance(answer, dict) else None
        if not isinstance(credentials, dict) or not credentials.get("SessionToken"):
            raise ExchangeError(502, "sts_error", "AWS STS answered without credentials")
        return credentials

    def iot_answer(self, claims: EndorseClaims, credentials: dict[str, Any]) -> dict[str, Any]:
        from types import SimpleNamespace

        from .iot_url import DEFAULT_EXPIRES, presign_mqtt_url

        now = datetime.fromtimestamp(int(self.clock()), UTC)
        expiration = credentials["Expiration"]
        if isinstance(expiration, datetime) and expiration.tzinfo is None:
            expiration = expiration.replace(tzinfo=UTC)
        lifetime = int((expiration - now).total_seconds()) if isinstance(expiration, datetime) else DEFAULT_EXPIRES
        expires = max(1, min(DEFAULT_EXPIRES, lifetime))
        creds = SimpleNamespace(access_key_id=credentials["AccessKeyId"], secret_access_key=credentials["SecretAccessKey"],
                                session_token=credentials["SessionToken"])
        endpoint = self.settings.iot_endpoint or ""
        url = presign_mqtt_url(creds, endpoint, self.settings.iot_region or self.settings.region, now=now, expires=expires)
        return {"url": url, "expiration": _rfc3339(now + timedelta(seconds=expires)), "clientId": claims.imsi,
                "topic_prefix": f"endorse/{claims.imsi}/"}


def _rfc3339(value: Any) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)
