"""The SORACOM Krypton HTTP protocol (docs/protocols.md §6), without any step or config code.

Three layers meet here only through small interfaces: a SIM (anything with
``imsi()`` and ``authenticate(rand, autn)``, see :mod:`gw_plugins.krypton.sim`),
a :class:`SessionStore` that keeps the (IMSI, keyId, CK) session between runs,
and a ``status`` callable that shows progress. HTTP goes through gw's small standard-library
client (:class:`gw.plugin.HttpClient`): no requests or urllib3 to import before the first
byte, and the connection can open in a thread while the SIM answers its first APDUs
(:meth:`KryptonClient.preconnect`).

Flow of :func:`fetch`:

1. ``POST {endpoint}/v1/keys {"imsi"}`` -> ``{keyId, rand, autn}`` (200 or 401).
2. SIM AUTHENTICATE; on a sync failure one resync ``POST {imsi, rand, auts}``.
3. ``POST {endpoint}/v1/keys/{keyId}/verify {"res"}``.
4. Signed ``POST {endpoint}/v1/provisioning/...`` with ``x-soracom-signature =
   base64(SHA-256(body || timestamp || CK))``.

A stored session skips steps 1-3; a signed call answered with a 4xx on a stored
session causes exactly one fresh handshake and one retry.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from gw.plugin import StepError

GLOBAL_ENDPOINT = "https://g.api.soracom.io"
JAPAN_ENDPOINT = "https://api.soracom.io"
CELLULAR_ENDPOINT = "https://krypton.soracom.io:8036"
SESSION_SECONDS = 3600
DEFAULT_TIMEOUT = 20.0
DIGEST_ALGORITHM = "SHA-256"

#: Krypton operation name -> provisioning path (``{operationId}`` is filled from the parameters).
#: The official client's names (krypton-client-go ``krypton/operations.go``) are in the comments.
OPERATION_PATHS: dict[str, str] = {
    "cognito-credentials": "/v1/provisioning/aws/cognito/credentials",  # generateAmazonCognitoSessionCredentials
    "cognito-openid-token": "/v1/provisioning/aws/cognito/open_id_tokens",  # generateAmazonCognitoOpenIdToken
    "aws-iot-bootstrap": "/v1/provisioning/aws/iot/bootstrap",  # bootstrapAwsIotThing
    "subscriber-metadata": "/v1/provisioning/soracom/air/subscriber_metadata",  # getSubscriberMetadata
    "userdata": "/v1/provisioning/soracom/air/userdata",  # getUserData
    "arc-bootstrap": "/v1/provisioning/soracom/arc/bootstrap",  # bootstrapArc
    "inventory-bootstrap": "/v1/provisioning/soracom/inventory/bootstrap",  # bootstrapInventoryDevice
    # Azure: krypton's Python sample for Azure IoT (register, then poll the registration)
    "azure-iot-register": "/v1/provisioning/azure/iot/register",
    "azure-iot-registration-status": "/v1/provisioning/azure/iot/registrations/{operationId}",
}
INVENTORY_KEY_BYTES = 16  # inventoryApplicationKeyLength in krypton-client-go krypton/operations.go

StatusFn = Callable[[str], ContextManager[None]]


class KryptonError(StepError):
    """A Krypton exchange failed; the message is one clear line without secrets."""


class KeyRejected(KryptonError):
    """The server refused a signed call with a 4xx (unknown, expired or revoked keyId)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def endpoint_for(coverage: str | None, endpoint: str | None = None) -> str:
    """The API base: an explicit endpoint, else the coverage's default (``jp`` or global)."""
    if endpoint:
        return endpoint.rstrip("/")
    return JAPAN_ENDPOINT if (coverage or "g") == "jp" else GLOBAL_ENDPOINT


def signature(body: bytes, timestamp: str, ck: bytes) -> str:
    """``base64(SHA-256(body || timestamp_ascii || CK))``: a plain hash, not an HMAC."""
    return base64.b64encode(hashlib.sha256(body + timestamp.encode("ascii") + ck).digest()).decode("ascii")


