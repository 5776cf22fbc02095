"""The AWS IoT credentials provider: mutual TLS, certificate registry, JITR, role aliases.

:class:`IotCredentialsEmulator` is a real TLS server on 127.0.0.1 that requires a
client certificate and serves ``GET /role-aliases/<alias>/credentials`` with the
answer and error shapes of protocols.md section 8:

- The TLS handshake trusts exactly the ACTIVE certificates the emulator knows
  (OpenSSL partial-chain trust of each certificate) plus the CA certificates
  registered with auto-registration or trusted as issuers. A certificate that is
  unknown, revoked (and not under such a CA) or signed by another CA fails the
  handshake with a real TLS alert; a connection without a certificate too.
- JITR (just-in-time registration): a certificate signed by a CA registered with
  ``auto_registration`` that the emulator has never seen is registered as
  PENDING_ACTIVATION on its first connection, and that connection is closed right
  after the handshake, as AWS IoT does. The "back-end Lambda" of the AWS recipe
  activates it ``activation_delay`` seconds later on the emulator's ``clock``
  (``None`` = never). A revoked or inactive certificate under such a CA is closed
  the same way.
- ``revocation_alerts=True``: a REVOKED certificate made by :meth:`create_certificate` fails the
  handshake with the TLS ``certificate_revoked`` alert (OpenSSL's CRL check against a CRL of
  the device CA), the answer a client can act on at once (``gw iot register`` stops retrying).
  In that mode only certificates of the device CA are served.
- ``trust_issuer`` models a service that creates certificates in the account and
  registers them ACTIVE as it makes them (SORACOM Krypton's aws-iot-bootstrap):
  a certificate signed by that issuer is ACTIVE on first sight.
- The server checks SNI: AWS IoT requires the endpoint host name in the TLS
  ``host_name`` (developer guide, "Authorizing direct calls to AWS services");
  without it the answer is 403 ``Certificate is invalid on this endpoint``.
- The checks in AWS's order: 403 ``Invalid thing name passed`` when
  ``x-amzn-iot-thingname`` names a thing not attached to the certificate; 403
  ``Access Denied`` when the certificate's policy does not allow the alias (known or
  not); 404 ``Role alias does not exist``; 400 when the alias's
  credentialDurationSeconds exceeds the role's MaxSessionDuration, or the role cannot be
  assumed. Every error carries ``x-amzn-ErrorType``. The alias path segment is
  percent-decoded (AWS's documented curl call sends it raw).
- ``alpn_required=True`` stands for AWS IoT's port 443, where X.509 over HTTPS needs
  ALPN ``x-amzn-http-ca``: the ClientHello is peeked, and without that ALPN no client
  certificate is asked for and every request gets 403 ``Forbidden``.
- Credentials are minted by STS AssumeRole on a moto server (``aws_endpoint``), so
  moto accepts them (``aws sts get-caller-identity``); without moto they are random.

Route names for :meth:`inject` and :attr:`calls`: ``credentials``; the emulator also
counts ``tls-handshake-failed``, ``refused-pending``, ``refused-revoked``,
``jitr-registered``.
"""

from __future__ import annotations

import hashlib
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from .httpserver import EmulatorServer, Request, Response, json_response
from .tls import IssuedCert, LocalCA

ACTIVE = "ACTIVE"
INACTIVE = "INACTIVE"
REVOKED = "REVOKED"
PENDING_ACTIVATION = "PENDING_ACTIVATION"

MSG_THING = "Invalid thing name passed"
MSG_DENIED = "Access Denied"
MSG_ENDPOINT = "Certificate is invalid on this endpoint"
MSG_NO_ALIAS = "Role alias does not exist"
MSG_DURATION = "The requested CredentialDurationSeconds exceeds the MaxSessionDuration set for the role"
MSG_ASSUME = "Unable to assume the role, or the role to assume does not exist"
MSG_NOT_AUTHENTICATED = "Forbidden"


