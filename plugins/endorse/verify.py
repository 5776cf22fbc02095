"""Verifying SORACOM Endorse tokens (docs/protocols.md section 5) with PyJWT.

The rules, shared by the exchange service and the ``endorse`` step's ``verify = true``:
the token is refused before parsing when it is larger than ``max_token_bytes`` or not
in JWS compact form; the header must say ``alg = RS256`` (pinned: ``none``, HS256 and
every other algorithm are refused) and carry a ``kid`` matching
``^v1-[0-9a-f]{32}-x509\\.pem$`` before the kid goes into the key-store URL; the key
(PEM ``PUBLIC KEY`` or ``CERTIFICATE``) is fetched over HTTPS, never following a
redirect, within a global budget for kids not seen before, and cached (:class:`KeyStore`); ``iss``,
``aud``, ``sub``, ``exp``, ``nbf``, ``iat`` and ``jti`` are required and checked with a
small leeway; the ``soracom-endorse-claim`` must name an IMSI.

Every refusal is an :class:`ExchangeError` (status 400, 401, 502 or 503); nothing else escapes.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ISSUER = "https://soracom.io"
AUDIENCE = "soracom-endorse-audience"
SUBJECT = "soracom-endorse"
CLAIM = "soracom-endorse-claim"
DEFAULT_KEY_STORE = "https://s3-ap-northeast-1.amazonaws.com/soracom-public-keys"
KID_PATTERN = re.compile(r"v1-[0-9a-f]{32}-x509\.pem")
COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]+")
IMSI_PATTERN = re.compile(r"[0-9]{6,15}")
KEY_TTL = 3600.0  # seconds a fetched key is trusted before it is fetched again
MISSING_KEY_TTL = 60.0  # seconds an unknown kid is remembered as unknown
MAX_KEY_BYTES = 16384
FETCH_BUDGET = 10  # key-store fetches for kids not seen before, per FETCH_WINDOW seconds
FETCH_WINDOW = 60.0
MAX_KEYS = 64  # fetched keys kept (SORACOM signs with a handful at a time)
MAX_MISSING = 4096  # unknown kids remembered


class ExchangeError(Exception):
    """The one error type of the exchange service: an HTTP status, a code and a safe message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def bad_token(message: str, code: str = "invalid_token") -> ExchangeError:
    return ExchangeError(401, code, message)


@dataclass(frozen=True)
class EndorseClaims:
    """What a verified token says."""

    imsi: str
    jti: str
    exp: int
    iat: int
    imei: str | None = None
    msisdn: str | None = None
    sim_id: str | None = None
    request_parameters: dict[str, Any] = field(default_factory=dict)


