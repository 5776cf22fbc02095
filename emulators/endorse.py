"""A local stand-in for SORACOM Endorse and its public key bucket (docs/protocols.md section 5).

What it serves (HTTPS on 127.0.0.1, :class:`EmulatorServer`):

* ``GET /`` and ``POST /`` -> ``{"token": "<JWT>"}``. Query parameters, and the POST
  body's members, land in the claim's ``requestParameters``; the claim has no
  ``requestParameters`` at all when none were sent. The body may be a JSON object or a
  form (``username=sora``, as SORACOM's URL-redirection example posts): a body that
  begins like JSON is read as JSON whatever its ``Content-Type`` (SORACOM's own example,
  ``curl -X POST -d '{"username": ...}'``, sends JSON labelled as a form); otherwise a
  form-encoded (or unlabelled) body is read as a form, and any other type is a 400.
* ``?redirect_url=<url>`` (``url`` must start with one of
  :attr:`EndorseEmulator.authorized_redirects`, else 400) delivers the token to ``url``
  instead, as :attr:`EndorseEmulator.redirect_delivery` says. SORACOM's pages describe
  two ways and both are served: ``"query"`` (the default, what the configuration page
  and the Japanese user-data page show) answers 302 to
  ``<url>?soracom_endorse_token=<JWT>``, which a browser follows with a GET; ``"post"``
  (what the URL-redirection page describes) answers an HTML page whose form posts
  ``soracom_endorse_token=<JWT>`` to ``url`` by itself.

  Sources: developers.soracom.io/en/docs/endorse/request, .../endorse/configuration and
  .../endorse/url-redirection; users.soracom.io/ja-jp/docs/endorse/user-userdata.
* ``GET /soracom-public-keys/<kid>`` -> the signing key as PEM: a ``CERTIFICATE``
  (default, as the real ``-x509.pem`` name says) or, with ``key_form = "public-key"``,
  a ``PUBLIC KEY``. :attr:`EndorseEmulator.key_store_url` is the bucket URL to configure.

Which SIM asks: the real service knows the SIM from the cellular session. Here the
request header ``X-Emulator-Imsi`` picks one of the configured SIMs (an IMSI that is
not configured answers 403, like a request that does not come over SORACOM Air);
without the header the :attr:`EndorseEmulator.default_imsi` SIM asks.

Misbehaviour on demand: :attr:`EndorseEmulator.mode` (``"valid"`` by default) makes
every later token ``"expired"``, ``"not-yet-valid"``, ``"wrong-signature"`` (signed by
another key under the same kid), ``"wrong-audience"`` or ``"other-service"`` (the
aud/sub of another SORACOM service sharing the key bucket; the exact Funk values are not
public, these stand for them). :meth:`EndorseEmulator.mint` builds a token directly
with any of those modes and claim overrides, for tests.
"""

from __future__ import annotations

import html
import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode

from .httpserver import EmulatorServer, Request, Response, json_response
from .tls import LocalCA

ISSUER = "https://soracom.io"
AUDIENCE = "soracom-endorse-audience"
SUBJECT = "soracom-endorse"
OTHER_SERVICE_AUDIENCE = "soracom-funk-audience"  # stand-in: the real Funk values are not public
OTHER_SERVICE_SUBJECT = "soracom-funk"
MODES = ("valid", "expired", "not-yet-valid", "wrong-signature", "wrong-audience", "other-service")
KEY_PATH = "/soracom-public-keys"
REDIRECT_DELIVERIES = ("query", "post")
TOKEN_FIELD = "soracom_endorse_token"


@dataclass
class Sim:
    """A SIM the emulator issues tokens for."""

    imsi: str
    imei: str | None = None
    msisdn: str | None = None
    sim_id: str | None = None


def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _compact_json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def _sign(header: dict[str, Any], payload: dict[str, Any], key: Any) -> str:
    """A JWS in compact form, signed RS256 by PyJWT's algorithm; claims are not checked, so tests
    can mint tokens with any garbage in any field."""
    from jwt.algorithms import RSAAlgorithm

    signing_input = f"{_b64(_compact_json(header))}.{_b64(_compact_json(payload))}"
    signature = RSAAlgorithm(RSAAlgorithm.SHA256).sign(signing_input.encode(), key)
    return f"{signing_input}.{_b64(signature)}"


