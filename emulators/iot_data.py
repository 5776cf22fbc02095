"""AWS IoT data plane, MQTT over WebSocket (protocols.md section 9), bridged to a real broker.

:class:`IotDataEmulator` listens on 127.0.0.1 over TLS (a leaf from the suite's
:class:`~gw_emulators.tls.LocalCA`) and accepts a WebSocket upgrade on ``/mqtt``
only when the SigV4 query signature of the URL verifies, accepting what AWS IoT accepts
(protocols.md section 9) from every client, not only gw's:

- ``X-Amz-Algorithm=AWS4-HMAC-SHA256``; ``X-Amz-SignedHeaders`` any sorted set of header
  names that includes ``host`` (botocore: ``host``; awscrt: ``connection;host``); a credential
  scope ``<akid>/<date>/<region>/<service>/aws4_request`` for this emulator's region and
  service ``iotdevicegateway`` or ``iotdata`` (AWSIoTPythonSDK v1); ``X-Amz-Date`` within
  ``X-Amz-Expires`` (1..604800 s; optional, awscrt sends none: then within the 5-minute
  clock skew) of the injectable clock;
- the access key is known to the credentials lookup (moto's record of what it issued,
  or any callable) and its credentials have not expired;
- the signature, recomputed here from AWS's published SigV4 recipe (not with botocore,
  which makes gw's own URLs, nor awscrt), over the headers the URL says were signed, as the
  client really sent them (``Host`` with or without the port);
- ``X-Amz-Security-Token``, which AWS IoT wants appended AFTER signing (so it is not
  part of the signature), equals the session token of those credentials (required
  for temporary credentials, refused for long-term keys).

The WebSocket upgrade answer is written here (:func:`_switching_protocols`): AWSIoTPythonSDK
v1's handshake has quirks AWS serves and the ``websockets`` library refuses.

Any failure answers the upgrade with HTTP 403 and nothing reaches the broker. A
verified connection (subprotocol ``mqtt`` or ``mqttv3.1``) is bridged byte for byte to a real MQTT
broker's TCP port: WebSocket binary frames to the broker, broker bytes back as binary
frames (MQTT packets may span frames, as the MQTT spec allows for WebSocket).

:func:`start_mosquitto` runs Debian's ``mosquitto`` on 127.0.0.1 with a free port and a
config in a private temp dir; :func:`start_iot_stack` starts both for tests and the
demo. The WebSocket framing is the ``websockets`` library's (not hand-written).

How a client builds these URLs: ``gw_plugins.endorse.iot_url.presign_mqtt_url``; AWS's
own reference is the AWS IoT Device SDK's presigner (aws-iot-device-sdk-python,
``AWSIoTPythonSDK/core/protocol/connection/cores.py``, class ``SigV4Core``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qsl, quote, urlsplit

from .httpserver import EmulatorBase
from .tls import LocalCA

#: the service names AWS IoT accepts in the credential scope: ``iotdevicegateway`` (awscrt,
#: botocore-made URLs) and ``iotdata`` (AWSIoTPythonSDK v1, cores.py ``_handShake``)
SERVICES = ("iotdevicegateway", "iotdata")
SERVICE = SERVICES[0]
ALGORITHM = "AWS4-HMAC-SHA256"
DEFAULT_REGION = "us-east-1"
MAX_EXPIRES = 604800  # SigV4 presigned URLs live at most 7 days
CLOCK_SKEW = 300  # a URL dated up to 5 minutes away from the clock is accepted, as AWS does
#: subprotocols AWS IoT serves: ``mqtt`` (awscrt, paho) and ``mqttv3.1`` (AWSIoTPythonSDK v1)
SUBPROTOCOLS = ("mqtt", "mqttv3.1")
SUBPROTOCOL = SUBPROTOCOLS[0]
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z")
_HEADER_LIST = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+(;[a-z0-9!#$%&'*+.^_`|~-]+)*")
_REQUIRED = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature")
_UNSIGNED_PARAMS = frozenset(("X-Amz-Signature", "X-Amz-Security-Token"))

#: access key id -> an object with ``secret_access_key``, ``session_token`` (or None) and
#: optionally ``expiration`` (an aware datetime, or None), or None when the key is unknown
CredentialLookup = Callable[[str], Any]
#: a header name -> every value the request carried under it (any case)
HeaderLookup = Callable[[str], list[str]]


class Refused(Exception):
    """The upgrade is refused; ``reason`` is a short code, the message one line without secrets."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _param_pairs(query: str) -> list[tuple[str, str]]:
    pairs = parse_qsl(query, keep_blank_values=True)
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise Refused("malformed", f"query parameter {key[:40]} is repeated")
        seen.add(key)
    return pairs


