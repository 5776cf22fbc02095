"""SORACOM Krypton: credentials from a SIM (the ``krypton`` step type and ``gw krypton`` command).

Layers: :mod:`.sim` talks to the SIM (PC/SC, modem, emulated), :mod:`.protocol`
speaks Krypton over HTTPS, and this module turns an operation's answer into a
gw credential. Nothing heavy is imported at module level.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from gw.plugin import hookimpl
from gw.plugin import AWS, IOT_CERTIFICATE, JSON_DOCUMENT, OPENID_TOKEN, Credential
from gw.plugin import StepError
from gw.plugin import Command, Option, StepType

from .protocol import CELLULAR_ENDPOINT, DEFAULT_TIMEOUT, OPERATION_PATHS, KryptonSession

#: operation -> credential kind it yields.
OPERATION_KINDS: dict[str, str] = {
    "cognito-credentials": AWS,
    "cognito-openid-token": OPENID_TOKEN,
    "aws-iot-bootstrap": IOT_CERTIFICATE,
    "subscriber-metadata": JSON_DOCUMENT,
    "userdata": JSON_DOCUMENT,
}
_READER = re.compile(r"(auto|emulated|cellular|pcsc:.+|modem:.+)\Z")

OPTIONS: dict[str, Option] = {
    "operation": Option(str, required=True, choices=tuple(OPERATION_KINDS), help="Krypton operation to call"),
    "coverage": Option(str, default="g", choices=("g", "jp"), help="SORACOM coverage: g (global) or jp"),
    "endpoint": Option(str, help="API base URL (default https://g.api.soracom.io, jp: https://api.soracom.io)"),
    "reader": Option(
        str, default="auto", help="auto | pcsc:<name or index> | modem:<device> | cellular | emulated"
    ),
    "sim_file": Option(str, help="virtual SIM JSON file for reader = \"emulated\""),
    "cellular_endpoint": Option(str, default=CELLULAR_ENDPOINT, help="endpoint for reader = \"cellular\""),
    "request_parameters": Option(dict, help="requestParameters sent with the operation"),
    "timeout": Option((int, float), default=DEFAULT_TIMEOUT, help="HTTP timeout in seconds"),
}


MAX_TIMEOUT = 3600


def _produces(options: dict[str, Any]) -> str:
    return OPERATION_KINDS.get(options.get("operation") or "", JSON_DOCUMENT)


def _check(options: dict[str, Any]) -> None:
    reader = options.get("reader") or "auto"
    if not _READER.match(reader):
        raise ValueError(f"reader must be auto, emulated, cellular, pcsc:<name> or modem:<device>, not {reader!r}")
    timeout = options.get("timeout")
    if timeout is not None and not 0 < timeout <= MAX_TIMEOUT:  # NaN fails this too
        raise ValueError(f"timeout must be a number of seconds above 0 and at most {MAX_TIMEOUT}")


class StateSessionStore:
    """Krypton sessions in gw's encrypted per-plugin state (``session-<imsi>``)."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    def load(self, imsi: str) -> KryptonSession | None:
        session = KryptonSession.from_state(self.ctx.state_get(f"session-{imsi}"))
        if session is not None:
            self.ctx.add_secret(session.to_state()["ck"])
        return session

    def save(self, session: KryptonSession) -> None:
        self.ctx.state_put(f"session-{session.imsi}", session.to_state(), session.expires_at)

    def drop(self, imsi: str) -> None:
        self.ctx.state_delete(f"session-{imsi}")


