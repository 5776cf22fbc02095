"""A SORACOM Krypton emulator (protocols.md section 6) over real HTTPS on 127.0.0.1.

Subscribers are added with their Milenage keys; the emulator plays the network
side of the SIM handshake:

* ``POST /v1/keys {"imsi"}`` issues a challenge for SQN+1 (the server SQN moves on
  with every challenge) -> ``{"keyId", "rand", "autn"}``.
  ``{"imsi", "rand", "auts"}`` resynchronises: SQN_MS is recovered from AUTS (MAC-S
  checked) and a new challenge follows.
* ``POST /v1/keys/{keyId}/verify`` accepts ``"res"`` or ``"xres"``; a verified keyId is
  valid for 3600 s (``revoke`` / ``expire_all`` end it early for tests).
* ``POST /v1/provisioning/...`` checks ``x-soracom-signature = base64(SHA-256(body ||
  timestamp || CK))`` over the raw body and refuses timestamps more than 5 min off.

``cognito/credentials`` mints real STS credentials from a moto server when
``aws_endpoint`` is given (AssumeRoleWithWebIdentity, 3600 s), else random look-alikes.
With ``cellular_imsi`` set, provisioning calls without signature headers are served as
that subscriber (the ``krypton.soracom.io:8036`` cellular link).

``inject(route, status=..., body=..., delay=...)`` makes the next call(s) of a route fail,
for error-path tests. Route names: ``keys``, ``verify`` and the provisioning path after
``/v1/provisioning/`` (e.g. ``aws/cognito/credentials``).
"""

from __future__ import annotations

import base64
import binascii
import collections
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
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
)


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
class Fault:
    status: int | None
    body: bytes | None
    content_type: str
    delay: float
    times: int


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
    ) -> None:
        super().__init__(ca)
        self.aws_endpoint = aws_endpoint
        self.region = region
        self.cellular_imsi = cellular_imsi
        self.challenge_status = challenge_status
        self.subscribers: dict[str, Subscriber] = {}
        self.keys: dict[str, Key] = {}
        self.iot_host = f"example-ats.iot.{region}.amazonaws.com"
        self._state = threading.RLock()
        self._faults: dict[str, Fault] = {}
        self._rsa_key: Any = None
        #: requests per route name counted on arrival, before any injected delay or failure
        #: (lets a test act while a call is held up, e.g. remove the SIM mid-way)
        self.arrivals: collections.Counter[str] = collections.Counter()
        self.route("POST", r"/v1/keys", self._keys, "keys")
        self.route("POST", r"/v1/keys/(?P<key_id>[A-Za-z0-9._-]+)/verify", self._verify, "verify")
        for path in PROVISIONING_PATHS:
            self.route("POST", f"/v1/provisioning/{path}", self._provisioning, path)

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
        status: int | None = 500,
        body: bytes | str | None = None,
        content_type: str = "application/json",
        delay: float = 0.0,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``route`` answer ``status``/``body`` after ``delay`` s.

        ``status=None`` only delays, then serves normally.
        """
        raw = body.encode() if isinstance(body, str) else body
        with self._state:
            self._faults[route] = Fault(status, raw, content_type, delay, times)

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

    def dispatch(self, request: Request) -> Response:
        name = self._route_name(request.path)
        fault = None
        with self._state:
            if name:
                self.arrivals[name] += 1
            if name and name in self._faults:
                fault = self._faults[name]
                fault.times -= 1
                if fault.times <= 0:
                    del self._faults[name]
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status is not None:
                self.count(name)
                body = fault.body if fault.body is not None else json.dumps(
                    {"code": "EMU0500", "message": "injected failure"}
                ).encode()
                return Response(fault.status, body, {"Content-Type": fault.content_type})
        return super().dispatch(request)

    @staticmethod
    def _route_name(path: str) -> str | None:
        if path == "/v1/keys":
            return "keys"
        if path.startswith("/v1/keys/") and path.endswith("/verify"):
            return "verify"
        if path.startswith("/v1/provisioning/"):
            return path[len("/v1/provisioning/") :]
        return None

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
        self.keys[key_id] = Key(key_id, subscriber.imsi, xres, ck, time.time())
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
            if key is None or key.revoked or time.time() - key.issued_at >= KEY_SECONDS:
                return _error(404, "KRY0006", "no such key")
            if key.verified or not hmac.compare_digest(res, key.xres):
                return _error(401, "KRY0007", "verification failed")
            key.verified = True
        return json_response(200, {"keyId": key_id})

    # -- provisioning --------------------------------------------------------
    def _authorise(self, request: Request) -> tuple[Subscriber | None, Response | None]:
        """The subscriber a signed (or cellular) call acts for, or an error answer."""
        timestamp = request.header("x-soracom-timestamp")
        signature = request.header("x-soracom-signature")
        if timestamp is None and signature is None and self.cellular_imsi:
            return self.subscribers.get(self.cellular_imsi), None
        if request.header("x-soracom-digest-algorithm", "").upper() != "SHA-256":
            return None, _error(400, "KRY0010", "unsupported or missing x-soracom-digest-algorithm")
        if not timestamp or not timestamp.isdigit() or not signature:
            return None, _error(401, "KRY0011", "missing signature headers")
        if abs(time.time() * 1000 - int(timestamp)) > MAX_SKEW_MS:
            return None, _error(401, "KRY0012", "timestamp too far from server time")
        try:
            key_id = request.json()["keyId"]
        except (ValueError, KeyError, TypeError):
            return None, _error(400, "KRY0013", "body must be JSON with keyId")
        with self._state:
            key = self.keys.get(key_id) if isinstance(key_id, str) else None
            if key is None or not key.usable(time.time()):
                return None, _error(401, "KRY0014", "invalid or expired keyId")
            expected = base64.b64encode(
                hashlib.sha256(request.body + timestamp.encode("ascii") + key.ck).digest()
            ).decode()
            if not hmac.compare_digest(expected, signature):
                return None, _error(401, "KRY0015", "signature mismatch")
            return self.subscribers.get(key.imsi), None

    def _provisioning(self, request: Request) -> Response:
        subscriber, refusal = self._authorise(request)
        if refusal is not None:
            return refusal
        if subscriber is None:
            return _error(404, "KRY0404", "no such subscriber")
        try:
            params = request.json().get("requestParameters") or {}
        except (ValueError, AttributeError):
            return _error(400, "KRY0016", "body must be a JSON object")
        path = request.path[len("/v1/provisioning/") :]
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

        now = int(time.time())
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
            except Exception as exc:  # the AWS side is down: answer as the real service would
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
                "expiration": int((time.time() + 3600) * 1000),
            }
        return json_response(200, {"identityId": identity, "credentials": credentials})

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
