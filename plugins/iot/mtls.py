"""Mutual TLS to AWS IoT: the device key checks, the client context, one GET, error lines.

The client side of the credentials provider call modelled on the AWS developer
guide ("Authorizing direct calls to AWS services", the curl example with
``--cert --key --cacert`` and ``x-amzn-iot-thingname``) and on the AWS Labs
session helper's notes on the provider's answers
(awslabs/aws-iot-core-credential-provider-session-helper, docs/dev_notes).
Everything here is stdlib (``ssl`` + ``http.client``): the private key is loaded by
OpenSSL straight from its file, with the passphrase for an encrypted key handed
to ``SSLContext.load_cert_chain`` in memory, so no clear copy of a key is ever
written anywhere.
"""

from __future__ import annotations

import os
import shlex
import stat
from dataclasses import dataclass
from typing import Any

from gw.plugin import StepError

#: TLS alerts with which a server refuses the client certificate during the handshake.
_REFUSED_ALERTS = (
    "UNKNOWN_CA",
    "BAD_CERTIFICATE",
    "CERTIFICATE_UNKNOWN",
    "CERTIFICATE_REVOKED",
    "CERTIFICATE_EXPIRED",
    "UNSUPPORTED_CERTIFICATE",
    "ACCESS_DENIED",
    "HANDSHAKE_FAILURE",
    "DECRYPT_ERROR",
)


@dataclass(frozen=True)
class Endpoint:
    """``host`` and ``port`` of an endpoint given as host, host:port or https://host[:port]."""

    host: str
    port: int = 443

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        from urllib.parse import urlsplit

        value = text.strip()
        if "://" not in value:
            value = "https://" + value
        try:
            parts = urlsplit(value)
            port = parts.port or 443
        except ValueError:
            raise StepError(f"endpoint {text!r} is not a host name, host:port or https:// URL") from None
        if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/"):
            raise StepError(f"endpoint {text!r} is not a host name, host:port or https:// URL")
        return cls(parts.hostname, port)

    def __str__(self) -> str:
        return self.host if self.port == 443 else f"{self.host}:{self.port}"