def perform(ctx: Any, options: dict[str, Any]) -> tuple[Any, str | None]:
    """Call the operation in ``options``; returns (protocol.Reply, IMSI or None on cellular)."""
    from .protocol import CellularClient, KryptonClient, endpoint_for, fetch

    operation = options["operation"]
    path = OPERATION_PATHS[operation]
    params = options.get("request_parameters") or None
    timeout = float(options.get("timeout") or DEFAULT_TIMEOUT)
    reader = options.get("reader") or "auto"
    if reader == "cellular":
        cellular = CellularClient(
            options.get("cellular_endpoint") or CELLULAR_ENDPOINT,
            verify=ctx.tls_verify,
            timeout=timeout,
            status=ctx.status,
        )
        try:
            return cellular.call(path, params), None
        finally:
            cellular.close()

    from .sim import SimError, open_sim

    endpoint = endpoint_for(options.get("coverage"), options.get("endpoint"))
    try:
        sim = open_sim(reader, sim_file=options.get("sim_file"), status=ctx.status)
    except SimError as exc:
        raise StepError(f"cannot open the SIM ({reader}): {exc}") from None
    client = KryptonClient(endpoint, verify=ctx.tls_verify, timeout=timeout, status=ctx.status)
    try:
        reply, session = fetch(client, sim, path, params, StateSessionStore(ctx))
    finally:
        client.close()
        sim.close()
    return reply, session.imsi


def _field(doc: Any, key: str, what: str) -> str:
    value = doc.get(key) if isinstance(doc, dict) else None
    if not isinstance(value, str) or not value:
        raise StepError(f"Krypton {what} answer lacks {key}")
    return value


def _write_private(path: Path, text: str) -> None:
    from gw.plugin import atomic_write

    atomic_write(str(path), text.encode(), 0o600)


def _save_iot(ctx: Any, doc: dict[str, Any], name: str) -> Credential:
    from cryptography import x509

    from gw.plugin import IotCertificate, private_dir

    certificate = _field(doc, "certificate", "aws-iot-bootstrap")
    private_key = _field(doc, "privateKey", "aws-iot-bootstrap")
    ctx.add_secret(private_key)
    try:
        not_after = x509.load_pem_x509_certificate(certificate.encode()).not_valid_after_utc
    except ValueError:
        raise StepError("Krypton aws-iot-bootstrap returned a certificate that is not PEM") from None
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name) or "device"
    base = Path(ctx.state_dir) / "iot"
    directory = base / safe
    private_dir(str(directory))  # 0700 all the way; a symlinked or foreign iot/ dir is refused
    cert_path, key_path = directory / "certificate.pem", directory / "private-key.pem"
    _write_private(cert_path, certificate)
    _write_private(key_path, private_key)
    root_path = None
    if isinstance(doc.get("rootCaCertificate"), str) and doc["rootCaCertificate"]:
        root_path = directory / "root-ca.pem"
        _write_private(root_path, doc["rootCaCertificate"])
    return IotCertificate(
        certificate_path=str(cert_path),
        private_key_path=str(key_path),
        root_ca_path=str(root_path) if root_path else None,
        host=doc.get("host") if isinstance(doc.get("host"), str) else None,
        client_id=doc.get("clientId") if isinstance(doc.get("clientId"), str) else None,
        region=doc.get("region") if isinstance(doc.get("region"), str) else None,
        expiration=not_after.replace(microsecond=0),
    )


def _jwt_expiry(token: str) -> Any:
    """The ``exp`` claim of a JWT (unverified: only used to schedule a refresh)."""
    import base64

    from gw.plugin import parse_time

    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return parse_time(claims.get("exp")) if isinstance(claims, dict) else None
    except (IndexError, ValueError):
        return None


