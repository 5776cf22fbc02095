"""``gw iot register``: just-in-time registration (JITR) of a device certificate.

The device connects with its certificate followed by the CA certificate that
signed it (the CA is registered with auto-registration). AWS IoT registers the
certificate as PENDING_ACTIVATION and closes that first connection; a back-end
(the Lambda of the AWS JITR recipe) activates it, after which the handshake is
accepted. This command retries with bounded exponential backoff until the
certificate demonstrably authenticated, or ``--timeout`` runs out, printing one
line per attempt. A TLS ``certificate_revoked`` alert ends it at once: no back-end
will ever activate a revoked certificate.

What counts as proof (protocols.md section 8). Some HTTP answer is not: on port 443
AWS IoT takes a client certificate only with ALPN ``x-amzn-http-ca``, and without it
answers HTTP without having looked at the certificate. So gw offers that ALPN on
every port, requires the server to select it on 443 (8443 needs none), and asks the
credentials provider ``GET /role-aliases/<alias>/credentials``: only an answer that the
provider gives to an authenticated certificate counts (credentials, 403 "Invalid thing
name passed" / "Access Denied", 404 "Role alias does not exist", 400 about the role);
403 "Certificate is invalid on this endpoint" is a refusal to retry; anything else
ends the command with one line. Credentials in a 200 answer are discarded unread.

Modelled on the AWS IoT developer guide, "Register a client certificate when the
client connects to AWS IoT just-in-time registration (JITR)"
(docs.aws.amazon.com/iot/latest/developerguide/auto-register-device-cert.html): the
first connection presents the device certificate and the CA certificate, and the
device reconnects once the back-end has set the certificate ACTIVE. The endpoint's
host name is sent as SNI (required; the CA certificate is then optional). Ports and
ALPN names: the "Protocols, port mappings, and authentication" table of the same guide.
"""

from __future__ import annotations

import os
import time
from typing import Any

from gw.plugin import StepError, UsageError

MAX_INTERVAL_S = 10.0
ALPN = "x-amzn-http-ca"
#: the alias asked for when --role-alias is not given: its 403/404 proves authentication as well
PROBE_ALIAS = "gw-jitr-probe"
#: (status, message) of the credentials provider that only an authenticated certificate gets
_AUTHENTICATED = {(403, "Invalid thing name passed"), (403, "Access Denied"), (404, "Role alias does not exist")}
_NOT_ACTIVE = (403, "Certificate is invalid on this endpoint")