def check_key_file(path: str) -> None:
    """Refuse a private key that group or others can read, naming the chmod that fixes it."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise StepError(f"private key {path} does not exist") from None
    except OSError as exc:
        raise StepError(f"cannot read private key {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise StepError(f"private key {path} is not a regular file")
    if info.st_mode & 0o077:
        who = "others" if info.st_mode & 0o007 else "its group"
        raise StepError(
            f"private key {path} is readable by {who} (mode {stat.S_IMODE(info.st_mode):04o}): "
            f"run chmod 600 {shlex.quote(path)}"
        )


def key_is_encrypted(path: str) -> bool:
    """True for a PEM key protected by a passphrase (PKCS#8 or traditional OpenSSL form)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError as exc:
        raise StepError(f"cannot read private key {path}: {exc.strerror}") from None
    return b"ENCRYPTED PRIVATE KEY" in head or b"Proc-Type: 4,ENCRYPTED" in head


def _readable(path: str, what: str) -> None:
    if not os.path.isfile(path):
        raise StepError(f"{what} {path} does not exist")
    if not os.access(path, os.R_OK):
        raise StepError(f"cannot read {what} {path}")


def client_context(certificate: str, private_key: str, *, cafile: str | None,
                   passphrase: str | None = None, key_option: str = "key_passphrase") -> Any:
    """An ``ssl.SSLContext`` presenting ``certificate`` (a PEM file: the device certificate,
    optionally followed by its CA chain) with ``private_key``, trusting ``cafile`` (or the
    system store plus certifi when None)."""
    import ssl

    _readable(certificate, "certificate")
    check_key_file(private_key)
    if key_is_encrypted(private_key) and not passphrase:
        raise StepError(f"private key {private_key} is encrypted: set {key_option} to a secret reference "
                        f"(e.g. \"vault:iot-key-passphrase\")")
    if cafile is not None:
        _readable(cafile, "CA bundle")
    try:
        context = ssl.create_default_context(cafile=cafile)
        if cafile is None:
            try:
                import certifi

                context.load_verify_locations(certifi.where())
            except ImportError:
                pass
    except (ssl.SSLError, ValueError):
        raise StepError(f"CA bundle {cafile} holds no readable PEM certificate") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        # A str password is used only if the key is encrypted; never written anywhere.
        context.load_cert_chain(certificate, private_key, password=passphrase or None)
    except ssl.SSLError as exc:
        reason = (exc.reason or "").upper()
        if "KEY_VALUES_MISMATCH" in reason:
            raise StepError(f"private key {private_key} does not belong to certificate {certificate}") from None
        if passphrase and key_is_encrypted(private_key):
            raise StepError(f"cannot decrypt private key {private_key}: check {key_option}") from None
        raise StepError(f"cannot load certificate {certificate} with private key {private_key}: "
                        "both must be PEM files") from None
    return context


class CertificateRefused(StepError):
    """The endpoint refused the device certificate (TLS alert, or closed after the handshake)."""


@dataclass
class Answer:
    status: int
    body: bytes


def get(context: Any, endpoint: Endpoint, path: str, headers: dict[str, str], *, timeout: float,
        what: str) -> Answer:
    """``GET path`` over mutual TLS; SNI is the endpoint's host name. Every failure to get an
    HTTP answer becomes one :class:`StepError` line saying what to check. http.client never
    follows a redirect; a 3xx is :class:`gw.plugin.RedirectRefused` (the answer carries
    credentials, so where it comes from decides trust)."""
    import http.client

    from gw.plugin import refuse_redirect

    conn = http.client.HTTPSConnection(endpoint.host, endpoint.port, context=context, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Accept": "application/json", **headers})
        response = conn.getresponse()
        answer = Answer(response.status, response.read(65536))
        location = response.getheader("Location")
    except Exception as exc:  # noqa: BLE001 - every failure to get an answer becomes one line
        error = CertificateRefused if refused_in_handshake(exc) else StepError
        raise error(describe_failure(exc, endpoint, what, timeout)) from None
    finally:
        conn.close()
    refuse_redirect(what, f"https://{endpoint}{path}", answer.status, location)
    return answer


def describe_failure(exc: BaseException, endpoint: Endpoint, what: str, timeout: float) -> str:
    """One line for a connection or TLS failure: what happened and what to check."""
    import http.client
    import socket
    import ssl

    where = f"{what} ({endpoint})"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"cannot verify the server certificate of {where}: check ca "
                "(Amazon Root CA 1 for AWS endpoints) or settings.ca_bundle")
    if isinstance(exc, ssl.SSLError):
        reason = (exc.reason or str(exc)).upper()
        if "CERTIFICATE_REVOKED" in reason:
            return (f"{where} says the device certificate is revoked (TLS alert certificate_revoked): "
                    "a revoked certificate is never accepted again - use a new certificate")
        if "CERTIFICATE_REQUIRED" in reason:
            return f"{where} asked for a client certificate and got none: check certificate and private_key"
        if any(alert in reason for alert in _REFUSED_ALERTS):
            return (f"{where} refused the device certificate in the TLS handshake ({exc.reason or 'alert'}): "
                    "check that the certificate is registered in this account and region and ACTIVE "
                    "(not revoked), and that a CA certificate it needs is registered")
        if "EOF" in reason or "UNEXPECTED_EOF" in reason:
            return _closed(where)
        return f"TLS failure with {where} ({exc.reason or type(exc).__name__}): check endpoint, ca and the certificate"
    if isinstance(exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                        http.client.IncompleteRead)):
        return _closed(where)
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return f"{where} did not answer within {timeout:g} s"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {endpoint.host}: check endpoint"
    if isinstance(exc, OSError):
        return f"cannot reach {where}: {exc.strerror or type(exc).__name__}"
    return f"request to {where} failed: {type(exc).__name__}"


def _closed(where: str) -> str:
    return (f"{where} closed the connection right after the TLS handshake: the certificate is not accepted "
            "there (pending activation after just-in-time registration, inactive, revoked or unknown) - "
            "check it with aws iot describe-certificate")


def revoked_in_handshake(exc: BaseException) -> bool:
    """True when the server refused the client certificate with the TLS ``certificate_revoked``
    alert (RFC 5246 7.2.2): the certificate will never be accepted again, retrying is pointless."""
    import ssl

    return (isinstance(exc, ssl.SSLError) and not isinstance(exc, ssl.SSLCertVerificationError)
            and "CERTIFICATE_REVOKED" in (exc.reason or str(exc)).upper())


def refused_in_handshake(exc: BaseException) -> bool:
    """True when the server refused the client certificate (alert or close after the handshake)."""
    import http.client
    import ssl

    if isinstance(exc, ssl.SSLCertVerificationError):
        return False
    if isinstance(exc, ssl.SSLError):
        reason = (exc.reason or str(exc)).upper()
        return "EOF" in reason or any(alert in reason for alert in _REFUSED_ALERTS)
    return isinstance(exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError))
