"""AWS STS as plain Query API requests: no boto3, no botocore client (docs/protocols.md section 10).

AssumeRole, GetSessionToken, GetFederationToken and AssumeRoleWithWebIdentity are one
form-encoded POST each (``Action=...&Version=2011-06-15`` and the parameters flattened as
botocore's query serializer flattens them: ``Tags.member.1.Key``, ``PolicyArns.member.1.arn``,
``TransitiveTagKeys.member.1``), signed by botocore's own SigV4 signer (``botocore.auth.SigV4Auth``
on a ``botocore.awsrequest.AWSRequest``), sent with gw's HTTP client (``gw.plugin.http_request``:
no redirect followed, TLS from ``settings.ca_bundle``, else ``AWS_CA_BUNDLE``), and the XML answer
read with ``xml.etree.ElementTree``. AssumeRoleWithWebIdentity is unsigned, so it imports no
botocore at all. What this skips is boto3's import and botocore's client creation (its loaders
reading the endpoint and service JSON): most of a cache miss's time (docs/performance.md, Target 2).

Behaviour kept from the boto3 path (``clients.aws_call``): one error line ``<what> failed: <Code>:
<Message>`` with the clock note from the answer's ``Date``; ``check_expiry`` against that ``Date``;
retries as botocore's ``standard`` mode with 3 attempts (boto/botocore
``botocore/retries/standard.py``: throttling codes, ``RequestTimeout``-type codes, HTTP 500/502/503/504,
no answer at all, and STS's ``IDPCommunicationError`` from ``botocore/retries/special.py``), waiting
``random() * min(2 ** (attempt - 1), 20)`` seconds between attempts as its ``ExponentialBackoff``
does (its per-client retry quota is left out: a step makes one call). Endpoints as botocore picks
them: the step's ``endpoint``, then ``AWS_ENDPOINT_URL_STS``, then ``AWS_ENDPOINT_URL`` (both
ignored under ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true``; ``botocore/configprovider.py``,
``ConfiguredEndpointProvider``), else ``https://sts.<region>.<dns suffix>`` for the aws, aws-cn and
aws-us-gov partitions (``botocore/data/partitions.json``).

Anything else the configuration asks for is NOT guessed: the call goes through boto3 as before
(:func:`endpoint` returns None) when ``AWS_USE_FIPS_ENDPOINT`` / ``AWS_USE_DUALSTACK_ENDPOINT``
is true, ``AWS_STS_REGIONAL_ENDPOINTS`` is anything but ``regional``, the region is in no partition
above, or the shared config's default profile (the one botocore reads for gw's clients) sets any
of :data:`UNMODELLED_CONFIG`.
"""

from __future__ import annotations

import os
import random
import re
import time
from datetime import UTC, datetime
from typing import Any, NamedTuple

from gw.plugin import AwsCredentials, NoAnswer, StepError, check_expiry, clock_note, http_request

VERSION = "2011-06-15"
NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
UPSTREAM = "AWS STS"
USER_AGENT = "gw (sts-query)"
CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
TIMEOUT = 30.0
MAX_ATTEMPTS = 3
MAX_BACKOFF = 20.0
#: botocore/retries/standard.py ThrottledRetryableChecker
THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
    "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled",
    "SlowDown", "PriorRequestNotComplete", "EC2ThrottledException",
})
#: TransientRetryableChecker's codes, and STS's IDPCommunicationError (botocore/retries/special.py)
TRANSIENT_CODES = frozenset({"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete",
                             "IDPCommunicationError"})
TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})
#: (partition, region pattern, DNS suffix), from botocore/data/partitions.json
PARTITIONS = (
    ("aws", re.compile(r"(us|eu|ap|sa|ca|me|af|il|mx)-\w+-\d+"), "amazonaws.com"),
    ("aws-cn", re.compile(r"cn-\w+-\d+"), "amazonaws.com.cn"),
    ("aws-us-gov", re.compile(r"us-gov-\w+-\d+"), "amazonaws.com"),
)
#: keys of the shared config's default profile that change how botocore reaches STS
UNMODELLED_CONFIG = frozenset({
    "endpoint_url", "services", "ignore_configured_endpoint_urls", "use_fips_endpoint", "use_dualstack_endpoint",
    "sts_regional_endpoints", "ca_bundle", "auth_scheme_preference", "sigv4a_signing_region_set",
})

# injectable for tests: the wait between attempts and its jitter
sleep = time.sleep
jitter = random.random


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def _config_asks_more(environ: Any) -> bool:
    """True when the shared config's default profile sets something this module does not model
    (or cannot be read: botocore would then report it)."""
    import configparser

    path = os.path.expanduser(environ.get("AWS_CONFIG_FILE") or "~/.aws/config")
    if not os.path.exists(path):
        return False
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return True
    for section in ("default", "profile default"):
        if parser.has_section(section) and UNMODELLED_CONFIG & {k.lower() for k in parser.options(section)}:
            return True
    return False