def signed_headers(body: bytes, ck: bytes, now_ms: int | None = None) -> dict[str, str]:
    """The three Krypton signature headers for the exact ``body`` bytes sent."""
    timestamp = str(int(time.time() * 1000) if now_ms is None else now_ms)
    return {
        "Content-Type": "application/json",
        "x-soracom-timestamp": timestamp,
        "x-soracom-digest-algorithm": DIGEST_ALGORITHM,
        "x-soracom-signature": signature(body, timestamp, ck),
    }


def go_number(value: float) -> str:
    """A JSON number as Go's encoding/json writes a float64 (``floatEncoder`` in encode.go).

    krypton-cli reads ``-p`` into ``map[string]interface{}``, so every number is a float64:
    an integer past 2**53 loses its low bits, and the shortest digits are written without an
    exponent unless the magnitude is below 1e-6 or at least 1e21 (then ``1e-07`` becomes
    ``1e-7``). Python's ``repr`` switches to exponents elsewhere (``1e-05``, ``1e+16``).
    """
    from decimal import Decimal

    number = float(value)
    if number == 0:
        return "-0" if math.copysign(1.0, number) < 0 else "0"
    magnitude = abs(number)
    if magnitude < 1e-6 or magnitude >= 1e21:
        text = repr(number)
        if len(text) >= 4 and text[-4] == "e" and text[-3] == "-" and text[-2] == "0":
            text = text[:-2] + text[-1]
        return text
    return format(Decimal(repr(number)).normalize(), "f")


def go_json(value: Any) -> bytes:
    """JSON bytes as Go's ``encoding/json.Marshal`` writes them, for byte-identical bodies.

    Go sorts map keys, writes no spaces, leaves non-ASCII as UTF-8, escapes ``<``, ``>``,
    ``&``, U+2028 and U+2029 (``encode.go``: HTMLEscape is on for Marshal) and writes numbers
    as float64 (:func:`go_number`). Struct fields keep their declared order, which the callers
    here reproduce with ordered dicts at the top level.
    """

    def encode(obj: Any, top: bool = False) -> str:
        if isinstance(obj, dict):
            keys = list(obj) if top else sorted(obj)
            return "{" + ",".join(f"{encode(str(k))}:{encode(obj[k])}" for k in keys) + "}"
        if isinstance(obj, (list, tuple)):
            return "[" + ",".join(encode(v) for v in obj) + "]"
        if isinstance(obj, (int, float)) and not isinstance(obj, bool):
            if not math.isfinite(obj):
                raise ValueError("NaN and infinities have no JSON form")
            return go_number(obj)
        if obj is None or isinstance(obj, (bool, str)):
            text = json.dumps(obj, ensure_ascii=False)
            for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                                 ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
                text = text.replace(raw, escaped)
            return text
        raise ValueError(f"a {type(obj).__name__} has no JSON form")

    return encode(value, top=True).encode("utf-8")


def call_body(
    key_id: str | None,
    request_parameters: dict[str, Any] | None,
    *,
    endpoint: str | None = None,
) -> bytes:
    """The body of a provisioning call, byte for byte as krypton-client-go builds it.

    ``simpleOperation`` and ``OperationBootstrapAWSIoTThing`` (krypton/operations.go) marshal
    ``struct{KeyID "keyId"; RequestParameters map "requestParameters,omitempty"}``: an empty or
    absent map leaves ``requestParameters`` out. ``OperationBootstrapInventoryDevice`` puts
    ``endpoint`` between the two. On the cellular link there is no ``keyId``.
    """
    doc: dict[str, Any] = {} if key_id is None else {"keyId": key_id}
    if endpoint is not None:
        doc["endpoint"] = endpoint
    if request_parameters:
        doc["requestParameters"] = request_parameters
    return go_json(doc)


def inventory_application_key(nonce_b64: str, timestamp: str, ck: bytes) -> str:
    """The Inventory applicationKey: base64 of the first 16 bytes of SHA-256(nonce || timestamp || CK).

    As ``calculateInventoryApplicationKey`` in krypton-client-go krypton/operations.go.
    """
    try:
        nonce = base64.b64decode(nonce_b64, validate=True)
    except (binascii.Error, ValueError):
        raise KryptonError("Krypton inventory-bootstrap returned a nonce that is not base64") from None
    digest = hashlib.sha256(nonce + timestamp.encode("utf-8") + ck).digest()
    return base64.b64encode(digest[:INVENTORY_KEY_BYTES]).decode("ascii")


