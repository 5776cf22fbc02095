"""The device side: step types ``endorse`` and ``endorse-exchange``, and ``gw iot-url``.

``endorse`` asks SORACOM Endorse (over the SIM's cellular link) for a token, sending a
random nonce as a request parameter, optionally verifies it locally with the service's
rules plus "the nonce came back in requestParameters", and yields an EndorseToken.
``endorse-exchange`` hands that token to the exchange service and yields AWS
credentials or, with ``output = "iot-wss"``, an :class:`IotWssUrl`.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from gw.plugin import Credential, StepError, profile_option

ENDORSE_TOKEN = "endorse-token"
IOT_WSS_URL = "iot-wss-url"
NONCE_PARAM = "nonce"


@dataclass
class EndorseToken(Credential):
    """A SORACOM Endorse JWT (this plugin's kind ``endorse-token``); never cached: single use."""

    KIND: ClassVar[str] = ENDORSE_TOKEN
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("token",)
    SINGLE_USE: ClassVar[bool] = True  # the exchange service refuses a jti it has seen

    token: str
    expiration: datetime | None = None
    issued_at: datetime | None = None


@dataclass
class IotWssUrl(Credential):
    """A presigned AWS IoT MQTT-over-WebSocket URL (the signature and session token are in it)."""

    KIND: ClassVar[str] = IOT_WSS_URL
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("url",)

    url: str
    client_id: str | None = None
    topic_prefix: str | None = None
    expiration: datetime | None = None
    issued_at: datetime | None = None

    def env(self) -> dict[str, str]:
        env = {"GW_IOT_WSS_URL": self.url}
        if self.client_id:
            env["GW_IOT_CLIENT_ID"] = self.client_id
        if self.topic_prefix:
            env["GW_IOT_TOPIC_PREFIX"] = self.topic_prefix
        return env

    def summary(self) -> str:
        host = self.url.split("/", 3)[2] if self.url.count("/") >= 3 else "?"
        return f"IoT WebSocket URL for {host} (client {self.client_id or '?'})"


_JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*){0,2}")


def _error_line(response: Any, secrets_: tuple[str, ...] = ()) -> str:
    """``HTTP <status> <code>: <message>`` from an upstream error body, with any token taken out
    BEFORE it is shortened (a shortened secret would slip past gw's scrubbing)."""
    try:
        doc = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(doc, dict) and isinstance(doc.get("message"), str):
        code = doc.get("code")
        tag = f" {str(code)[:40]}" if isinstance(code, str) else ""
        message = doc["message"]
        for secret in secrets_:
            message = message.replace(secret, "[redacted]")
        message = _JWT_LIKE.sub("[redacted]", message)
        return f"HTTP {response.status_code}{tag}: {message[:160]}"
    return f"HTTP {response.status_code}"


# -- endorse ---------------------------------------------------------------------------------
def run_endorse(ctx: Any, options: dict[str, Any], upstream: Credential | None) -> Credential:
    from gw.plugin import http_request, parse_time, utcnow

    endpoint = str(options.get("endpoint") or "https://endorse.soracom.io").rstrip("/") + "/"
    nonce = secrets.token_hex(16)
    with ctx.status("asking SORACOM Endorse for a token"):
        response = http_request(ctx, "GET", endpoint, what="SORACOM Endorse", params={NONCE_PARAM: nonce},
                                headers={"Accept": "application/json"})
    if response.status_code != 200:
        raise StepError(f"SORACOM Endorse refused: {_error_line(response)} (is this device on a SORACOM Air SIM?)")
    try:
        doc = response.json()
    except ValueError:
        raise StepError("SORACOM Endorse answered something that is not JSON") from None
    token = doc.get("token") if isinstance(doc, dict) else None
    if not isinstance(token, str) or not token:
        raise StepError("SORACOM Endorse answered without a token")
    ctx.add_secret(token)
    if options.get("verify"):
        claims = _verify_locally(ctx, options, token)
        if claims.request_parameters.get(NONCE_PARAM) != nonce:
            raise StepError("the Endorse token does not carry this request's nonce (replayed or not for this request); "
                            "allow request parameters in the SIM group's Endorse settings")
        exp = claims.exp
    else:
        exp = _unverified_exp(token)
    try:
        expiration = parse_time(exp)
    except (ValueError, OverflowError, OSError):  # a year beyond datetime's range, or before it
        raise StepError("the Endorse token's exp claim is not a usable time") from None
    return EndorseToken(token=token, expiration=expiration, issued_at=utcnow())


def _unverified_exp(token: str) -> int:
    import jwt

    try:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError:
        raise StepError("SORACOM Endorse answered a token that is not a JWT") from None
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise StepError("the Endorse token has no exp claim")
    return exp


def _verify_locally(ctx: Any, options: dict[str, Any], token: str) -> Any:
    from .verify import DEFAULT_KEY_STORE, ExchangeError, KeyStore, Verifier

    keys = KeyStore(options.get("key_store_url") or DEFAULT_KEY_STORE, verify=ctx.tls_verify)
    verifier = Verifier(keys, leeway=int(options.get("leeway") or 30), max_token_bytes=65536)
    try:
        return verifier.verify(token)
    except ExchangeError as exc:
        raise StepError(f"the Endorse token did not verify: {exc.message}") from None


