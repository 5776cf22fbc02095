"""A SORACOM Krypton emulator (docs/protocols.md §6) over real HTTPS on 127.0.0.1.

Subscribers are added with their Milenage keys; the emulator plays the network
side of the SIM handshake:

* ``POST /v1/keys {"imsi"}`` issues a challenge for SQN+1 (the server SQN moves on
  with every challenge) -> ``{"keyId", "rand", "autn"}``.
  ``{"imsi", "rand", "auts"}`` resynchronises: SQN_MS is recovered from AUTS (MAC-S
  checked) and a new challenge follows.
* ``POST /v1/keys/{keyId}/verify`` accepts ``"res"`` or ``"xres"``; a verified keyId is
  valid for 3600 s (``revoke`` / ``expire_all`` end it early for tests). A new key agreement
  for an IMSI invalidates that IMSI's older keys (the service keeps one key per SIM).
* ``POST /v1/provisioning/...`` checks the headers ``x-soracom-timestamp``,
  ``x-soracom-digest-algorithm: SHA-256`` and ``x-soracom-signature = base64(SHA-256(body ||
  timestamp || CK))`` over the raw body and refuses timestamps more than 5 min off. A body
  without parameters may leave ``requestParameters`` out (krypton-client-go's ``omitempty``),
  or carry ``null`` or ``{}``: all three are served.
* Operations as the official clients call them (krypton-client-go ``krypton/operations.go``):
  the Cognito, IoT and Air ones, ``soracom/arc/bootstrap`` (WireGuard peer for Arc),
  ``soracom/inventory/bootstrap`` (needs a top-level ``endpoint``; answers ``serverUri``, ``pskId``,
  ``nonce`` and ``timestamp``: the device derives its applicationKey from them and CK), and
  ``azure/iot/register`` -> ``{"operationId"}`` with ``azure/iot/registrations/{operationId}``
  (POST signed, or GET on the cellular link) answering ``assigning`` first, then ``assigned``
  with a device certificate and key. Every body gw sends is recorded in :attr:`bodies`.

``cognito/credentials`` mints real STS credentials from a moto server when
``aws_endpoint`` is given (AssumeRoleWithWebIdentity, 3600 s), else random look-alikes.
With ``cellular_imsi`` set, provisioning calls without signature headers are served as
that subscriber (the ``krypton.soracom.io:8036`` cellular link).

Faults and time come from the shared base (:class:`~gw_emulators.httpserver.EmulatorServer`:
``inject(route, status=, delay=, garbage=, drop=, count=)``, ``clock``/``advance``); ``inject``
here also takes ``body=`` for a canned answer. Route names: ``keys``, ``verify`` and the
provisioning path after ``/v1/provisioning/`` (e.g. ``aws/cognito/credentials``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from .httpserver import EmulatorServer, Request, Response, json_response
from .milenage import Milenage, make_autn, recover_sqn_from_auts
from .tls import LocalCA

KEY_SECONDS = 3600
MAX_SKEW_MS = 5 * 60 * 1000
COGNITO_ROLE_ARN = "arn:aws:iam::123456789012:role/KryptonCognitoRole"
OPENID_SECONDS = 600
PROVISIONING_PATHS = (
    "aws/cognito/credentials",
    "aws/cognito/open_id_tokens",
    "aws/iot/bootstrap",
    "soracom/air/subscriber_metadata",
    "soracom/air/userdata",
    "soracom/arc/bootstrap",
    "soracom/inventory/bootstrap",
    "azure/iot/register",
)
AZURE_STATUS_ROUTE = "azure/iot/registrations"


def _error(status: int, code: str, message: str) -> Response:
    return json_response(status, {"code": code, "message": message})


@dataclass
class Subscriber:
    imsi: str
    milenage: Milenage
    sqn: int
    metadata: dict[str, Any] = field(default_factory=dict)
    userdata: str = ""
    userdata_type: str = "text/plain; charset=utf-8"
    rands: list[bytes] = field(default_factory=list)  # challenges issued (for resync checks)


@dataclass
class Key:
    key_id: str
    imsi: str
    xres: bytes
    ck: bytes
    issued_at: float
    verified: bool = False
    revoked: bool = False

    def usable(self, now: float) -> bool:
        return self.verified and not self.revoked and now - self.issued_at < KEY_SECONDS


@dataclass
class Canned:
    status: int
    body: bytes
    content_type: str
    times: int


@dataclass
class AzureRegistration:
    imsi: str
    polls_left: int


class KryptonEmulator(EmulatorServer):
    """The Krypton keys API and provisioning API; see the module docstring."""

    name = "krypton"

    def __init__(
        self,
        ca: LocalCA | None,
        *,
        aws_endpoint: str | None = None,
        region: str = "ap-northeast-1",
        cellular_imsi: str | None = None,
        challenge_status: int = 200,
        clock: Any = None,
    ) -> None:
        super().__init__(ca, clock=clock)
        self.aws_endpoint = aws_endpoint
        self.region = region
        self.cellular_imsi = cellular_imsi
        self.challenge_status = challenge_status
        self.subscribers: dict[str, Subscriber] = {}
        self.keys: dict[str, Key] = {}
        self.iot_host = f"example-ats.iot.{region}.amazonaws.com"
        self._state = threading.RLock()
        self._canned: dict[str, Canned] = {}
        self._rsa_key: Any = None
        #: every provisioning request body received, oldest first: (route name, raw bytes)
        self.bodies: list[tuple[str, bytes]] = []
        #: applicationKey each IMSI's device should derive in inventory bootstrap (for tests)
        self.inventory_keys: dict[str, str] = {}
        self.azure: dict[str, AzureRegistration] = {}
        #: how many status polls answer "assigning" before "assigned"
        self.azure_pending_polls = 1
        self.route("POST", r"/v1/keys", self._wrap("keys", self._keys), "keys")
        self.route("POST", r"/v1/keys/(?P<key_id>[A-Za-z0-9._-]+)/verify", self._wrap("verify", self._verify), "verify")
        for path in PROVISIONING_PATHS:
            self.route("POST", f"/v1/provisioning/{path}", self._wrap(path, self._provisioning), path)
        for method in ("POST", "GET"):
            self.route(method, r"/v1/provisioning/azure/iot/registrations/(?P<operation_id>[A-Za-z0-9-]+)",
                       self._wrap(AZURE_STATUS_ROUTE, self._provisioning), AZURE_STATUS_ROUTE)

    @property
    def arrivals(self) -> Any:
        """Requests per route name, counted on arrival before any injected delay or failure."""
        return self.calls

    # -- test controls -------------------------------------------------------
    def add_subscriber(
        self,
        imsi: str,
        k: bytes,
        opc: bytes,
        sqn: int = 0,
        *,
        metadata: dict[str, Any] | None = None,
        userdata: str = "",
    ) -> Subscriber:
        """Register a SIM; ``sqn`` is the last SQN the server used for it."""
        subscriber = Subscriber(imsi, Milenage(k, opc=opc), sqn, dict(metadata or {}), userdata)
        with self._state:
            self.subscribers[imsi] = subscriber
        return subscriber

    def revoke(self, key_id: str) -> None:
        with self._state:
            if key_id in self.keys:
                self.keys[key_id].revoked = True

    def expire_all(self) -> None:
        with self._state:
            for key in self.keys.values():
                key.issued_at -= KEY_SECONDS + 1

    def inject(
        self,
        route: str,
        *,
        status: int | None = None,
        body: bytes | str | None = None,
        content_type: str = "application/json",
        delay: float = 0.0,
        garbage: bool = False,
        drop: bool = False,
        count: int = 1,
        location: str | None = None,
    ) -> None:
        """The base's faults (status, delay, garbage, drop, location) for the next ``count`` calls of
        ``route``; with ``body`` the call is answered ``status`` (default 200) and that body instead."""
        if body is None:
            super().inject(route, status=status, delay=delay, garbage=garbage, drop=drop, count=count,
                           location=location)
            return
        if location is not None:
            raise ValueError("a canned body goes without location (a redirect fault has the base's body)")
        if delay:
            super().inject(route, delay=delay, count=count)
        raw = body.encode() if isinstance(body, str) else body
        with self._state:
            self._canned[route] = Canned(status or 200, raw, content_type, count)

    def _wrap(self, name: str, handler: Any) -> Any:
        """A route handler that serves a canned answer first when one is injected."""

        def handle(request: Request) -> Response:
            with self._state:
                canned = self._canned.get(name)
                if canned is not None:
                    canned.times -= 1
                    if canned.times <= 0:
                        del self._canned[name]
            if canned is not None:
                return Response(canned.status, canned.body, {"Content-Type": canned.content_type})
            return handler(request)

        return handle

    @property
    def handshakes(self) -> int:
        """keys POSTs that issued a challenge (first challenges and resyncs)."""
        return self.calls["challenge-issued"]

    @property
    def resyncs(self) -> int:
        return self.calls["resync"]

    @property
    def verifies(self) -> int:
        return self.calls["verify"]

    # -- keys API ------------------------------------------------------------
    def _keys(self, request: Request) -> Response:
        try:
            doc = request.json()
            imsi = doc["imsi"]
        except (ValueError, KeyError, TypeError):
            return _error(400, "KRY0001", "body must be JSON with imsi")
        with self._state:
            subscriber = self.subscribers.get(imsi) if isinstance(imsi, str) else None
            if subscriber is None:
                return _error(404, "KRY0404", "no such subscriber")
            if "auts" in doc:
                try:
                    rand = base64.b64decode(doc["rand"], validate=True)
                    auts = base64.b64decode(doc["auts"], validate=True)
                except (KeyError, TypeError, ValueError, binascii.Error):
                    return _error(400, "KRY0002", "resync needs base64 rand and auts")
                if rand not in subscriber.rands:
                    return _error(400, "KRY0003", "rand was not issued for this subscriber")
                try:
                    subscriber.sqn = recover_sqn_from_auts(subscriber.milenage, rand, auts)
                except ValueError:
                    return _error(400, "KRY0004", "AUTS does not verify")
                self.count("resync")
            return self._challenge(subscriber)

    def _challenge(self, subscriber: Subscriber) -> Response:
        subscriber.sqn += 1
        rand = os.urandom(16)
        autn = make_autn(subscriber.milenage, rand, subscriber.sqn)
        xres, ck, _ik, _ak = subscriber.milenage.f2345(rand)
        subscriber.rands = (subscriber.rands + [rand])[-16:]
        key_id = f"key-{uuid.uuid4().hex}"
        self.keys[key_id] = Key(key_id, subscriber.imsi, xres, ck, self.clock())
        self.count("challenge-issued")
        return json_response(
            self.challenge_status,
            {
                "keyId": key_id,
                "rand": base64.b64encode(rand).decode(),
                "autn": base64.b64encode(autn).decode(),
            },
        )

    def _verify(self, request: Request) -> Response:
        key_id = request.match.group("key_id") if request.match else ""
        try:
            doc = request.json()
            res_b64 = doc.get("res") or doc.get("xres")
            res = base64.b64decode(res_b64, validate=True)
        except (ValueError, TypeError, AttributeError, binascii.Error):
            return _error(400, "KRY0005", "body must be JSON with a base64 res")
        with self._state:
            key = self.keys.get(key_id)
            if key is None or key.revoked or self.clock() - key.issued_at >= KEY_SECONDS:
                return _error(404, "KRY0006", "no such key")
            if key.verified or not hmac.compare_digest(res, key.xres):
                return _error(401, "KRY0007", "verification failed")
            key.verified = True
            for other in self.keys.values():  # one key per SIM: the new agreement ends the older ones
                if other.imsi == key.imsi and other.key_id != key_id:
                    other.revoked = True
        return json_response(200, {"keyId": key_id})

    # -- provisioning --------------------------------------------------------
    def _authorise(self, request: Request) -> tuple[Subscriber | None, Response | None]:
        """The subscriber a signed (or cellular) call acts for, or an error answer.

        Header names are exactly those krypton-client-go sends (``PostWithSignature`` in
        endorse-client-go ``endorse/client.go``); HTTP compares them case-insensitively.
        """
        timestamp = request.header("x-soracom-timestamp")
        signature = request.header("x-soracom-signature")
        if timestamp is None and signature is None and self.cellular_imsi:
            return self.subscribers.get(self.cellular_imsi), None
        if (request.header("x-soracom-digest-algorithm") or "").upper() != "SHA-256":
            return None, _error(400, "KRY0010", "unsupported or missing x-soracom-digest-algorithm")
        if not timestamp or not timestamp.isdigit() or not signature:
            return None, _error(401, "KRY0011", "missing signature headers")
        if abs(self.clock() * 1000 - int(timestamp)) > MAX_SKEW_MS:
            return None, _error(401, "KRY0012", "timestamp too far from server time")
        try:
            key_id = request.json()["keyId"]
        except (ValueError, KeyError, TypeError):
            return None, _error(400, "KRY0013", "body must be JSON with keyId")
        with self._state:
            key = self.keys.get(key_id) if isinstance(key_id, str) else None
            if key is None or not key.usable(self.clock()):
                return None, _error(401, "KRY0014", "invalid or expired keyId")
            expected = base64.b64encode(
                hashlib.sha256(request.body + timestamp.encode("ascii") + key.ck).digest()
            ).decode()
            if not hmac.compare_digest(expected, signature):
                return None, _error(401, "KRY0015", "signature mismatch")
            return self.subscribers.get(key.imsi), None

    def _provisioning(self, request: Request) -> Response:
        path = request.path[len("/v1/provisioning/") :]
        with self._state:
            self.bodies.append((path, request.body))
        if request.method == "GET" and path.startswith(AZURE_STATUS_ROUTE + "/"):
            # the cellular link's GET (krypton's Azure sample); no body, no signature
            subscriber = self.subscribers.get(self.cellular_imsi or "")
            if subscriber is None or request.header("x-soracom-signature"):
                return _error(401, "KRY0011", "missing signature headers")
            return self._azure_status(subscriber, request)
        subscriber, refusal = self._authorise(request)
        if refusal is not None:
            return refusal
        if subscriber is None:
            return _error(404, "KRY0404", "no such subscriber")
        try:  # no parameters may come as absent (krypton-client-go's omitempty), null or {}
            doc = request.json() if request.body else {}
            params = doc.get("requestParameters") or {}
        except (ValueError, AttributeError):
            return _error(400, "KRY0016", "body must be a JSON object")
        if not isinstance(params, dict):
            return _error(400, "KRY0016", "requestParameters must be a JSON object")
        if path == "soracom/arc/bootstrap":
            return json_response(200, self._arc(subscriber))
        if path == "soracom/inventory/bootstrap":
            return self._inventory(subscriber, doc, request)
        if path == "azure/iot/register":
            operation_id = str(uuid.uuid4())
            with self._state:
                self.azure[operation_id] = AzureRegistration(subscriber.imsi, self.azure_pending_polls)
            return json_response(200, {"operationId": operation_id})
        if path.startswith(AZURE_STATUS_ROUTE + "/"):
            return self._azure_status(subscriber, request)
        if path == "aws/cognito/credentials":
            return self._cognito_credentials(subscriber)
        if path == "aws/cognito/open_id_tokens":
            return json_response(
                200,
                {"region": self.region, "token": self.openid_token(subscriber), "identityId": self.identity_id(subscriber.imsi)},
            )
        if path == "aws/iot/bootstrap":
            return self._iot_bootstrap(subscriber, params)
        if path == "soracom/air/subscriber_metadata":
            return json_response(200, self._metadata(subscriber))
        return Response(200, subscriber.userdata.encode(), {"Content-Type": subscriber.userdata_type})

    def identity_id(self, imsi: str) -> str:
        """A stable Cognito identity id for a subscriber."""
        return f"{self.region}:{uuid.uuid5(uuid.NAMESPACE_URL, 'krypton:' + imsi)}"

    def openid_public_key_pem(self) -> bytes:
        """The PEM public key that verifies :meth:`openid_token` JWTs (RS256)."""
        from cryptography.hazmat.primitives import serialization

        return self._rsa().public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def _rsa(self) -> Any:
        with self._state:
            if self._rsa_key is None:
                from cryptography.hazmat.primitives.asymmetric import rsa

                self._rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            return self._rsa_key

    def openid_token(self, subscriber: Subscriber) -> str:
        import jwt

        now = int(self.clock())
        claims = {
            "iss": "https://cognito-identity.amazonaws.com",
            "sub": self.identity_id(subscriber.imsi),
            "aud": f"{self.region}:00000000-0000-4000-8000-00000000cafe",
            "amr": ["authenticated", "krypton"],
            "iat": now,
            "exp": now + OPENID_SECONDS,
        }
        return jwt.encode(claims, self._rsa(), algorithm="RS256", headers={"kid": "krypton-emulator"})

    def _cognito_credentials(self, subscriber: Subscriber) -> Response:
        identity = self.identity_id(subscriber.imsi)
        if self.aws_endpoint:
            import boto3

            sts = boto3.client(
                "sts",
                endpoint_url=self.aws_endpoint,
                region_name=self.region,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            try:
                answer = sts.assume_role_with_web_identity(
                    RoleArn=COGNITO_ROLE_ARN,
                    RoleSessionName=f"krypton-{subscriber.imsi}",
                    WebIdentityToken=self.openid_token(subscriber),
                    DurationSeconds=3600,
                )["Credentials"]
            except Exception as exc:  # noqa: BLE001 - the AWS side is down: answer as the real service would
                return _error(500, "KRY0500", f"cannot mint credentials ({type(exc).__name__})")
            credentials = {
                "accessKeyId": answer["AccessKeyId"],
                "secretKey": answer["SecretAccessKey"],
                "sessionToken": answer["SessionToken"],
                "expiration": int(answer["Expiration"].timestamp() * 1000),
            }
        else:
            credentials = {
                "accessKeyId": "ASIA" + secrets.token_hex(8).upper(),
                "secretKey": secrets.token_urlsafe(30),
                "sessionToken": secrets.token_urlsafe(120),
                "expiration": int((self.clock() + 3600) * 1000),
            }
        return json_response(200, {"identityId": identity, "region": self.region, "credentials": credentials})

    def _iot_bootstrap(self, subscriber: Subscriber, params: dict[str, Any]) -> Response:
        if self.ca is None:
            return _error(500, "KRY0501", "IoT bootstrap needs the emulator CA")
        client_id = str(params.get("clientId") or subscriber.imsi) if isinstance(params, dict) else subscriber.imsi
        issued = self.ca.issue(f"iot-{subscriber.imsi}-{secrets.token_hex(4)}", server=False, common_name=client_id)
        certificate = issued.cert_path.read_text()
        private_key = issued.key_path.read_text()
        issued.key_path.unlink()  # the device keeps the only copy
        return json_response(
            200,
            {
                "region": self.region,
                "certificate": certificate,
                "rootCaCertificate": self.ca.ca_path.read_text(),
                "privateKey": private_key,
                "host": self.iot_host,
                "clientId": client_id,
            },
        )

    def _arc(self, subscriber: Subscriber) -> dict[str, Any]:
        """A WireGuard peer for SORACOM Arc (field names of the Arc bootstrap answer)."""
        index = int(subscriber.imsi[-4:]) % 250 + 2
        return {
            "arcClientPeerPrivateKey": base64.b64encode(hashlib.sha256(b"arc:" + subscriber.imsi.encode()).digest()).decode(),
            "arcClientPeerIpAddress": f"10.128.0.{index}",
            "arcServerPeerPublicKey": base64.b64encode(hashlib.sha256(b"arc-server").digest()).decode(),
            "arcServerEndpoint": "127.0.0.1:51820",
            "arcAllowedIPs": ["100.127.0.0/16"],
        }

    def _inventory(self, subscriber: Subscriber, doc: dict[str, Any], request: Request) -> Response:
        endpoint = doc.get("endpoint")
        if not isinstance(endpoint, str) or not endpoint:
            return _error(400, "KRY0020", "inventory bootstrap needs the device's endpoint name")
        key = self.keys.get(str(doc.get("keyId")))
        if key is None:
            return _error(400, "KRY0021", "inventory bootstrap needs SIM authentication")
        nonce = os.urandom(16)
        timestamp = str(int(self.clock() * 1000))
        app_key = hashlib.sha256(nonce + timestamp.encode("ascii") + key.ck).digest()[:16]
        with self._state:
            self.inventory_keys[subscriber.imsi] = base64.b64encode(app_key).decode()
        return json_response(
            200,
            {
                "serverUri": "coaps://127.0.0.1:5684",
                "pskId": f"{subscriber.imsi}-{endpoint}",
                "nonce": base64.b64encode(nonce).decode(),
                "timestamp": timestamp,
            },
        )

    def _azure_status(self, subscriber: Subscriber, request: Request) -> Response:
        operation_id = request.match.group("operation_id") if request.match else ""
        with self._state:
            registration = self.azure.get(operation_id)
            if registration is None or registration.imsi != subscriber.imsi:
                return _error(404, "KRY0030", "no such registration")
            if registration.polls_left > 0:
                registration.polls_left -= 1
                return json_response(200, {"operationId": operation_id, "status": "assigning"})
        if self.ca is None:
            return _error(500, "KRY0501", "Azure registration needs the emulator CA")
        issued = self.ca.issue(f"azure-{subscriber.imsi}-{secrets.token_hex(4)}", server=False,
                               common_name=subscriber.imsi)
        certificate, private_key = issued.cert_path.read_text(), issued.key_path.read_text()
        issued.key_path.unlink()
        return json_response(
            200,
            {
                "operationId": operation_id,
                "status": "assigned",
                "host": "example-hub.azure-devices.net",
                "deviceId": subscriber.imsi,
                "certificate": certificate,
                "privateKey": private_key,
            },
        )

    def _metadata(self, subscriber: Subscriber) -> dict[str, Any]:
        doc = {
            "imsi": subscriber.imsi,
            "msisdn": "81" + subscriber.imsi[-10:],
            "ipAddress": "10.0.0.1",
            "operatorId": "OP0012345678",
            "status": "active",
            "speedClass": "s1.standard",
            "moduleType": "virtual",
            "tags": {"name": f"sim-{subscriber.imsi[-4:]}"},
        }
        doc.update(subscriber.metadata)
        return doc