@dataclass
class Certificate:
    """One registered device certificate."""

    cert_id: str  # hex SHA-256 of the DER, as AWS IoT's certificateId
    pem: str
    status: str = ACTIVE
    things: set[str] = field(default_factory=set)
    denied_aliases: set[str] = field(default_factory=set)
    pending_since: float | None = None
    activation_delay: float | None = None


@dataclass
class RegisteredCa:
    """A CA certificate registered in the account."""

    pem: str
    auto_registration: bool = True
    activation_delay: float | None = None
    active_on_sight: bool = False  # an issuer that registers its certificates ACTIVE


@dataclass
class RoleAlias:
    role_arn: str
    duration: int = 3600
    max_session: int = 3600
    assumable: bool = True  # False: the role is gone or does not trust credentials.iot.amazonaws.com


def _pem(value: str | bytes | Path | IssuedCert) -> str:
    """PEM text of a certificate given as PEM text, a path or an :class:`IssuedCert`."""
    if isinstance(value, IssuedCert):
        return value.cert_path.read_text()
    if isinstance(value, Path):
        return value.read_text()
    if isinstance(value, bytes):
        return value.decode()
    if "-----BEGIN" not in value:
        return Path(value).read_text()
    return value


def certificate_id(pem_or_der: str | bytes) -> str:
    """AWS IoT's certificateId: the hex SHA-256 of the certificate's DER."""
    der = ssl.PEM_cert_to_DER_cert(pem_or_der) if isinstance(pem_or_der, str) else pem_or_der
    return hashlib.sha256(der).hexdigest()


def _linger(tls: ssl.SSLSocket, seconds: float = 1.0) -> None:
    """Read what the client already sent before closing, as servers do (a lingering close):
    closing with unread data makes the kernel send a reset, which could overtake the TLS
    alert and leave the client with "connection reset" instead of the alert's reason."""
    deadline = time.monotonic() + seconds
    try:
        while (left := deadline - time.monotonic()) > 0:
            socket.socket.settimeout(tls, left)
            if not socket.socket.recv(tls, 65536):
                break
    except OSError:
        pass
    finally:
        tls.close()


ALPN_HTTP = "x-amzn-http-ca"  # AWS IoT's ALPN for X.509-authenticated HTTPS on port 443


def _client_hello_alpn(data: bytes) -> list[str]:
    """The ALPN protocol names (RFC 7301) in a TLS ClientHello record (RFC 8446 4.1.2), or []
    when there are none or the bytes are not a ClientHello."""
    try:
        if data[0] != 22 or data[5] != 1:  # a handshake record holding a ClientHello
            return []
        pos = 5 + 4 + 2 + 32  # record header, handshake header, legacy_version, random
        pos += 1 + data[pos]  # legacy_session_id
        pos += 2 + int.from_bytes(data[pos:pos + 2], "big")  # cipher_suites
        pos += 1 + data[pos]  # legacy_compression_methods
        end = pos + 2 + int.from_bytes(data[pos:pos + 2], "big")
        pos += 2
        while pos + 4 <= end:
            kind, size = int.from_bytes(data[pos:pos + 2], "big"), int.from_bytes(data[pos + 2:pos + 4], "big")
            pos += 4
            if kind == 16:  # application_layer_protocol_negotiation
                names, at, stop = [], pos + 2, pos + 2 + int.from_bytes(data[pos:pos + 2], "big")
                while at < stop:
                    names.append(data[at + 1:at + 1 + data[at]].decode("ascii", "replace"))
                    at += 1 + data[at]
                return names
            pos += size
    except IndexError:
        pass
    return []