def _load_pem_key(pem: bytes) -> Any:
    """An RSA public key from a PEM ``PUBLIC KEY`` or ``CERTIFICATE``; ValueError otherwise."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    key: Any
    if b"-----BEGIN CERTIFICATE-----" in pem:
        key = x509.load_pem_x509_certificate(pem).public_key()
    elif b"-----BEGIN PUBLIC KEY-----" in pem:
        key = load_pem_public_key(pem)
    else:
        raise ValueError("neither a PEM public key nor a certificate")
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
        raise ValueError("not an RSA key of at least 2048 bits")
    return key


class KeyStore:
    """Public keys by kid, fetched over HTTPS from ``base_url/<kid>`` and cached for ``ttl`` s.

    The kid is chosen by whoever sends a token, before any signature is checked, so the
    store is built to be sprayed with made-up kids (docs/protocols.md section 5):

    * a kid must match :data:`KID_PATTERN` before anything is fetched;
    * a kid not known yet costs one fetch from a global budget of ``fetch_budget``
      fetches per ``fetch_window`` s; beyond it such kids are refused (503) without a
      fetch, while kids already fetched (cached, or due for a refresh) never wait on it;
    * one fetch per kid at a time: concurrent requests for a cold kid wait for the first;
    * an unknown kid (403/404) is remembered for :data:`MISSING_KEY_TTL` s;
    * every map is bounded: at most ``max_keys`` keys and ``max_missing`` unknown kids
      (least recently used dropped first), and only fetches in flight hold an entry in the
      map of pending fetches - at most ``fetch_budget`` of them plus refreshes;
    * the fetch is https only and never follows a redirect: a 3xx is a 502 naming the
      host it pointed to.
    """

    def __init__(self, base_url: str, *, verify: bool | str = True, ttl: float = KEY_TTL,
                 timeout: float = 10.0, clock: Callable[[], float] = time.monotonic,
                 fetch_budget: int = FETCH_BUDGET, fetch_window: float = FETCH_WINDOW,
                 max_keys: int = MAX_KEYS, max_missing: int = MAX_MISSING) -> None:
        if not base_url.lower().startswith("https://"):
            raise ValueError("the key store URL must be an https URL")
        self.base_url = base_url.rstrip("/")
        self.verify = verify
        self.ttl = ttl
        self.timeout = timeout
        self.clock = clock
        self.fetch_budget = fetch_budget
        self.fetch_window = fetch_window
        self.max_keys = max_keys
        self.max_missing = max_missing
        self.fetches = 0
        self._keys: OrderedDict[str, tuple[Any, float]] = OrderedDict()  # kid -> (key, fetched at)
        self._missing: OrderedDict[str, float] = OrderedDict()  # kid -> when the store said "no such key"
        self._pending: dict[str, threading.Event] = {}  # kid -> set when its fetch is over
        self._spent: deque[float] = deque()  # times of the budgeted fetches inside the window
        self._guard = threading.Lock()
        self._session: Any = None

    def get(self, kid: str) -> Any:
        """The key for ``kid``, or :class:`ExchangeError` (401 unknown kid, 502 key store, 503 budget)."""
        if not KID_PATTERN.fullmatch(kid):
            raise bad_token("the token's key id is not a SORACOM key id", "invalid_kid")
        for _ in range(3):  # a waiter whose fetcher failed fetches itself, a bounded number of times
            with self._guard:
                now = self.clock()
                entry = self._keys.get(kid)
                if entry is not None and now - entry[1] <= self.ttl:
                    self._keys.move_to_end(kid)
                    return entry[0]
                missed = self._missing.get(kid)
                if missed is not None and now - missed <= MISSING_KEY_TTL:
                    raise _unknown_kid()
                pending = self._pending.get(kid)
                if pending is None:
                    if entry is None:  # a kid never seen: it costs budget (a refresh does not)
                        self._spend(now)
                    pending = self._pending[kid] = threading.Event()
                    fetcher = True
                else:
                    fetcher = False
            if not fetcher:
                pending.wait(self.timeout + 5)
                continue
            try:
                found = self._fetch(kid)
                with self._guard:
                    self._remember(kid, found, self.clock())
            finally:
                with self._guard:
                    self._pending.pop(kid, None)
                pending.set()
            if found is _MISSING:
                raise _unknown_kid()
            return found
        raise ExchangeError(502, "key_store_unreachable", "the SORACOM public key store could not be reached")

    def _spend(self, now: float) -> None:
        """Take one fetch from the budget, or refuse (called with the guard held)."""
        while self._spent and now - self._spent[0] >= self.fetch_window:
            self._spent.popleft()
        if len(self._spent) >= self.fetch_budget:
            raise ExchangeError(503, "key_fetch_budget", "too many tokens with signing keys not seen before; "
                                "try again in a minute")
        self._spent.append(now)

    def _remember(self, kid: str, found: Any, now: float) -> None:
        """Cache a fetched key or an unknown kid, least recently used dropped first (guard held)."""
        if found is _MISSING:
            self._keys.pop(kid, None)
            self._missing[kid] = now
            self._missing.move_to_end(kid)
            while len(self._missing) > self.max_missing:
                self._missing.popitem(last=False)
        else:
            self._missing.pop(kid, None)
            self._keys[kid] = (found, now)
            self._keys.move_to_end(kid)
            while len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)

    def _http(self) -> Any:
        import requests

        with self._guard:
            if self._session is None:
                self._session = requests.Session()
            return self._session

    def _fetch(self, kid: str) -> Any:
        import requests

        self.fetches += 1
        url = f"{self.base_url}/{kid}"
        try:
            response = self._http().get(url, timeout=self.timeout, verify=self.verify, stream=True,
                                        allow_redirects=False)
            pem = response.raw.read(MAX_KEY_BYTES + 1, decode_content=True) if response.status_code == 200 else b""
            response.close()
        except requests.RequestException:
            raise ExchangeError(502, "key_store_unreachable", "the SORACOM public key store could not be reached") from None
        if 300 <= response.status_code < 400:
            raise redirect_refused(response, "the SORACOM public key store", "key_store_redirect")
        if response.status_code in (403, 404):
            return _MISSING
        if response.status_code != 200:
            raise ExchangeError(502, "key_store_error", f"the SORACOM public key store answered HTTP {response.status_code}")
        if len(pem) > MAX_KEY_BYTES:
            raise ExchangeError(502, "key_store_error", "the SORACOM public key store answered an oversized key")
        try:
            return _load_pem_key(pem)
        except (ValueError, TypeError):
            raise ExchangeError(502, "key_store_error", "the SORACOM public key store answered an unusable key") from None


def _unknown_kid() -> ExchangeError:
    return bad_token("the token's signing key is unknown", "unknown_kid")


def redirect_refused(response: Any, what: str, code: str, url: str | None = None) -> ExchangeError:
    """The one error (502 ``code``) for a 3xx from ``what``, naming where it pointed: redirects are
    never followed (gw's policy, :func:`gw.plugin.refuse_redirect`). ``url``: the URL to name
    as asked (default the request's)."""
    from gw.plugin import RedirectRefused, refuse_redirect

    try:
        refuse_redirect(what, url or str(response.url), response.status_code, response.headers.get("Location"))
    except RedirectRefused as exc:
        return ExchangeError(502, code, str(exc))
    return ExchangeError(502, code, f"{what} answered HTTP {response.status_code}")


_MISSING = object()


@dataclass
class Verifier:
    """Checks a token's form, signature and claims; see the module docstring for the rules."""

    keys: KeyStore
    leeway: int = 30
    max_token_bytes: int = 4096
    clock: Callable[[], float] = time.time

    def verify(self, token: Any) -> EndorseClaims:
        """The token's claims, or :class:`ExchangeError` (400 oversized, 401 refused, 502 key store,
        503 key-fetch budget spent)."""
        if not isinstance(token, str) or not token:
            raise ExchangeError(400, "missing_token", "no Endorse token in the request")
        if len(token) > self.max_token_bytes:
            raise ExchangeError(400, "token_too_large", f"the token is larger than {self.max_token_bytes} bytes")
        if not COMPACT_JWS.fullmatch(token):
            raise bad_token("the token is not a signed JWT")
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise bad_token("the token header is unreadable") from None
        if header.get("alg") != "RS256":
            raise bad_token("the token is not signed with RS256", "invalid_alg")
        kid = header.get("kid")
        if not isinstance(kid, str) or not KID_PATTERN.fullmatch(kid):
            raise bad_token("the token's key id is not a SORACOM key id", "invalid_kid")
        key = self.keys.get(kid)
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=AUDIENCE,
                issuer=ISSUER,
                # the times are checked below against this verifier's clock (PyJWT reads the wall clock)
                options={"require": ["iss", "aud", "sub", "exp", "nbf", "iat", "jti"],
                         "verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.InvalidAudienceError:
            raise bad_token("the token is not meant for SORACOM Endorse (audience)", "wrong_audience") from None
        except jwt.InvalidIssuerError:
            raise bad_token("the token was not issued by SORACOM", "wrong_issuer") from None
        except jwt.InvalidSignatureError:
            raise bad_token("the token's signature does not verify", "bad_signature") from None
        except jwt.MissingRequiredClaimError as exc:
            raise bad_token(f"the token lacks the {exc.claim} claim") from None
        except (jwt.PyJWTError, ValueError, TypeError, OverflowError):
            raise bad_token("the token is invalid") from None
        self._check_times(payload)
        return self._claims(payload)

    def _check_times(self, payload: dict[str, Any]) -> None:
        """``iat``, ``nbf`` and ``exp`` against :attr:`clock` with :attr:`leeway`, by PyJWT's own rules
        (``exp <= now - leeway`` is expired; ``iat`` or ``nbf`` ``> now + leeway`` is not yet valid).

        So a token verifies until ``exp + leeway``: a replay store must remember its ``jti``
        that long (:mod:`.replay`), not merely until ``exp``."""
        times = [payload.get(name) for name in ("iat", "nbf", "exp")]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in times):
            raise bad_token("the token's times are not integers")
        iat, nbf, exp = times
        now = self.clock()
        if iat > now + self.leeway or nbf > now + self.leeway:  # type: ignore[operator]
            raise bad_token("the token is not valid yet", "token_not_yet_valid")
        if exp <= now - self.leeway:  # type: ignore[operator]
            raise bad_token("the token has expired", "token_expired")

    def _claims(self, payload: dict[str, Any]) -> EndorseClaims:
        if payload.get("sub") != SUBJECT:
            raise bad_token("the token is not a SORACOM Endorse token (subject)", "wrong_subject")
        exp, iat, jti = payload.get("exp"), payload.get("iat"), payload.get("jti")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (exp, iat)):
            raise bad_token("the token's times are not integers")
        if not isinstance(jti, str) or not 0 < len(jti) <= 128:
            raise bad_token("the token's jti is unusable")
        claim = payload.get(CLAIM)
        if not isinstance(claim, dict):
            raise bad_token(f"the token has no {CLAIM}")
        imsi = claim.get("imsi")
        if not isinstance(imsi, str) or not IMSI_PATTERN.fullmatch(imsi):
            raise bad_token("the token names no valid IMSI")
        params = claim.get("requestParameters")

        def text(name: str) -> str | None:
            value = claim.get(name)
            return value if isinstance(value, str) and value and len(value) <= 64 else None

        imei = text("imei")
        if imei is not None and not imei.isdigit():
            imei = None
        return EndorseClaims(
            imsi=imsi, jti=jti, exp=int(exp), iat=int(iat),  # type: ignore[arg-type]
            imei=imei, msisdn=text("msisdn"), sim_id=text("simId"),
            request_parameters=params if isinstance(params, dict) else {},
        )