def _uri_encode(text: str) -> str:
    """SigV4's URI encoding: every byte but the unreserved ``A-Za-z0-9-_.~`` as ``%XX``."""
    return quote(text, safe="-_.~")


def _canonical_request(path: str, pairs: list[tuple[str, str]], signed_headers: str, headers: HeaderLookup) -> str:
    """The SigV4 canonical request of a presigned GET, written from AWS's published recipe
    (IAM user guide, "Create a signed AWS API request", canonical request), not from any
    client's signer: the query is decoded and re-encoded, sorted; each signed header's
    values are trimmed, inner runs of spaces collapsed, and joined with commas."""
    query = "&".join(f"{k}={v}" for k, v in sorted((_uri_encode(k), _uri_encode(v)) for k, v in pairs
                                                      if k not in _UNSIGNED_PARAMS))
    lines = []
    for name in signed_headers.split(";"):
        values = headers(name)
        if not values:
            raise Refused("signature", f"signed header {name[:40]} is not in the request")
        lines.append(f"{name}:" + ",".join(" ".join(v.split()) for v in values))
    canonical_uri = "/".join(_uri_encode(segment) for segment in path.split("/"))
    return "\n".join(["GET", canonical_uri, query, "\n".join(lines) + "\n", signed_headers, EMPTY_SHA256])


def expected_signature(secret_access_key: str, scope: str, amz_date: str, canonical_request: str) -> str:
    """HMAC-SHA256 of the string to sign with the key derived from the secret and the scope."""
    date, region, service, terminator = scope.split("/")
    key = ("AWS4" + secret_access_key).encode()
    for part in (date, region, service, terminator):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()])
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def _headers_from(host: str | HeaderLookup) -> HeaderLookup:
    if callable(host):
        return host
    return lambda name: [host] if name == "host" else []