def _peek_client_hello(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """The first TLS record the client sent, peeked (the handshake still reads it)."""
    previous = sock.gettimeout()
    deadline = time.monotonic() + timeout
    data = b""
    try:
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            data = sock.recv(5 + 16384, socket.MSG_PEEK)
            if not data or (len(data) >= 5 and len(data) >= 5 + int.from_bytes(data[3:5], "big")):
                break
            time.sleep(0.005)  # a record split over segments: wait for the rest
    except OSError:
        pass
    finally:
        sock.settimeout(previous)
    return data


class _PerConnectionTLS:
    """Stands in for the base server's SSLContext: a fresh context per connection.

    The trust store changes as certificates are registered, activated and
    revoked, and OpenSSL cannot drop a trusted certificate from a live context.
    With ``alpn_required`` (the emulator stands for port 443), the ClientHello is peeked
    first: without ALPN ``x-amzn-http-ca`` the server asks for no client certificate, as
    AWS IoT's port 443 serves other protocols then, and every request gets 403.
    """

    def __init__(self, emulator: IotCredentialsEmulator) -> None:
        self.emulator = emulator

    def wrap_socket(self, sock: Any, server_side: bool = True) -> ssl.SSLSocket:
        holder: dict[str, str | None] = {"sni": None}
        offered = _client_hello_alpn(_peek_client_hello(sock))
        self.emulator.record_alpn(offered)
        authenticated = not self.emulator.alpn_required or ALPN_HTTP in offered
        self.emulator._connection.authenticated = authenticated
        context = self.emulator.server_context(holder, client_certificate=authenticated)
        tls = context.wrap_socket(sock, server_side=server_side, do_handshake_on_connect=False)
        try:
            tls.do_handshake()
        except (ssl.SSLError, OSError):
            _linger(tls)
            raise
        self.emulator._connection.sni = holder["sni"]
        if not authenticated:
            return tls  # no client certificate was asked for: answered 403 whatever is asked
        der = tls.getpeercert(binary_form=True)
        if der is None or not self.emulator.admit(der):
            # Closed without an answer, as AWS IoT does: end our side, then drain the request.
            try:
                socket.socket.shutdown(tls, socket.SHUT_WR)
            except OSError:
                pass
            _linger(tls)
            raise ssl.SSLError("client certificate not admitted after the handshake")
        return tls


class IotCredentialsEmulator(EmulatorServer):
    """The AWS IoT credentials provider endpoint; see the module docstring."""

    name = "iot-credentials"

    def __init__(
        self,
        ca: LocalCA,
        directory: Path | str,
        *,
        aws_endpoint: str | None = None,
        region: str = "us-east-1",
        host_name: str = "localhost",
        clock: Callable[[], float] | None = None,
        revocation_alerts: bool = False,
        alpn_required: bool = False,
    ) -> None:
        super().__init__(ca, clock=clock)
        #: stand for AWS IoT's port 443: X.509 over HTTPS only with ALPN ``x-amzn-http-ca``
        #: (protocols.md section 8); False stands for port 8443, where none is needed
        self.alpn_required = alpn_required
        #: the ALPN names each connection offered, in order ([] for none)
        self.alpn_offered: list[list[str]] = []
        #: when True, a REVOKED certificate made by :meth:`create_certificate` fails the
        #: handshake with the TLS ``certificate_revoked`` alert (OpenSSL's CRL check against a
        #: CRL of the device CA) instead of the ``unknown_ca`` alert of an unknown certificate.
        #: Certificates of other issuers are then not served (no CRL for them).
        self.revocation_alerts = revocation_alerts
        self.aws_endpoint = aws_endpoint
        self.region = region
        self.host_name = host_name
        #: the CA that signs certificates made by :meth:`create_certificate` (AWS's own CA);
        #: it is NOT trusted as such: only each certificate it made, while ACTIVE.
        self.device_ca = LocalCA(Path(directory) / "iot-device-ca", "AWS IoT emulator device CA")
        # OpenSSL wants a non-empty trust store; this CA never signs a client certificate.
        self._no_client_ca = LocalCA(Path(directory) / "no-client-ca", "AWS IoT emulator: trusts nobody")
        self.certificates: dict[str, Certificate] = {}
        self.cas: dict[str, RegisteredCa] = {}
        self.role_aliases: dict[str, RoleAlias] = {}
        #: the path of every credentials request, as sent (not decoded)
        self.request_paths: list[str] = []
        self._registry = threading.RLock()
        self._connection = threading.local()
        self._sts: Any = None
        self._server_cert: IssuedCert | None = None
        self.route("GET", r"/role-aliases/(?P<alias>[^/]+)/credentials", self._credentials, "credentials")

    # -- account set-up (what the AWS IoT control plane would do) -------------
    def create_certificate(self, name: str, *, thing_name: str | None = None, status: str = ACTIVE) -> IssuedCert:
        """CreateKeysAndCertificate: a new key pair and certificate, registered with ``status``."""
        issued = self.device_ca.issue(name, server=False, common_name="AWS IoT Certificate")
        self.register_certificate(issued, status=status, thing_name=thing_name)
        return issued

    def unregistered_certificate(self, name: str) -> IssuedCert:
        """A certificate signed by the device CA that the account never registered (deleted)."""
        return self.device_ca.issue(name, server=False, common_name="AWS IoT Certificate")

    def register_certificate(self, cert: str | Path | IssuedCert, *, status: str = ACTIVE,
                             thing_name: str | None = None) -> str:
        """RegisterCertificate(WithoutCA): add a certificate; returns its certificateId."""
        pem = _pem(cert)
        cert_id = certificate_id(pem)
        with self._registry:
            record = self.certificates.setdefault(cert_id, Certificate(cert_id, pem))
            record.status = status
            if thing_name:
                record.things.add(thing_name)
        return cert_id

    def register_ca(self, ca_cert: str | Path, *, auto_registration: bool = True,
                    activation_delay: float | None = 0.0) -> str:
        """RegisterCACertificate with auto-registration (JITR): unknown certificates it signed
        become PENDING_ACTIVATION on first connection and ACTIVE ``activation_delay`` clock
        seconds later (``None``: the back-end never activates them)."""
        pem = _pem(ca_cert)
        ca_id = certificate_id(pem)
        with self._registry:
            self.cas[ca_id] = RegisteredCa(pem, auto_registration, activation_delay)
        return ca_id

    def trust_issuer(self, ca_cert: str | Path) -> str:
        """Certificates signed by ``ca_cert`` are ACTIVE when first seen (a provisioning
        service such as Krypton's aws-iot-bootstrap registers each one as it creates it)."""
        pem = _pem(ca_cert)
        ca_id = certificate_id(pem)
        with self._registry:
            self.cas[ca_id] = RegisteredCa(pem, auto_registration=True, active_on_sight=True)
        return ca_id

    def set_status(self, cert: str | Path | IssuedCert, status: str) -> None:
        """UpdateCertificate: ACTIVE, INACTIVE or REVOKED."""
        cert_id = certificate_id(_pem(cert))
        with self._registry:
            self.certificates.setdefault(cert_id, Certificate(cert_id, _pem(cert))).status = status

    def revoke(self, cert: str | Path | IssuedCert) -> None:
        self.set_status(cert, REVOKED)

    def status(self, cert: str | Path | IssuedCert) -> str | None:
        """The certificate's status now (activation by the back-end applied), or None if unknown."""
        with self._registry:
            record = self.certificates.get(certificate_id(_pem(cert)))
            return self._current_status(record) if record else None

    def attach_thing(self, cert: str | Path | IssuedCert, thing_name: str) -> None:
        """AttachThingPrincipal."""
        cert_id = self.register_certificate(cert, status=self.status(cert) or ACTIVE)
        with self._registry:
            self.certificates[cert_id].things.add(thing_name)

    def deny_role_alias(self, cert: str | Path | IssuedCert, alias: str) -> None:
        """The certificate's IoT policy does not allow iot:AssumeRoleWithCertificate on ``alias``."""
        cert_id = certificate_id(_pem(cert))
        with self._registry:
            self.certificates[cert_id].denied_aliases.add(alias)

    def add_role_alias(self, alias: str, role_arn: str, *, duration: int = 3600, max_session: int = 3600,
                       assumable: bool = True) -> None:
        """CreateRoleAlias; ``max_session`` is the referenced role's MaxSessionDuration;
        ``assumable=False``: the role was deleted or does not trust credentials.iot.amazonaws.com."""
        self.role_aliases[alias] = RoleAlias(role_arn, duration, max_session, assumable)

    # -- TLS -------------------------------------------------------------------
    def start(self, port: int = 0) -> IotCredentialsEmulator:
        super().start(port)
        assert self._httpd is not None and self.ca is not None
        self._server_cert = self.ca.issue(f"{self.name}-server-{secrets.token_hex(3)}")
        self._httpd.ssl_context = _PerConnectionTLS(self)  # type: ignore[assignment]
        return self

    @property
    def endpoint(self) -> str:
        """``host:port`` as a client should name it (the host name makes the client send SNI)."""
        return f"{self.host_name}:{self.port}"

    def record_alpn(self, offered: list[str]) -> None:
        with self._lock:
            self.alpn_offered.append(offered)

    def server_context(self, holder: dict[str, str | None], *, client_certificate: bool = True) -> ssl.SSLContext:
        """A server context trusting the ACTIVE certificates and the registered CAs now
        (``client_certificate=False``: one that asks for no client certificate)."""
        assert self._server_cert is not None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self._server_cert.cert_path, self._server_cert.key_path)

        def remember_sni(sock: Any, server_name: str | None, ctx: ssl.SSLContext) -> None:
            holder["sni"] = server_name

        context.sni_callback = remember_sni
        if not client_certificate:
            return context
        context.set_alpn_protocols([ALPN_HTTP])  # selected when offered; other offers are ignored
        context.verify_mode = ssl.CERT_REQUIRED
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        with self._registry:
            if self.revocation_alerts:
                from cryptography import x509

                revoked = {x509.load_pem_x509_certificate(c.pem.encode()).serial_number
                           for c in self.certificates.values() if c.status == REVOKED}
                context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
                context.verify_flags &= ~ssl.VERIFY_X509_PARTIAL_CHAIN
                # OpenSSL reads CRLs from a file only; one file per connection (threads)
                crl_file = Path(self.device_ca.directory) / f"revoked-{secrets.token_hex(8)}.crl.pem"
                crl_file.write_text(self.device_ca.crl(revoked))
                try:
                    context.load_verify_locations(cafile=str(crl_file))
                finally:
                    crl_file.unlink()
                trusted = [Path(self.device_ca.ca_path).read_text()]
            else:
                trusted = [c.pem for c in self.certificates.values() if self._current_status(c) == ACTIVE]
                trusted += [ca.pem for ca in self.cas.values() if ca.auto_registration]
        trusted.append(Path(self._no_client_ca.ca_path).read_text())
        context.load_verify_locations(cadata="\n".join(trusted))
        return context

    def _current_status(self, record: Certificate) -> str:
        if (record.status == PENDING_ACTIVATION and record.activation_delay is not None
                and record.pending_since is not None and self.clock() >= record.pending_since + record.activation_delay):
            record.status = ACTIVE
        return record.status

    def admit(self, der: bytes) -> bool:
        """After the handshake: True when the certificate may be served, else the
        connection is closed (JITR registration happens here)."""
        from cryptography import x509

        cert_id = certificate_id(der)
        with self._registry:
            record = self.certificates.get(cert_id)
            if record is None:
                leaf = x509.load_der_x509_certificate(der)
                ca = self._issuer_of(leaf)
                if ca is None:  # cannot happen: the handshake verified a trusted chain
                    return False
                pem = ssl.DER_cert_to_PEM_cert(der)
                if ca.active_on_sight:
                    self.certificates[cert_id] = Certificate(cert_id, pem, ACTIVE)
                    return True
                self.certificates[cert_id] = Certificate(
                    cert_id, pem, PENDING_ACTIVATION, pending_since=self.clock(), activation_delay=ca.activation_delay
                )
                self.count("jitr-registered")
                self.count("refused-pending")
                return False
            status = self._current_status(record)
        if status == ACTIVE:
            return True
        self.count("refused-pending" if status == PENDING_ACTIVATION else "refused-revoked")
        return False

    def _issuer_of(self, leaf: Any) -> RegisteredCa | None:
        from cryptography import x509
        from cryptography.exceptions import InvalidSignature

        for ca in self.cas.values():
            ca_cert = x509.load_pem_x509_certificate(ca.pem.encode())
            try:
                leaf.verify_directly_issued_by(ca_cert)
            except (InvalidSignature, ValueError, TypeError):  # not this CA
                continue
            return ca
        return None

    # -- the credentials route -------------------------------------------------
    def _credentials(self, request: Request) -> Response:
        """The checks in AWS's order (protocols.md section 8): thing name, authorization, alias, role."""
        assert request.match is not None
        # The path segment is percent-decoded as any HTTP server does (RFC 3986 2.1; "+" stays
        # "+"): AWS's documented curl call sends the alias raw, an encoded alias names the same.
        alias_name = unquote(request.match.group("alias"))
        with self._lock:
            self.request_paths.append(request.path)
        if not getattr(self._connection, "authenticated", True):
            return _error(403, MSG_NOT_AUTHENTICATED, "ForbiddenException")
        if getattr(self._connection, "sni", None) != self.host_name:
            return _error(403, MSG_ENDPOINT, "AccessDeniedException")
        if request.peer_cert_der is None:
            return _error(403, MSG_ENDPOINT, "AccessDeniedException")
        with self._registry:
            record = self.certificates.get(certificate_id(request.peer_cert_der))
            if record is None or self._current_status(record) != ACTIVE:
                return _error(403, MSG_ENDPOINT, "AccessDeniedException")
            thing = request.header("x-amzn-iot-thingname")
            if thing is not None and thing not in record.things:
                return _error(403, MSG_THING, "AccessDeniedException")
            if alias_name in record.denied_aliases:
                return _error(403, MSG_DENIED, "AccessDeniedException")
            alias = self.role_aliases.get(alias_name)
            if alias is None:
                return _error(404, MSG_NO_ALIAS, "ResourceNotFoundException")
            if alias.duration > alias.max_session:
                return _error(400, MSG_DURATION, "InvalidRequestException")
            if not alias.assumable:
                return _error(400, MSG_ASSUME, "InvalidRequestException")
            cert_id = record.cert_id
        return json_response(200, {"credentials": self._mint(alias, thing or cert_id)})

    def _mint(self, alias: RoleAlias, session_name: str) -> dict[str, str]:
        if self.aws_endpoint:
            with self._registry:
                if self._sts is None:
                    import boto3

                    self._sts = boto3.client(
                        "sts", endpoint_url=self.aws_endpoint, region_name=self.region,
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                    )
                sts = self._sts
            answer = sts.assume_role(RoleArn=alias.role_arn, RoleSessionName=session_name,
                                     DurationSeconds=alias.duration)["Credentials"]
            expiration = answer["Expiration"].strftime("%Y-%m-%dT%H:%M:%SZ")
            return {
                "accessKeyId": answer["AccessKeyId"],
                "secretAccessKey": answer["SecretAccessKey"],
                "sessionToken": answer["SessionToken"],
                "expiration": expiration,
            }
        return {
            "accessKeyId": "ASIA" + secrets.token_hex(8).upper(),
            "secretAccessKey": secrets.token_urlsafe(30),
            "sessionToken": secrets.token_urlsafe(120),
            "expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock() + alias.duration)),
        }


def _error(status: int, message: str, error_type: str) -> Response:
    return json_response(status, {"message": message}, {"x-amzn-ErrorType": error_type})