def endpoint(options: dict[str, Any], region: str, environ: Any = None) -> str | None:
    """The STS endpoint URL botocore would use for a step with ``options`` in ``region``;
    None when the configuration asks for something this module does not model (boto3 then)."""
    environ = os.environ if environ is None else environ
    if _true(environ.get("AWS_USE_FIPS_ENDPOINT")) or _true(environ.get("AWS_USE_DUALSTACK_ENDPOINT")):
        return None
    if (environ.get("AWS_STS_REGIONAL_ENDPOINTS") or "regional").strip().lower() != "regional":
        return None
    if _config_asks_more(environ):
        return None
    if options.get("endpoint"):
        return str(options["endpoint"])
    if not _true(environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")):
        for name in ("AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"):
            if environ.get(name):
                return str(environ[name])
    for _partition, pattern, suffix in reversed(PARTITIONS):  # the narrower patterns first
        if pattern.fullmatch(region):
            return f"https://sts.{region}.{suffix}"
    return None


def form(action: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """``Action``, ``Version`` and ``params`` flattened as botocore's QuerySerializer does
    (boto/botocore ``botocore/serialize.py``): a list is ``Name.member.N`` (an empty one ``Name=``),
    a structure ``Prefix.Member``, a boolean ``true``/``false``; None is left out."""
    pairs = [("Action", action), ("Version", VERSION)]

    def add(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if item is not None:
                    add(f"{prefix}.{key}", item)
        elif isinstance(value, (list, tuple)):
            if not value:
                pairs.append((prefix, ""))
            for i, item in enumerate(value, 1):
                add(f"{prefix}.member.{i}", item)
        elif isinstance(value, bool):
            pairs.append((prefix, "true" if value else "false"))
        else:
            pairs.append((prefix, str(value)))

    for name, value in params.items():
        if value is not None:
            add(name, value)
    return pairs


def _url(base: str) -> str:
    """The request URL for endpoint ``base``: its own path, else ``/`` (botocore's ``_urljoin`` for ``/``)."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(base)
    except ValueError:
        return base  # http_request reports it in one line
    return base if parts.path else urlunsplit(parts._replace(path="/"))


class SigningKeys(NamedTuple):
    """What botocore's signers read of their credentials: the fields of its ``ReadOnlyCredentials``
    (``botocore/credentials.py``), without importing that module (about 7 ms of a miss)."""

    access_key: str
    secret_key: str
    token: str | None


def _signed(url: str, body: bytes, credentials: AwsCredentials, region: str) -> dict[str, str]:
    """The headers of the POST to ``url``, signed by botocore's SigV4 signer for service ``sts``."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    request = AWSRequest(method="POST", url=url, data=body,
                         headers={"Content-Type": CONTENT_TYPE, "User-Agent": USER_AGENT})
    keys = SigningKeys(credentials.access_key_id, credentials.secret_access_key, credentials.session_token)
    SigV4Auth(keys, "sts", region).add_auth(request)
    return {str(k): str(v) for k, v in request.headers.items()}


def _local(tag: Any) -> str:
    return str(tag).rpartition("}")[2]


def _xml(body: bytes) -> Any:
    """The root element of ``body``, or None when it is not XML."""
    import xml.etree.ElementTree as ET

    try:
        return ET.fromstring(body)
    except (ET.ParseError, ValueError):
        return None


def _to_dict(element: Any) -> Any:
    """An element's children as a dict by local name (leaves as their text), as botocore's parser reads them."""
    children = list(element)
    if not children:
        return element.text or ""
    return {_local(child.tag): _to_dict(child) for child in children}


def _one_line(text: str, limit: int = 500) -> str:
    clean = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return clean if len(clean) <= limit else clean[: limit - 3] + "..."


def error_of(body: bytes) -> tuple[str, str] | None:
    """(Code, Message) of an STS error document (``<ErrorResponse><Error><Type/><Code/><Message/>``), or None."""
    root = _xml(body)
    if root is None:
        return None
    error = next((e for e in root.iter() if _local(e.tag) == "Error"), None)
    if error is None:
        return None
    fields = {_local(child.tag): child.text or "" for child in error}
    if not fields.get("Code"):
        return None
    return _one_line(fields["Code"], 100), _one_line(fields.get("Message", ""))


def result_of(body: bytes, action: str) -> dict[str, Any] | None:
    """The ``<Action>Result`` of a success answer as a dict (``Credentials.Expiration`` still text), or None."""
    root = _xml(body)
    if root is None or _local(root.tag) != f"{action}Response":
        return None
    result = next((e for e in root if _local(e.tag) == f"{action}Result"), None)
    parsed = _to_dict(result) if result is not None else None
    return parsed if isinstance(parsed, dict) else None


def parse_time(text: str) -> datetime | None:
    """An ISO 8601 time (``2026-01-01T00:00:00Z``, fractions and offsets allowed) in UTC; None if not one."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _credentials(ctx: Any, what: str, result: dict[str, Any] | None, host: str) -> dict[str, Any]:
    """``result`` with its Credentials checked and ``Expiration`` a UTC datetime; one line when it is not."""
    creds = result.get("Credentials") if result else None
    if not isinstance(creds, dict):
        raise StepError(f"{what} failed: the answer from {UPSTREAM} ({host}) holds no credentials")
    for key in ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"):
        if not isinstance(creds.get(key), str) or not creds[key]:
            raise StepError(f"{what} failed: the answer from {UPSTREAM} ({host}) has no {key}")
    ctx.add_secret(creds["SecretAccessKey"])
    ctx.add_secret(creds["SessionToken"])
    expiration = parse_time(creds["Expiration"])
    if expiration is None:
        raise StepError(f"{what} failed: the answer from {UPSTREAM} ({host}) has an Expiration that is not a time")
    assert result is not None
    return {**result, "Credentials": {**creds, "Expiration": expiration}}


def backoff(attempt: int) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): botocore's ExponentialBackoff,
    ``random() * min(2 ** (attempt - 1), 20)``."""
    return jitter() * min(2.0 ** (attempt - 1), MAX_BACKOFF)


def _retryable(status: int, code: str | None) -> bool:
    return status in TRANSIENT_STATUSES or code in THROTTLING_CODES or code in TRANSIENT_CODES


def sts_call(ctx: Any, action: str, what: str, options: dict[str, Any], credentials: AwsCredentials | None,
             **params: Any) -> dict[str, Any]:
    """STS ``action`` with ``params`` (botocore's names; None left out), signed with ``credentials``
    (None: unsigned, AssumeRoleWithWebIdentity). The answer as botocore's client gives it:
    ``Credentials`` (``Expiration`` a UTC datetime), ``AssumedRoleUser`` / ``FederatedUser``.
    Through boto3 when :func:`endpoint` says the configuration needs it."""
    from urllib.parse import urlencode, urlsplit

    region = options.get("region") or (credentials.region if credentials else None) or "us-east-1"
    base = endpoint(options, region)
    if base is None:
        return _through_boto3(ctx, action, what, options, credentials, params)
    url = _url(base)
    try:
        host = urlsplit(url).netloc.rpartition("@")[2] or url[:60]
    except ValueError:
        host = "an invalid URL"
    body = urlencode(form(action, params)).encode("ascii")
    verify = ctx.ca_bundle or os.environ.get("AWS_CA_BUNDLE") or ctx.tls_verify
    with ctx.status(f"{what} ..."):
        for attempt in range(1, MAX_ATTEMPTS + 1):
            headers = (_signed(url, body, credentials, region) if credentials is not None
                       else {"Content-Type": CONTENT_TYPE, "User-Agent": USER_AGENT})
            try:
                response = http_request(ctx, "POST", url, what=f"{UPSTREAM} {action}", headers=headers, data=body,
                                        verify=verify, timeout=TIMEOUT)
            except NoAnswer as exc:
                if attempt < MAX_ATTEMPTS:
                    sleep(backoff(attempt))
                    continue
                raise NoAnswer(f"{what} failed: {exc}", reason=exc.reason) from None
            date = response.headers.get("Date")
            if response.status_code == 200:
                data = _credentials(ctx, what, result_of(response.content, action), host)
                check_expiry(data["Credentials"]["Expiration"], UPSTREAM, date, warn=ctx.warn)
                return data
            error = error_of(response.content)
            if _retryable(response.status_code, error[0] if error else None) and attempt < MAX_ATTEMPTS:
                sleep(backoff(attempt))
                continue
            if error is None:
                raise StepError(f"{what} failed: {UPSTREAM} ({host}) answered HTTP {response.status_code} without "
                                "an STS error document" + clock_note(UPSTREAM, date))
            code, message = error
            raise StepError(f"{what} failed: {code}: {message}".rstrip(": ") + clock_note(UPSTREAM, date))
    raise AssertionError("unreachable")


def _through_boto3(ctx: Any, action: str, what: str, options: dict[str, Any], credentials: AwsCredentials | None,
                   params: dict[str, Any]) -> dict[str, Any]:
    """The same call through a boto3 client (``clients.aws_call``), for what :func:`endpoint` does not model."""
    from .clients import aws_call, aws_client

    client = aws_client(ctx, "sts", options, credentials)
    method = re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower()
    return aws_call(ctx, what, getattr(client, method), **params)