def _rsa_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class EndorseEmulator(EmulatorServer):
    """SORACOM Endorse: issues RS256 tokens for configured SIMs and serves its public key."""

    name = "endorse"

    def __init__(self, ca: LocalCA | None = None, *, sims: list[Sim] | None = None,
                 default_imsi: str | None = None, lifetime: int = 3600,
                 authorized_redirects: tuple[str, ...] = (), redirect_delivery: str = "query") -> None:
        super().__init__(ca)
        self.sims: dict[str, Sim] = {s.imsi: s for s in (sims or [Sim("440101234567890", "353456789012345", "819012345678")])}
        self.default_imsi = default_imsi or next(iter(self.sims))
        self.lifetime = lifetime
        self.authorized_redirects = authorized_redirects
        if redirect_delivery not in REDIRECT_DELIVERIES:
            raise ValueError(f"redirect_delivery is one of {', '.join(REDIRECT_DELIVERIES)}")
        self.redirect_delivery = redirect_delivery
        self.mode = "valid"
        self.key_form = "certificate"
        self.kid = f"v1-{secrets.token_hex(16)}-x509.pem"
        self._key = _rsa_key()
        self._rogue_key: Any = None
        self._certificate_pem: bytes | None = None
        self._lock_key = threading.Lock()
        self.issued: list[str] = []  # jti of every token handed out
        self.route("GET", r"/", self._token, "token")
        self.route("POST", r"/", self._token, "token")
        self.route("GET", KEY_PATH + r"/(?P<kid>[^/]+)", self._public_key, "public-key")

    # -- set-up ------------------------------------------------------------------
    def add_sim(self, imsi: str, imei: str | None = None, msisdn: str | None = None) -> Sim:
        sim = Sim(imsi, imei, msisdn)
        self.sims[imsi] = sim
        return sim

    @property
    def key_store_url(self) -> str:
        """The URL of the key bucket (what ``key_store_url`` must be set to)."""
        return self.url + KEY_PATH

    def rotate_key(self) -> None:
        """A new key pair under a new kid (old tokens no longer verify against the new kid)."""
        with self._lock_key:
            self._key = _rsa_key()
            self._certificate_pem = None
            self.kid = f"v1-{secrets.token_hex(16)}-x509.pem"

    def public_key_pem(self, form: str | None = None) -> bytes:
        """The signing key as PEM: ``"certificate"`` or ``"public-key"``."""
        from cryptography.hazmat.primitives import serialization

        if (form or self.key_form) == "public-key":
            return self._key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        with self._lock_key:
            if self._certificate_pem is None:
                self._certificate_pem = self._self_signed()
            return self._certificate_pem

    def _self_signed(self) -> bytes:
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.x509.oid import NameOID

        now = datetime.datetime.now(datetime.UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "soracom-endorse emulator")])
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .sign(self._key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM)

    # -- tokens ------------------------------------------------------------------
    def mint(self, imsi: str | None = None, *, mode: str | None = None, request_parameters: dict[str, Any] | None = None,
             claims: dict[str, Any] | None = None, header: dict[str, Any] | None = None,
             now: float | None = None) -> str:
        """A token as the service would issue it for SIM ``imsi``, bent by ``mode``.

        ``request_parameters`` (None or empty: the claim has no ``requestParameters``);
        ``claims`` overrides or adds top-level claims (a value of None removes one);
        ``header`` overrides header fields. As in SORACOM's sample token, the header names
        ``kid`` before ``alg`` and the ``jti`` is 22 URL-safe characters.
        """
        mode = mode or self.mode
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
        sim = self.sims[imsi or self.default_imsi]
        iat = int(now if now is not None else self.clock())
        if mode == "expired":
            iat -= self.lifetime + 600
        elif mode == "not-yet-valid":
            iat += 3600
        endorse_claim: dict[str, Any] = {"imsi": sim.imsi}
        if sim.imei:
            endorse_claim["imei"] = sim.imei
        if sim.msisdn:
            endorse_claim["msisdn"] = sim.msisdn
        if sim.sim_id:
            endorse_claim["simId"] = sim.sim_id
        if request_parameters:
            endorse_claim["requestParameters"] = dict(request_parameters)
        payload: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": SUBJECT,
            "iat": iat,
            "nbf": iat - 60,
            "exp": iat + self.lifetime,
            "jti": secrets.token_urlsafe(16),
            "soracom-endorse-claim": endorse_claim,
        }
        if mode == "wrong-audience":
            payload["aud"] = "some-other-audience"
        elif mode == "other-service":
            payload["aud"], payload["sub"] = OTHER_SERVICE_AUDIENCE, OTHER_SERVICE_SUBJECT
        for key, value in (claims or {}).items():
            if value is None:
                payload.pop(key, None)
            else:
                payload[key] = value
        headers = {"kid": self.kid, "alg": "RS256", **(header or {})}
        key = self._key
        if mode == "wrong-signature":
            with self._lock_key:
                if self._rogue_key is None:
                    self._rogue_key = _rsa_key()
            key = self._rogue_key
        token = _sign(headers, payload, key)
        if "jti" in payload:
            self.issued.append(payload["jti"])
        return token

    def _sim_for(self, request: Request) -> Sim | None:
        imsi = request.header("x-emulator-imsi") or self.default_imsi
        return self.sims.get(imsi)

    @staticmethod
    def _body_parameters(request: Request) -> dict[str, Any] | Response:
        """The POST body's members: a JSON object, or a form; a 400 answer for anything else."""
        kind = (request.header("content-type") or "").split(";")[0].strip().lower()
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            return json_response(400, {"code": "END0002", "message": "Request body must be UTF-8 text."})
        if kind == "application/json" or text.lstrip().startswith(("{", "[")):
            try:
                body = json.loads(text)
            except ValueError:
                return json_response(400, {"code": "END0002", "message": "Request body must be JSON."})
            if not isinstance(body, dict):
                return json_response(400, {"code": "END0002", "message": "Request body must be a JSON object."})
            return {str(k): v for k, v in body.items()}
        if kind in ("application/x-www-form-urlencoded", ""):
            return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
        return json_response(400, {"code": "END0002", "message": "Request body must be JSON or a form."})

    def _token(self, request: Request) -> Response:
        sim = self._sim_for(request)
        if sim is None:
            return json_response(403, {"code": "END0001", "message": "Request does not come from a SORACOM Air SIM."})
        params: dict[str, Any] = {k: v[0] for k, v in request.query.items() if k != "redirect_url"}
        if request.method == "POST" and request.body:
            body = self._body_parameters(request)
            if isinstance(body, Response):
                return body
            params.update(body)
        redirect = request.arg("redirect_url")
        if redirect is not None and not any(redirect.startswith(prefix) for prefix in self.authorized_redirects):
            return json_response(400, {"code": "END0003", "message": "redirect_url is not authorized."})
        token = self.mint(sim.imsi, request_parameters=params, now=time.time() if self.clock is time.time else None)
        if redirect is None:
            return json_response(200, {"token": token})
        if self.redirect_delivery == "post":
            return Response(200, self._auto_post(redirect, token), {"Content-Type": "text/html; charset=utf-8",
                                                                     "Cache-Control": "no-store"})
        joiner = "&" if "?" in redirect else "?"
        return Response(302, b"", {"Location": f"{redirect}{joiner}{urlencode({TOKEN_FIELD: token})}"})

    @staticmethod
    def _auto_post(url: str, token: str) -> bytes:
        """A page whose form posts the token to ``url`` as soon as it loads (a button without script)."""
        return (
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>SORACOM Endorse</title></head>"
            "<body onload=\"document.forms[0].submit()\">"
            f"<form method=\"post\" action=\"{html.escape(url)}\">"
            f"<input type=\"hidden\" name=\"{TOKEN_FIELD}\" value=\"{html.escape(token)}\">"
            "<noscript><button type=\"submit\">Continue</button></noscript></form></body></html>"
        ).encode()

    def _public_key(self, request: Request) -> Response:
        assert request.match is not None
        if request.match.group("kid") != self.kid:
            # S3 answers 403 AccessDenied for a missing key in a bucket that is not listable
            return Response(403, b"<Error><Code>AccessDenied</Code></Error>", {"Content-Type": "application/xml"})
        return Response(200, self.public_key_pem(), {"Content-Type": "application/x-pem-file"})