# -- endorse-exchange --------------------------------------------------------------------------
def exchange_output(options: dict[str, Any]) -> str:
    from gw.plugin import AWS

    return IOT_WSS_URL if options.get("output") == "iot-wss" else AWS


def run_exchange(ctx: Any, options: dict[str, Any], upstream: Credential | None) -> Credential:
    from gw.plugin import AwsCredentials, http_request, parse_time, utcnow

    if not isinstance(upstream, EndorseToken):
        raise StepError("endorse-exchange needs an Endorse token from the previous step")
    ctx.add_secret(upstream.token)  # scrubbed even if a misbehaving service echoes it
    output = options.get("output") or "aws"
    with ctx.status("exchanging the Endorse token"):
        response = http_request(
            ctx, "POST", options["url"], what="the Endorse exchange service", params={"output": output},
            headers={"Authorization": f"Bearer {upstream.token}", "Accept": "application/json"},
        )
    if response.status_code != 200:
        raise StepError(f"the Endorse exchange service refused: {_error_line(response, (upstream.token,))}")
    try:
        doc = response.json()
    except ValueError:
        raise StepError("the Endorse exchange service answered something that is not JSON") from None
    if not isinstance(doc, dict):
        raise StepError("the Endorse exchange service answered an unexpected document")
    try:
        if output == "iot-wss":
            url = doc["url"]
            if not isinstance(url, str) or not url.startswith("wss://") or not url.isprintable() or " " in url:
                raise StepError("the Endorse exchange service answered no usable wss:// URL")
            ctx.add_secret(url)
            return IotWssUrl(url=url, client_id=doc.get("clientId"), topic_prefix=doc.get("topic_prefix"),
                             expiration=parse_time(doc["expiration"]), issued_at=utcnow())
        for name in ("SecretAccessKey", "SessionToken"):
            ctx.add_secret(doc[name])
        return AwsCredentials(
            access_key_id=doc["AccessKeyId"], secret_access_key=doc["SecretAccessKey"],
            session_token=doc["SessionToken"], expiration=parse_time(doc["Expiration"]), issued_at=utcnow(),
            origin="endorse", region=options.get("region") or doc.get("Region") or None,
        )
    except (KeyError, ValueError, TypeError, OverflowError, OSError):  # OverflowError/OSError: a time out of range
        raise StepError("the Endorse exchange service answered without the expected fields") from None


def check_exchange(options: dict[str, Any]) -> None:
    import re

    url = str(options.get("url") or "")
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s#]*)?", url):
        raise ValueError("url must be the exchange service's http(s) URL, e.g. https://x.execute-api.../exchange")


def check_endorse(options: dict[str, Any]) -> None:
    import re

    endpoint = options.get("endpoint")
    if endpoint is not None and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", str(endpoint)):
        raise ValueError("endpoint must be an http(s) URL")
    key_store = options.get("key_store_url")  # it decides which signatures are trusted: https only
    if key_store is not None and not re.fullmatch(r"https://[^\s/?#]+(/[^\s?#]*)?", str(key_store)):
        raise ValueError("key_store_url must be an https URL")
    leeway = options.get("leeway")
    if leeway is not None and not 0 <= leeway <= 300:
        raise ValueError("leeway must be between 0 and 300 seconds")


# -- gw iot-url ----------------------------------------------------------------------------------
def configure_iot_url(parser: Any) -> None:
    profile_option(parser, "profile ending in endorse-exchange (output iot-wss or aws)")
    parser.add_argument("--endpoint", help="AWS IoT ATS data endpoint host, when the profile yields AWS credentials")
    parser.add_argument("--region", help="region of the IoT endpoint (default: $AWS_REGION, $AWS_DEFAULT_REGION, the profile's region)")
    from gw.plugin import freshness_options

    freshness_options(parser)


def run_iot_url(args: Any, ctx: Any) -> int:
    from gw.plugin import AWS, AwsCredentials, UsageError

    from .iot_url import presign_mqtt_url

    kind = ctx.output_kind(args.profile)
    if kind == IOT_WSS_URL:
        cred = ctx.resolve(args.profile, require=IOT_WSS_URL, refresh=args.refresh, min_ttl=args.min_ttl)
        ctx.emit(cred.url)
        return 0
    if kind != AWS:
        raise UsageError(f"profile {args.profile!r} ends in {kind}; gw iot-url needs an iot-wss-url or AWS credentials")
    if not args.endpoint:
        raise UsageError("this profile yields AWS credentials: give --endpoint (the IoT ATS data endpoint host)")
    import os

    # as the AWS CLI: the flag, then AWS_REGION / AWS_DEFAULT_REGION, then the profile's own region
    region = (args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
              or ctx.profile(args.profile).region)
    if not region:
        raise UsageError("give --region, or set AWS_REGION (the profile has no region)")
    cred = ctx.resolve(args.profile, require=AWS, refresh=args.refresh, min_ttl=args.min_ttl)
    assert isinstance(cred, AwsCredentials)
    ctx.emit(presign_mqtt_url(cred, args.endpoint, region))
    return 0