@dataclass
class KryptonSession:
    """A verified Krypton key: usable for signed calls until ``expires_at`` (epoch s)."""

    imsi: str
    key_id: str
    ck: bytes
    endpoint: str
    expires_at: float

    def to_state(self) -> dict[str, Any]:
        return {
            "imsi": self.imsi,
            "keyId": self.key_id,
            "ck": base64.b64encode(self.ck).decode("ascii"),
            "endpoint": self.endpoint,
            "expiresAt": self.expires_at,
        }

    @classmethod
    def from_state(cls, data: dict[str, Any] | None) -> KryptonSession | None:
        """Rebuild a stored session; None when it is malformed or expired."""
        if not isinstance(data, dict):
            return None
        try:
            session = cls(
                imsi=str(data["imsi"]),
                key_id=str(data["keyId"]),
                ck=base64.b64decode(data["ck"], validate=True),
                endpoint=str(data["endpoint"]),
                expires_at=float(data["expiresAt"]),
            )
        except (KeyError, TypeError, ValueError, binascii.Error):
            return None
        if len(session.ck) != 16 or session.expires_at <= time.time():
            return None
        return session


@dataclass
class Reply:
    """The answer of a provisioning call."""

    status: int
    body: bytes
    content_type: str
    path: str

    def json(self) -> Any:
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise KryptonError(f"Krypton {self.path} returned an unreadable answer (not JSON)") from None

    def document(self) -> Any:
        """JSON when the server says so (or the text parses as JSON), else the text."""
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            raise KryptonError(f"Krypton {self.path} returned binary data, not text") from None
        if "json" in self.content_type.lower():
            return self.json()
        return text


class SessionStore(Protocol):
    """Where sessions live between runs (gw's encrypted state, or memory in tests)."""

    def load(self, imsi: str) -> KryptonSession | None: ...

    def save(self, session: KryptonSession) -> None: ...

    def drop(self, imsi: str) -> None: ...


class MemorySessionStore:
    """A :class:`SessionStore` that lives as long as the object."""

    def __init__(self) -> None:
        self.sessions: dict[str, KryptonSession] = {}

    def load(self, imsi: str) -> KryptonSession | None:
        session = self.sessions.get(imsi)
        return session if session and session.expires_at > time.time() else None

    def save(self, session: KryptonSession) -> None:
        self.sessions[session.imsi] = session

    def drop(self, imsi: str) -> None:
        self.sessions.pop(imsi, None)


def _no_status(message: str) -> ContextManager[None]:
    return contextlib.nullcontext()