def configure(parser: Any) -> None:
    actions = parser.add_subparsers(dest="iot_action", metavar="ACTION")
    actions.required = True
    import argparse

    reg = actions.add_parser(
        "register",
        help="connect until AWS IoT activates a JITR certificate",
        description=(
            "Just-in-time registration (JITR): connect to the AWS IoT credentials endpoint with the device\n"
            "certificate followed by the CA certificate that signed it (a CA registered with auto-registration\n"
            "on). AWS IoT registers the certificate as PENDING_ACTIVATION and closes the first connections until\n"
            "a back-end (the recipe's Lambda) activates it; gw retries with bounded backoff, prints one line\n"
            "per attempt, and stops at once when the endpoint says the certificate is revoked. Success is said\n"
            "only when the credentials provider answers as to an authenticated certificate (on port 443 with\n"
            "ALPN x-amzn-http-ca, which gw offers)."
        ),
        epilog=(
            "examples:\n"
            "  gw iot register --certificate device.pem --key device.key --ca-certificate my-device-ca.pem \\\n"
            "      --endpoint c1a2b3example.credentials.iot.eu-west-1.amazonaws.com --role-alias device-role-alias\n"
            "  gw iot register --certificate device.pem --key device.key --ca-certificate my-device-ca.pem \\\n"
            "      --endpoint c1a2b3example.credentials.iot.eu-west-1.amazonaws.com:8443 --timeout 120 --interval 2\n"
            "  aws iot describe-endpoint --endpoint-type iot:CredentialProvider   # finds the --endpoint value"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    reg.add_argument("--certificate", required=True, help="device certificate PEM file")
    reg.add_argument("--key", required=True,
                     help="device private key PEM file (mode 0600); an encrypted key's passphrase is asked for")
    reg.add_argument("--ca-certificate", required=True,
                     help="PEM file of the CA that signed the device certificate (registered in AWS IoT)")
    reg.add_argument("--endpoint", required=True,
                     help="the iot:CredentialProvider endpoint, host[:port] (port 443 by default, with ALPN "
                          "x-amzn-http-ca; 8443 needs none)")
    reg.add_argument("--role-alias", default=PROBE_ALIAS,
                     help="role alias to ask credentials for (default: a probe name; either way the answer only "
                          "shows whether the certificate authenticated, credentials are discarded)")
    reg.add_argument("--ca", help="CA bundle to verify the endpoint (default settings.ca_bundle, the system store)")
    reg.add_argument("--timeout", type=float, default=60.0, help="give up after this many seconds (default 60)")
    reg.add_argument("--interval", type=float, default=1.0,
                     help="first wait between attempts in seconds, doubled each time up to 10 (default 1)")


def _chain_file(ctx: Any, certificate: str, ca_certificate: str) -> str:
    """The device certificate followed by its CA certificate, in a private temporary file."""
    import tempfile

    from gw.plugin import private_dir

    parts = []
    for path, what in ((certificate, "certificate"), (ca_certificate, "CA certificate")):
        try:
            with open(path, encoding="ascii") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError):
            raise StepError(f"cannot read {what} {path}") from None
        if "-----BEGIN CERTIFICATE-----" not in text:
            raise StepError(f"{what} {path} is not a PEM certificate")
        parts.append(text.strip() + "\n")
    directory = private_dir(os.path.join(str(ctx.state_dir), "iot-register"))
    fd, path = tempfile.mkstemp(prefix="chain-", suffix=".pem", dir=directory)
    with os.fdopen(fd, "w") as handle:
        handle.write("".join(parts))
    return path


def _message(body: bytes) -> str:
    import json

    try:
        doc = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return ""
    message = doc.get("message") if isinstance(doc, dict) else None
    return "".join(ch for ch in message if ch.isprintable())[:200] if isinstance(message, str) else ""


def _has_credentials(body: bytes) -> bool:
    import json

    try:
        doc = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(doc, dict) and isinstance(doc.get("credentials"), dict)


def judge(status: int, body: bytes, *, alpn: str | None, port: int) -> tuple[bool | None, str]:
    """(True: authenticated / False: not active yet, retry / None: no proof, give up, what happened)."""
    if port == 443 and alpn != ALPN:
        return None, (f"the endpoint did not take ALPN {ALPN} on port 443 (HTTP {status} without it): "
                      "the certificate was not used; check --endpoint, or use port 8443")
    message = _message(body)
    said = f"HTTP {status}" + (f" {message}" if message else "")
    if (status == 200 and _has_credentials(body)) or (status, message) in _AUTHENTICATED \
            or (status == 400 and message):
        return True, f"accepted (the credentials provider answered as to an authenticated certificate: {said})"
    if (status, message) == _NOT_ACTIVE:
        return False, f"refused ({said}): the certificate is not active yet"
    return None, (f"the endpoint answered {said}, not as the AWS IoT credentials provider answers an "
                  "authenticated certificate: check that --endpoint is the iot:CredentialProvider endpoint")


def _attempt(context: Any, endpoint: Any, alias: str, timeout: float) -> tuple[bool, str]:
    """One connection: (accepted, what happened). Raises StepError for a failure that
    retrying cannot fix (unreachable endpoint, untrusted server certificate, a certificate
    the endpoint says is revoked, an answer that proves nothing)."""
    import http.client

    from .mtls import describe_failure, refused_in_handshake, revoked_in_handshake

    conn = http.client.HTTPSConnection(endpoint.host, endpoint.port, context=context, timeout=timeout)
    try:
        conn.connect()
        alpn = conn.sock.selected_alpn_protocol() if conn.sock is not None else None
        conn.request("GET", f"/role-aliases/{alias}/credentials", headers={"Accept": "application/json"})
        response = conn.getresponse()
        status, body = response.status, response.read(65536)
    except Exception as exc:  # noqa: BLE001 - every failure is a refusal or one line
        if revoked_in_handshake(exc):  # final: no back-end will ever activate it
            raise StepError(describe_failure(exc, endpoint, "AWS IoT", timeout)) from None
        if refused_in_handshake(exc):
            reason = getattr(exc, "reason", None) or "connection closed after the TLS handshake"
            return False, f"refused ({reason}): the certificate is not active yet"
        raise StepError(describe_failure(exc, endpoint, "AWS IoT", timeout)) from None
    finally:
        conn.close()
    verdict, what = judge(status, body, alpn=alpn, port=endpoint.port)
    if verdict is None:
        raise StepError(what)
    return verdict, what


def run(args: Any, ctx: Any) -> int:
    from .mtls import Endpoint, client_context, key_is_encrypted

    if args.timeout <= 0 or args.interval <= 0:
        raise UsageError("--timeout and --interval must be positive numbers of seconds")
    from .names import ROLE_ALIAS

    if not ROLE_ALIAS.match(args.role_alias):
        raise UsageError("--role-alias must be 1-128 characters from letters, digits and _=,@-")
    endpoint = Endpoint.parse(args.endpoint)
    cafile = args.ca or (ctx.tls_verify if isinstance(ctx.tls_verify, str) else None)
    key = os.path.abspath(args.key)
    passphrase = None
    if os.path.isfile(key) and key_is_encrypted(key):
        # asked on /dev/tty (or settings.askpass) only after the key's permissions are checked
        from .mtls import check_key_file

        check_key_file(key)
        passphrase = ctx.ask(f"Passphrase of {key}", secret=True)
        ctx.add_secret(passphrase)
    chain = _chain_file(ctx, os.path.abspath(args.certificate), os.path.abspath(args.ca_certificate))
    try:
        context = client_context(chain, key, cafile=cafile, passphrase=passphrase, key_option="the passphrase")
        context.set_alpn_protocols([ALPN])  # port 443 takes a client certificate only with it
        deadline = time.monotonic() + args.timeout
        wait = args.interval
        attempt = 0
        while True:
            attempt += 1
            accepted, what = _attempt(context, endpoint, args.role_alias,
                                      min(30.0, max(1.0, deadline - time.monotonic())))
            if accepted:
                ctx.emit(f"attempt {attempt}: {what}: the certificate is registered and ACTIVE")
                return 0
            left = deadline - time.monotonic()
            if left <= 0:
                ctx.emit(f"attempt {attempt}: {what}")
                raise StepError(
                    f"AWS IoT did not accept the certificate within {args.timeout:g} s ({attempt} attempts): "
                    "check that the CA is registered with auto-registration on and that the back-end "
                    "activates new certificates (aws iot describe-certificate shows its status)"
                )
            pause = min(wait, left)
            ctx.emit(f"attempt {attempt}: {what}; next attempt in {pause:.1f} s")
            time.sleep(pause)
            wait = min(wait * 2, MAX_INTERVAL_S)
    finally:
        os.unlink(chain)