def to_credential(ctx: Any, operation: str, reply: Any, imsi: str | None) -> Credential:
    """Turn an operation's answer into its credential kind."""
    from gw.plugin import AwsCredentials, JsonDocument, OpenIdToken, parse_time, utcnow

    if operation in ("subscriber-metadata", "userdata"):
        return JsonDocument(document=reply.document() if operation == "userdata" else reply.json())
    doc = reply.json()
    if not isinstance(doc, dict):
        raise StepError(f"Krypton {operation} answer is not a JSON object")
    if operation == "cognito-credentials":
        creds = doc.get("credentials")
        if not isinstance(creds, dict):
            raise StepError("Krypton cognito-credentials answer lacks credentials")
        secret = _field(creds, "secretKey" if "secretKey" in creds else "secretAccessKey", operation)
        token = _field(creds, "sessionToken", operation)
        ctx.add_secret(secret)
        ctx.add_secret(token)
        try:
            expiration = parse_time(creds.get("expiration"))
        except ValueError:
            raise StepError("Krypton cognito-credentials answer has an unreadable expiration") from None
        return AwsCredentials(
            access_key_id=_field(creds, "accessKeyId", operation),
            secret_access_key=secret,
            session_token=token,
            expiration=expiration,
            issued_at=utcnow(),
            origin="cognito-identity",
            role_chained=False,
        )
    if operation == "cognito-openid-token":
        token = _field(doc, "token", operation)
        ctx.add_secret(token)
        return OpenIdToken(
            token=token,
            identity_id=doc.get("identityId") if isinstance(doc.get("identityId"), str) else None,
            region=doc.get("region") if isinstance(doc.get("region"), str) else None,
            expiration=_jwt_expiry(token),
            issued_at=utcnow(),
        )
    return _save_iot(ctx, doc, imsi or str(doc.get("clientId") or "device"))


def _run(ctx: Any, options: dict[str, Any], upstream: Credential | None) -> Credential:
    reply, imsi = perform(ctx, options)
    return to_credential(ctx, options["operation"], reply, imsi)


# -- gw krypton probe / call ----------------------------------------------------


def _configure(parser: Any) -> None:
    actions = parser.add_subparsers(dest="krypton_action", metavar="ACTION")
    actions.required = True
    probe = actions.add_parser("probe", help="list SIM readers and modems with the IMSI they see")
    probe.add_argument("--json", action="store_true", help="print JSON instead of a table")
    call = actions.add_parser("call", help="call a Krypton operation and print its JSON answer")
    call.add_argument("--profile", required=True, help="profile whose krypton step gives reader, endpoint ...")
    call.add_argument("--operation", required=True, choices=sorted(OPERATION_KINDS))
    call.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="a requestParameters entry (repeatable)"
    )


def _probe(args: Any, app: Any) -> int:
    from .sim import SimError, list_readers

    try:
        readers = list_readers()
    except SimError as exc:
        raise StepError(f"cannot list SIM readers: {exc}") from None
    rows = [{k: v for k, v in r.items() if "key" not in k.lower() and k.lower() not in ("k", "opc", "op")} for r in readers]
    if args.json:
        app.emit(json.dumps(rows, indent=2))
        return 0
    if not rows:
        app.emit("no SIM readers or modems found")
        return 0
    for row in rows:
        where = row.get("reader") or row.get("name") or "?"
        found = f"IMSI {row['imsi']}" if row.get("imsi") else f"no SIM ({row.get('error') or 'unknown'})"
        app.emit(f"{where}\t{row.get('kind') or ''}\t{found}")
    return 0


def _call(args: Any, app: Any) -> int:
    from gw.plugin import UsageError

    options = app.step_options(args.profile, "krypton", operation=args.operation)
    params = dict(options.get("request_parameters") or {})
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--param wants KEY=VALUE, not {item!r}")
        params[key] = value
    options["request_parameters"] = params or None
    # The krypton step's own context: the Krypton session it keeps is the profile's.
    reply, _imsi = perform(app.step_context(args.profile, step="krypton"), options)
    document = reply.document()
    app.emit(document if isinstance(document, str) else json.dumps(document, indent=2))
    return 0


def _command(args: Any, app: Any) -> int:
    if args.krypton_action == "probe":
        return _probe(args, app)
    return _call(args, app)


@hookimpl
def gw_step_types() -> list[StepType]:
    return [
        StepType(
            name="krypton",
            run=_run,
            produces=_produces,
            consumes=(),
            options=OPTIONS,
            check=_check,
            help="Credentials from SORACOM Krypton, authenticated by the SIM "
            "(cognito-credentials, cognito-openid-token, aws-iot-bootstrap, subscriber-metadata, userdata)",
        )
    ]


@hookimpl
def gw_commands() -> list[Command]:
    return [
        Command(
            name="krypton",
            help="SORACOM Krypton: probe SIM readers, call an operation",
            configure=_configure,
            run=_command,
        )
    ]