def verify_presigned(target: str, host: str | HeaderLookup, *, lookup: CredentialLookup, region: str,
                     now: float) -> str:
    """Check a presigned ``/mqtt`` request target as AWS IoT does; returns the access key id.

    ``target`` is the path with its query; ``host`` is the Host header as sent, or a
    function giving the values of any request header (needed when more than ``host`` was
    signed: awscrt signs ``connection;host``). Accepted as AWS accepts it (protocols.md
    section 9): any signed header set that includes ``host``; ``X-Amz-Expires`` optional
    (without it the URL lives as long as the clock skew allows); service ``iotdevicegateway``
    or ``iotdata``; ``X-Amz-Security-Token`` appended after signing. Raises
    :class:`Refused` with a reason code: ``path``, ``malformed``, ``scope``, ``expired``,
    ``not-yet-valid``, ``unknown-key``, ``credentials-expired``, ``token-missing``,
    ``token-mismatch``, ``signature``.
    """
    headers = _headers_from(host)
    parts = urlsplit(target)
    if parts.path != "/mqtt":
        raise Refused("path", "only /mqtt accepts WebSocket connections")
    pairs = _param_pairs(parts.query)
    params = dict(pairs)
    missing = [name for name in _REQUIRED if not params.get(name)]
    if missing:
        raise Refused("malformed", f"missing {', '.join(missing)}")
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise Refused("malformed", f"X-Amz-Algorithm must be {ALGORITHM}")
    signed_headers = params["X-Amz-SignedHeaders"]
    if not _HEADER_LIST.fullmatch(signed_headers) or "host" not in signed_headers.split(";"):
        raise Refused("malformed", "X-Amz-SignedHeaders must be lower-case header names with host, ;-separated")
    names = signed_headers.split(";")
    if names != sorted(set(names)):
        raise Refused("malformed", "X-Amz-SignedHeaders must be sorted, each name once")
    scope = params["X-Amz-Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request" or not scope[0]:
        raise Refused("malformed", "X-Amz-Credential is not <key>/<date>/<region>/<service>/aws4_request")
    access_key_id, scope_date, scope_region, scope_service, _ = scope
    amz_date = params["X-Amz-Date"]
    if not _AMZ_DATE.fullmatch(amz_date):
        raise Refused("malformed", "X-Amz-Date is not YYYYMMDDTHHMMSSZ")
    if scope_service not in SERVICES:
        raise Refused("scope", f"the credential scope's service must be one of {', '.join(SERVICES)}")
    if scope_region != region:
        raise Refused("scope", f"the credential scope's region must be {region}")
    if scope_date != amz_date[:8]:
        raise Refused("scope", "the credential scope's date is not X-Amz-Date's")
    expires_text = params.get("X-Amz-Expires")
    if expires_text is not None and (not expires_text.isdigit() or not 1 <= int(expires_text) <= MAX_EXPIRES):
        raise Refused("malformed", f"X-Amz-Expires must be 1..{MAX_EXPIRES}")
    lifetime = int(expires_text) if expires_text is not None else CLOCK_SKEW
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise Refused("malformed", "X-Amz-Date is not a date") from None
    if now > signed_at + lifetime:
        raise Refused("expired", "the presigned URL has expired")
    if now < signed_at - CLOCK_SKEW:
        raise Refused("not-yet-valid", "the presigned URL is dated in the future")
    credential = lookup(access_key_id)
    if credential is None:
        raise Refused("unknown-key", "the access key is not known")
    expiration = getattr(credential, "expiration", None)
    if expiration is not None and expiration.timestamp() <= now:
        raise Refused("credentials-expired", "the credentials have expired")
    expected_token = getattr(credential, "session_token", None)
    token = params.get("X-Amz-Security-Token")
    if expected_token:
        if not token:
            raise Refused("token-missing", "X-Amz-Security-Token is missing for temporary credentials")
        if not hmac.compare_digest(token.encode(), expected_token.encode()):
            raise Refused("token-mismatch", "X-Amz-Security-Token does not belong to the access key")
    elif token:
        raise Refused("token-mismatch", "X-Amz-Security-Token given for long-term credentials")
    canonical = _canonical_request(parts.path, pairs, signed_headers, headers)
    expected = expected_signature(credential.secret_access_key, "/".join(scope[1:]), amz_date, canonical)
    if not hmac.compare_digest(expected.encode(), params["X-Amz-Signature"].encode()):
        raise Refused("signature", "the request signature does not match")
    return access_key_id


def _switching_protocols(headers: Any) -> Any:
    """The 101 answer to a WebSocket upgrade, written here rather than by ``websockets``
    because AWS IoT serves clients that library refuses (RFC 6455 section 4.2.2 otherwise).

    AWSIoTPythonSDK v1 (aws-iot-device-sdk-python, ``AWSIoTPythonSDK/core/protocol/connection/
    cores.py``, ``SecuredWebSocketCore._handShake``) sends a key of 128 random bytes (172
    base64 characters; ``websockets`` wants 16), offers the subprotocol ``mqttv3.1`` and
    ``permessage-deflate``, and finds ``sec-websocket-accept: `` by a case-sensitive search of
    the answer. So: any base64 key, the first offered subprotocol AWS IoT serves, no
    extension (frames stay uncompressed), the accept header's name in lower case.
    """
    from websockets.datastructures import Headers
    from websockets.http11 import Response
    from websockets.utils import accept_key

    def tokens(name: str) -> list[str]:
        return [t.strip().lower() for value in headers.get_all(name) for t in value.split(",") if t.strip()]

    if "websocket" not in tokens("Upgrade") or "upgrade" not in tokens("Connection"):
        raise Refused("upgrade", "not a WebSocket upgrade (Upgrade: websocket, Connection: Upgrade)")
    if tokens("Sec-WebSocket-Version") != ["13"]:
        raise Refused("upgrade", "Sec-WebSocket-Version must be 13")
    keys = list(headers.get_all("Sec-WebSocket-Key"))
    try:
        if len(keys) != 1 or not base64.b64decode(keys[0].strip(), validate=True):
            raise ValueError
    except (ValueError, binascii.Error):
        raise Refused("upgrade", "Sec-WebSocket-Key must be one base64 value") from None
    offered = [t.strip() for value in headers.get_all("Sec-WebSocket-Protocol") for t in value.split(",")]
    chosen = next((name for name in offered if name in SUBPROTOCOLS), None)
    if chosen is None:
        raise Refused("subprotocol", f"the WebSocket subprotocol must be one of {', '.join(SUBPROTOCOLS)}")
    answer = Headers()
    answer["Upgrade"] = "websocket"
    answer["Connection"] = "Upgrade"
    answer["sec-websocket-accept"] = accept_key(keys[0].strip())
    answer["Sec-WebSocket-Protocol"] = chosen
    return Response(101, "Switching Protocols", answer)


def _quiet_logger() -> logging.Logger:
    """websockets' logger for this emulator, held at WARNING: at DEBUG websockets logs the
    request line, and the request line carries the session token and the signature."""
    logger = logging.getLogger("gw_emulators.iot_data.websocket")
    logger.setLevel(logging.WARNING)
    return logger


class IotDataEmulator(EmulatorBase):
    """``wss://127.0.0.1:<port>/mqtt`` with SigV4 presigned-URL checks, bridged to ``broker``.

    ``lookup`` maps an access key id to its credentials (``MotoStack.lookup`` fits);
    ``broker`` is the MQTT broker's ``(host, port)``; ``clock`` returns epoch seconds
    (default ``time.time``). ``hosts`` are extra host names it answers as (an AWS-shaped
    ATS endpoint name, say): accepted in ``Host`` with or without the port, like ``127.0.0.1``
    and ``localhost``, and written into its server certificate. ``calls`` counts ``accepted``,
    ``bridged``, ``broker-unreachable``, ``closed`` and ``refused:<reason>``;
    ``bytes_to_broker`` / ``bytes_to_client`` count bridged bytes. Faults injected on the
    route ``upgrade`` (:meth:`inject`: status, delay, garbage, drop) hit the next handshakes.
    """

    name = "iot-data"

    def __init__(self, ca: LocalCA, lookup: CredentialLookup, broker: tuple[str, int], *,
                 region: str = DEFAULT_REGION, clock: Callable[[], float] | None = None,
                 hosts: tuple[str, ...] = ()) -> None:
        super().__init__(clock=clock)
        self.ca = ca
        self.lookup = lookup
        self.broker = broker
        self.region = region
        self.extra_hosts = hosts
        self.bytes_to_broker = 0
        self.bytes_to_client = 0
        #: what each accepted upgrade looked like (no secrets): host, service, signed_headers,
        #: expires (the text, or None), subprotocol, key_length
        self.accepted_requests: list[dict[str, Any]] = []
        self.cert_path: Path | None = None
        self.certificate: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self._error: BaseException | None = None

    # -- properties ------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._port is not None, "start() first"
        return self._port

    @property
    def endpoint(self) -> str:
        """``127.0.0.1:<port>``: what an exchange service signs for (its ``iot_endpoint``)."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"wss://{self.endpoint}/mqtt"

    def accepted_hosts(self) -> set[str]:
        """Host header values this emulator answers to: its names with and without the port
        (awscrt and AWSIoTPythonSDK send the host name alone, botocore-made URLs name the port)."""
        names = ("127.0.0.1", "localhost", *self.extra_hosts)
        return {*names, *(f"{name}:{self.port}" for name in names)}

    def refusals(self) -> int:
        with self._lock:
            return sum(n for name, n in self.calls.items() if name.startswith("refused:"))

    # -- the handshake check -------------------------------------------------------
    async def _process_request(self, connection: Any, request: Any) -> Any:
        from http import HTTPStatus

        fault = self._take_fault("upgrade")
        if fault is not None:
            self.count("fault")
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.drop:
                connection.transport.abort()
                return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "")  # never reaches the client
            response = None
            if fault.garbage:
                response = connection.respond(HTTPStatus(fault.status or 200), "\x00<html>not what you expected")
            elif fault.status is not None:
                response = connection.respond(HTTPStatus(fault.status), f"injected fault {fault.status}\n")
            if response is not None:
                if fault.location is not None:
                    response.headers["Location"] = fault.location
                return response
        host = request.headers.get("Host", "")
        try:
            if host not in self.accepted_hosts():
                raise Refused("host", "the Host header names another endpoint")
            verify_presigned(request.path, lambda name: list(request.headers.get_all(name)), lookup=self.lookup,
                             region=self.region, now=self.clock())
            response = _switching_protocols(request.headers)
        except Refused as refused:
            self.count(f"refused:{refused.reason}")
            return connection.respond(HTTPStatus.FORBIDDEN, f"Forbidden: {refused}\n")
        self.count("accepted")
        params = dict(parse_qsl(urlsplit(request.path).query))
        with self._lock:
            self.accepted_requests.append({
                "host": host, "service": params["X-Amz-Credential"].split("/")[3],
                "signed_headers": params["X-Amz-SignedHeaders"], "expires": params.get("X-Amz-Expires"),
                "subprotocol": response.headers["Sec-WebSocket-Protocol"],
                "key_length": len(request.headers["Sec-WebSocket-Key"].strip())})
        return response

    # -- the bridge ------------------------------------------------------------
    async def _bridge(self, websocket: Any) -> None:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(*self.broker), timeout=5)
        except (TimeoutError, OSError):
            self.count("broker-unreachable")
            await websocket.close(1011, "broker unavailable")
            return
        self.count("bridged")

        async def to_broker() -> None:
            async for message in websocket:
                if isinstance(message, str):  # MQTT over WebSocket is binary frames only
                    await websocket.close(1003, "binary frames only")
                    return
                writer.write(message)
                await writer.drain()
                self.count_bytes(to_broker=len(message))

        async def to_client() -> None:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                await websocket.send(data)
                self.count_bytes(to_client=len(data))

        tasks = [asyncio.create_task(to_broker()), asyncio.create_task(to_client())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
            await websocket.close()
            self.count("closed")

    def count_bytes(self, *, to_broker: int = 0, to_client: int = 0) -> None:
        with self._lock:
            self.bytes_to_broker += to_broker
            self.bytes_to_client += to_client

    # -- lifecycle -------------------------------------------------------------
    def _ssl_context(self) -> ssl.SSLContext:
        issued = self.ca.issue(f"{self.name}-{secrets.token_hex(4)}", dns_names=self.extra_hosts)
        self.cert_path, self.certificate = issued.cert_path, issued.certificate
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # TLS 1.2 only: behind Python 3.11's asyncio TLS layer, a request sent right after a TLS 1.3
        # handshake was now and then never read (the loop idle, the client waiting: 4 of 44 runs
        # of tests/e2e/endorse/test_iot_data.py, 4 at a time; 0 of 40 with TLS 1.2). AWS IoT
        # accepts TLS 1.2 under every security policy, and every client tested negotiates it.
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(issued.cert_path, issued.key_path)
        return context

    def start(self, port: int = 0) -> IotDataEmulator:
        ready = threading.Event()
        context = self._ssl_context()

        async def main() -> None:
            from websockets.asyncio.server import serve

            self._stopping = asyncio.Event()
            try:
                server = await serve(self._bridge, "127.0.0.1", port, ssl=context, compression=None,
                                     process_request=self._process_request, server_header="gw-iot-data-emulator",
                                     max_size=1 << 20, ping_interval=None, logger=_quiet_logger())
            except OSError as exc:  # start() reports it
                self._error = exc
                ready.set()
                return
            self._port = server.sockets[0].getsockname()[1]
            ready.set()
            async with server:
                await self._stopping.wait()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(main())
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()
        if not ready.wait(timeout=10) or self._port is None:
            raise RuntimeError(f"the IoT data emulator did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None and self._thread is not None:
            stopping = self._stopping
            try:
                self._loop.call_soon_threadsafe(stopping.set)
            except RuntimeError:  # loop already closed
                pass
            self._thread.join(timeout=10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> Self:
        if not self._thread:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- a real MQTT broker: Debian's mosquitto ------------------------------------------
def mosquitto_path() -> str | None:
    """The mosquitto executable (Debian installs it in /usr/sbin), or None."""
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MosquittoBroker:
    """A running mosquitto on ``host:port`` (plain MQTT over TCP, anonymous, no persistence).

    A reader thread keeps draining its log (stderr) into :attr:`log`, so the broker never
    blocks on a full pipe and tests can wait for what the broker itself saw
    (:meth:`wait_for_log`).
    """

    def __init__(self, process: subprocess.Popen[bytes], port: int, directory: Path) -> None:
        self.host = "127.0.0.1"
        self.port = port
        self.process = process
        self.directory = directory
        self.log: list[str] = []
        self._eof = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._drain, name="mosquitto-log", daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for raw in iter(self.process.stderr.readline, b""):
            with self._changed:
                self.log.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def lines(self, needle: str) -> list[str]:
        """Log lines containing ``needle``."""
        with self._changed:
            return [line for line in self.log if needle in line]

    def wait_for_log(self, needle: str, timeout: float = 10.0, count: int = 1) -> bool:
        """Wait until ``count`` log lines contain ``needle``; False when the broker ends or time runs out."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while sum(needle in line for line in self.log) < count:
                remaining = deadline - time.monotonic()
                if self._eof or remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._reader.join(timeout=5)
        if self.process.stderr is not None:
            self.process.stderr.close()


def start_mosquitto(directory: str | Path | None = None, *, timeout: float = 10.0,
                    attempts: int = 3) -> MosquittoBroker:
    """Start mosquitto on 127.0.0.1 with a free port; its config lives in ``directory`` (0700).

    Waits until mosquitto logs that it is running (no sleep). Raises FileNotFoundError
    when mosquitto is not installed, RuntimeError when it will not start.
    """
    executable = mosquitto_path()
    if executable is None:
        raise FileNotFoundError("mosquitto is not installed (Debian: apt-get install mosquitto)")
    where = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="gw-mosquitto-"))
    where.mkdir(mode=0o700, parents=True, exist_ok=True)
    last: list[str] = []
    for _ in range(attempts):  # another process may take the free port first: try another
        port = _free_port()
        config = where / "mosquitto.conf"
        config.write_text(
            "# written by gw_emulators.iot_data.start_mosquitto\n"
            "allow_anonymous true\n"
            "persistence false\n"
            "log_dest stderr\n"  # unbuffered, unlike stdout into a pipe
            "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
            "connection_messages true\n"
            f"listener {port} 127.0.0.1\n"
        )
        process = subprocess.Popen([executable, "-c", str(config)], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        broker = MosquittoBroker(process, port, where)
        if broker.wait_for_log(" running", timeout=timeout):
            return broker
        broker.stop()
        last = broker.log[-3:]
    raise RuntimeError("mosquitto did not start: " + " | ".join(last))


@dataclass
class IotStack:
    """The IoT data emulator bridged to a private mosquitto; ``stop()`` ends both."""

    emulator: IotDataEmulator
    broker: MosquittoBroker

    @property
    def url(self) -> str:
        """``wss://127.0.0.1:<port>/mqtt`` (unsigned: the base of every presigned URL)."""
        return self.emulator.url

    @property
    def endpoint(self) -> str:
        """``127.0.0.1:<port>``: the exchange service's ``iot_endpoint``."""
        return self.emulator.endpoint

    @property
    def region(self) -> str:
        return self.emulator.region

    def stop(self) -> None:
        self.emulator.stop()
        self.broker.stop()


def start_iot_stack(ca: LocalCA, moto_or_lookup: Any, *, region: str = DEFAULT_REGION,
                    clock: Callable[[], float] | None = None,
                    directory: str | Path | None = None, hosts: tuple[str, ...] = ()) -> IotStack:
    """Start mosquitto and an :class:`IotDataEmulator` in front of it.

    ``moto_or_lookup`` is a :class:`gw_emulators.aws.MotoStack` (its ``lookup`` tells
    the secret of every key moto issued) or a lookup callable. Raises FileNotFoundError
    when mosquitto is missing (the demo then skips its IoT part).
    """
    lookup = getattr(moto_or_lookup, "lookup", moto_or_lookup)
    if not callable(lookup):
        raise TypeError("moto_or_lookup must be a MotoStack or a callable")
    broker = start_mosquitto(directory)
    try:
        emulator = IotDataEmulator(ca, lookup, broker.address, region=region, clock=clock, hosts=hosts).start()
    except BaseException:
        broker.stop()
        raise
    return IotStack(emulator, broker)