def _b64(value: Any, size: int, what: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != size:
        raise KryptonError(f"Krypton keys API returned an invalid {what} (expected {size} bytes, base64)")
    return raw


def _error_text(response: Any) -> str:
    """``HTTP <status>[ <code>][: <message>]`` from a Krypton error answer."""
    text = f"HTTP {response.status_code}"
    try:
        doc = response.json()
    except ValueError:
        return text
    if isinstance(doc, dict):
        code, message = doc.get("code"), doc.get("message") or doc.get("error")
        if isinstance(code, str) and code:
            text += f" {code[:40]}"
        if isinstance(message, str) and message:
            text += f": {message.splitlines()[0][:200]}"
    return text


class _Http:
    """gw's small HTTP client (:class:`gw.plugin.HttpClient`: standard library only, one kept-alive
    connection) with a timeout and one-line errors, never following a redirect (a 3xx is
    :class:`gw.plugin.RedirectRefused`: the calls carry the SIM's answers and signatures)."""

    def __init__(self, *, verify: bool | str, timeout: float) -> None:
        from gw.plugin import HttpClient

        self.client = HttpClient(verify, timeout)
        self.timeout = timeout

    def preconnect(self, url: str) -> None:
        """Open the connection (and load the TLS context) in a thread while the SIM is read."""
        try:
            self.client.preconnect(url)
        except ValueError:
            pass  # a malformed endpoint fails with its one line at the first call

    def _send(self, method: str, url: str, what: str, body: bytes = b"",
              headers: dict[str, str] | None = None) -> Any:
        from gw.plugin import HttpFailure

        host = urlsplit(url).netloc
        try:
            response = self.client.request(method, url, headers=headers, body=body)
        except HttpFailure as exc:
            if exc.reason == "timeout":
                raise KryptonError(f"Krypton {what}: no answer from {host} within {self.timeout:g} s") from None
            if exc.reason == "tls":
                raise KryptonError(f"Krypton {what}: TLS verification of {host} failed") from None
            if exc.reason == "connect":
                raise KryptonError(f"Krypton {what}: cannot connect to {host}") from None
            raise KryptonError(f"Krypton {what}: request to {host} failed ({exc})") from None
        except ValueError:
            raise KryptonError(f"Krypton {what}: {url[:80]!r} is not an http(s) URL") from None
        return _no_redirect(response, url, what)

    def post(self, url: str, what: str, *, body: bytes, headers: dict[str, str]) -> Any:
        return self._send("POST", url, what, body, headers)

    def get(self, url: str, what: str) -> Any:
        return self._send("GET", url, what)

    def close(self) -> None:
        self.client.close()


def _no_redirect(response: Any, url: str, what: str) -> Any:
    from gw.plugin import refuse_redirect

    refuse_redirect(f"Krypton {what}", url, response.status_code, response.headers.get("Location"))
    return response


def _json_of(response: Any, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise KryptonError(f"Krypton {what} returned an unreadable answer (not JSON)") from None


class KryptonClient:
    """Handshake and signed calls against one Krypton API endpoint."""

    def __init__(
        self,
        endpoint: str = GLOBAL_ENDPOINT,
        *,
        verify: bool | str = True,
        timeout: float = DEFAULT_TIMEOUT,
        status: StatusFn | None = None,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.keys_url = f"{self.endpoint}/v1/keys"
        self.status = status or _no_status
        self._http = _Http(verify=verify, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def preconnect(self) -> None:
        """Open the TLS connection to the endpoint in a thread now: it overlaps reading the SIM."""
        self._http.preconnect(self.endpoint)

    def __enter__(self) -> KryptonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- handshake ----------------------------------------------------------
    def _challenge(self, body: dict[str, Any]) -> tuple[str, str, bytes, bytes]:
        """POST keys; returns (keyId, rand_b64, rand, autn). 200 and 401 both carry one."""
        response = self._http.post(
            self.keys_url,
            "keys API",
            body=json.dumps(body, separators=(",", ":")).encode(),
            headers={"Content-Type": "application/json"},
        )
        if response.status_code not in (200, 401):
            raise KryptonError(f"Krypton keys API refused the SIM ({_error_text(response)})")
        doc = _json_of(response, "keys API")
        if not isinstance(doc, dict) or not all(k in doc for k in ("keyId", "rand", "autn")):
            if response.status_code == 401:
                raise KryptonError(f"Krypton keys API refused the SIM ({_error_text(response)})")
            raise KryptonError("Krypton keys API answer lacks keyId, rand or autn")
        key_id = doc["keyId"]
        if not isinstance(key_id, str) or not key_id or "/" in key_id:
            raise KryptonError("Krypton keys API returned an invalid keyId")
        return key_id, doc["rand"], _b64(doc["rand"], 16, "rand"), _b64(doc["autn"], 16, "autn")

    def handshake(self, sim: Any) -> KryptonSession:
        """Run the SIM challenge-response and return a verified session."""
        from .sim import MacFailure, SimError, SyncFailure

        started = time.time()
        with self.status("Authenticating the SIM ..."):
            try:
                imsi = sim.imsi()
                key_id, rand_b64, rand, autn = self._challenge({"imsi": imsi})
                try:
                    result = sim.authenticate(rand, autn)
                except SyncFailure as failure:
                    auts = base64.b64encode(failure.auts).decode("ascii")
                    key_id, rand_b64, rand, autn = self._challenge({"imsi": imsi, "rand": rand_b64, "auts": auts})
                    try:
                        result = sim.authenticate(rand, autn)
                    except SyncFailure:
                        raise KryptonError(
                            "the SIM still reports a sequence-number failure after one resynchronisation"
                        ) from None
            except MacFailure:
                raise KryptonError(
                    "the SIM rejected the Krypton challenge (MAC failure): the server does not hold this SIM's key"
                ) from None
            except SimError as exc:
                raise KryptonError(f"SIM authentication failed: {exc}") from None
            ck = bytes(result.ck)
            if len(ck) != 16:
                raise KryptonError("the SIM returned a cipher key CK of the wrong length")
            res = base64.b64encode(bytes(result.res)).decode("ascii")
            response = self._http.post(
                f"{self.keys_url}/{key_id}/verify",
                "key verification",
                body=json.dumps({"res": res}, separators=(",", ":")).encode(),
                headers={"Content-Type": "application/json"},
            )
            if response.status_code != 200:
                raise KryptonError(f"Krypton refused the SIM's response ({_error_text(response)})")
        return KryptonSession(imsi, key_id, ck, self.endpoint, started + SESSION_SECONDS)

    # -- signed calls -------------------------------------------------------
    def call(
        self,
        session: KryptonSession,
        path: str,
        request_parameters: dict[str, Any] | None = None,
        *,
        endpoint: str | None = None,
    ) -> Reply:
        """A signed provisioning call; 4xx raises :class:`KeyRejected`, 5xx :class:`KryptonError`."""
        body = call_body(session.key_id, request_parameters, endpoint=endpoint)
        with self.status(f"Calling Krypton {path.rsplit('/provisioning/', 1)[-1]} ..."):
            response = self._http.post(
                f"{self.endpoint}{path}", path, body=body, headers=signed_headers(body, session.ck)
            )
        return _reply(response, path)


def _reply(response: Any, path: str) -> Reply:
    if 400 <= response.status_code < 500:
        raise KeyRejected(f"Krypton {path} refused the call ({_error_text(response)})", response.status_code)
    if response.status_code != 200:
        raise KryptonError(f"Krypton {path} failed ({_error_text(response)})")
    return Reply(200, response.content, response.headers.get("Content-Type", ""), path)


class CellularClient:
    """Provisioning over the cellular link: same paths, no handshake, no signature."""

    def __init__(
        self,
        endpoint: str = CELLULAR_ENDPOINT,
        *,
        verify: bool | str = True,
        timeout: float = DEFAULT_TIMEOUT,
        status: StatusFn | None = None,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.status = status or _no_status
        self._http = _Http(verify=verify, timeout=timeout)

    def call(
        self, path: str, request_parameters: dict[str, Any] | None = None, *, endpoint: str | None = None,
        method: str = "POST",
    ) -> Reply:
        """A provisioning call over the cellular link (``GET`` without a body for a status poll)."""
        with self.status("Calling Krypton over the cellular link ..."):
            if method == "GET":
                response = self._http.get(f"{self.endpoint}{path}", path)
            else:
                body = call_body(None, request_parameters, endpoint=endpoint)
                response = self._http.post(
                    f"{self.endpoint}{path}", path, body=body, headers={"Content-Type": "application/json"}
                )
        return _reply(response, path)

    def preconnect(self) -> None:
        """Open the TLS connection to the endpoint in a thread now."""
        self._http.preconnect(self.endpoint)

    def close(self) -> None:
        self._http.close()


def fetch(
    client: KryptonClient,
    sim: Any,
    path: str,
    request_parameters: dict[str, Any] | None,
    store: SessionStore,
    *,
    endpoint: str | None = None,
) -> tuple[Reply, KryptonSession]:
    """One provisioning call, reusing a stored session when there is one.

    A 4xx on a stored session drops it and runs exactly one fresh handshake and
    retry. A session is stored only after a successful verify.
    """
    from .sim import SimError

    try:
        imsi = sim.imsi()
    except SimError as exc:
        raise KryptonError(f"cannot read the SIM's IMSI: {exc}") from None
    session = store.load(imsi)
    if session is not None and session.endpoint == client.endpoint:
        try:
            return client.call(session, path, request_parameters, endpoint=endpoint), session
        except KeyRejected:
            store.drop(imsi)
    session = client.handshake(sim)
    store.save(session)
    return client.call(session, path, request_parameters, endpoint=endpoint), session
