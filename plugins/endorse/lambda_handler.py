"""The exchange service's AWS Lambda front door: ``gw_plugins.endorse.lambda_handler.handler``.

API Gateway proxy events in both payload formats: REST API (v1: ``httpMethod``,
``multiValueQueryStringParameters``) and HTTP API (v2: ``version = "2.0"``,
``requestContext.http.method``, ``rawQueryString``); see the AWS docs "Working with AWS
Lambda proxy integrations for HTTP APIs" (payload format versions) and the
aws-lambda-go ``events/apigw.go`` structures. Settings come from ``GW_ENDORSE_<KEY>``
variables (:func:`.settings.load_env`) and the service is built once per instance.

For the live SIM check (``GW_ENDORSE_SORACOM_PROFILE``) the instance runs
``gw soracom-token --profile P`` (gw and its config packaged with the function,
``GW_CONFIG`` pointing at it); the session is reused until it nears expiry.
"""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import time
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs

from .service import ExchangeService, HttpRequest
from .verify import ExchangeError

_service: ExchangeService | None = None
_guard = threading.Lock()


class GwCliSession:
    """A SORACOM API session from ``gw soracom-token --profile P --format json``."""

    def __init__(self, profile: str, gw: str = "gw") -> None:
        self.profile = profile
        self.gw = gw
        self._session: Any = None
        self._until = 0.0

    def __call__(self, refresh: bool) -> Any:
        if self._session is not None and not refresh and time.time() < self._until:
            return self._session
        try:
            done = subprocess.run([self.gw, "soracom-token", "--profile", self.profile, "--format", "json"],
                                  check=False, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired):
            raise ExchangeError(502, "soracom_session_failed", "no SORACOM API session for the SIM check") from None
        if done.returncode != 0:
            raise ExchangeError(502, "soracom_session_failed", "no SORACOM API session for the SIM check")
        try:
            doc = json.loads(done.stdout)
            self._session = SimpleNamespace(api_key=doc["apiKey"], token=doc["token"], endpoint=doc["endpoint"])
        except (ValueError, KeyError, TypeError):
            raise ExchangeError(502, "soracom_session_failed", "gw soracom-token answered something unexpected") from None
        self._until = time.time() + 600
        return self._session


def service() -> ExchangeService:
    """The instance's service, built from the environment on first use."""
    global _service
    with _guard:
        if _service is None:
            from .settings import load_env

            settings = load_env()
            source = GwCliSession(settings.soracom_profile) if settings.soracom_profile else None
            _service = ExchangeService(settings, soracom_session=source)
        return _service


def _table(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def request_from_event(event: Any) -> HttpRequest:
    """An :class:`HttpRequest` from an API Gateway v1 or v2 proxy event; ExchangeError 400 if malformed."""
    if not isinstance(event, dict):
        raise ExchangeError(400, "malformed_event", "not an API Gateway proxy event")
    context = _table(event.get("requestContext"))
    headers_in = _table(event.get("headers"))
    headers = {str(k).lower(): str(v) for k, v in headers_in.items() if isinstance(v, (str, int))}
    query: dict[str, list[str]] = {}
    if event.get("version") == "2.0":
        http = _table(context.get("http"))
        method = http.get("method")
        path = event.get("rawPath") or http.get("path") or "/"
        source = http.get("sourceIp") or ""
        raw = event.get("rawQueryString")
        if isinstance(raw, str) and raw:
            try:
                query = parse_qs(raw, keep_blank_values=True, max_num_fields=50)
            except ValueError:
                raise ExchangeError(400, "malformed_request", "too many query parameters") from None
    else:
        method = event.get("httpMethod")
        path = event.get("path") or "/"
        identity = _table(context.get("identity"))
        source = identity.get("sourceIp") or ""
        multi = event.get("multiValueQueryStringParameters")
        single = event.get("queryStringParameters")
        if isinstance(multi, dict):
            query = {str(k): [str(x) for x in v] for k, v in multi.items() if isinstance(v, list)}
        elif isinstance(single, dict):
            query = {str(k): [str(v)] for k, v in single.items() if isinstance(v, str)}
    if not isinstance(method, str) or not method:
        raise ExchangeError(400, "malformed_event", "the event has no HTTP method")
    body = event.get("body")
    if body is None:
        data = b""
    elif not isinstance(body, str):
        raise ExchangeError(400, "malformed_body", "the request body is not text")
    elif event.get("isBase64Encoded"):
        try:
            data = base64.b64decode(body, validate=True)
        except ValueError:
            raise ExchangeError(400, "malformed_body", "the request body is not valid base64") from None
    else:
        data = body.encode("utf-8", "replace")
    return HttpRequest(method=method.upper(), path=str(path), query=query, headers=headers, body=data, source=str(source))


def answer_event(status: int, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    return {"statusCode": status, "headers": headers, "body": body.decode(), "isBase64Encoded": False}


def handler(event: Any, context: Any = None, *, exchange: ExchangeService | None = None) -> dict[str, Any]:
    """The Lambda entry point. ``exchange`` replaces the environment-built service (tests)."""
    svc = exchange or service()
    try:
        request = request_from_event(event)
    except ExchangeError as exc:
        return answer_event(exc.status, json.dumps(exc.body()).encode(),
                            {"Content-Type": "application/json", "Cache-Control": "no-store"})
    answer = svc.handle(request)
    return answer_event(answer.status, answer.payload(), answer.headers)
