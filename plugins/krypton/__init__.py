"""SORACOM Krypton: credentials from a SIM (the ``krypton`` step type and ``gw krypton`` command).

Layers: :mod:`.sim` talks to the SIM (PC/SC, modem, or a reader another plugin
offers through the ``gw_krypton_readers`` hook of :mod:`.hookspecs`), :mod:`.protocol`
speaks Krypton over HTTPS, :mod:`.pin` handles the SIM's PIN1 (the second factor), and
this module turns an operation's answer into a gw credential. Nothing heavy is imported
at module level.
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from gw.plugin import (
    AWS,
    IOT_CERTIFICATE,
    OPENID_TOKEN,
    Command,
    Credential,
    Option,
    StepError,
    StepType,
    hookimpl,
    profile_option,
)

from . import hookspecs
from .protocol import (
    CELLULAR_ENDPOINT,
    DEFAULT_TIMEOUT,
    OPERATION_PATHS,
    KryptonSession,
    go_json,
)
from .readers import open_step_sim

JSON_DOCUMENT = "json-document"


@dataclass
class JsonDocument(Credential):
    """A JSON answer of a raw Krypton operation (subscriber metadata, bootstraps): this plugin's
    kind ``json-document``. Never cached (no expiration)."""

    KIND: ClassVar[str] = JSON_DOCUMENT

    document: Any = None
    expiration: datetime | None = None


#: operation -> credential kind it yields.
OPERATION_KINDS: dict[str, str] = {
    "cognito-credentials": AWS,
    "cognito-openid-token": OPENID_TOKEN,
    "aws-iot-bootstrap": IOT_CERTIFICATE,
    "subscriber-metadata": JSON_DOCUMENT,
    "userdata": JSON_DOCUMENT,
    "arc-bootstrap": JSON_DOCUMENT,
    "inventory-bootstrap": JSON_DOCUMENT,
    "azure-iot-register": JSON_DOCUMENT,
    "azure-iot-registration-status": JSON_DOCUMENT,
}
#: answer fields that are secrets (scrubbed from every message) per operation
SECRET_FIELDS: dict[str, tuple[str, ...]] = {
    "arc-bootstrap": ("arcClientPeerPrivateKey",),
    "inventory-bootstrap": ("applicationKey",),
    "azure-iot-registration-status": ("privateKey",),
}
_READER = re.compile(r"(auto|cellular|pcsc:.+|modem:.+|[a-z][a-z0-9_-]*)\Z")

OPTIONS: dict[str, Option] = {
    "operation": Option(str, required=True, choices=tuple(OPERATION_KINDS), help="Krypton operation to call"),
    "coverage": Option(str, default="g", choices=("g", "jp"), help="SORACOM coverage: g (global) or jp"),
    "endpoint": Option(str, help="API base URL (default https://g.api.soracom.io, jp: https://api.soracom.io)"),
    "reader": Option(
        str, default="auto", help="auto | pcsc:<name or index> | modem:<device> | cellular | emulated"
    ),
    "sim_file": Option(str, help="virtual SIM JSON file for reader = \"emulated\" (demo plugin)"),
    "pin": Option(
        str,
        help='the SIM\'s PIN1 when it is enabled: "prompt" (asked each time: two factors), or a '
        "vault:/op:// reference (one factor); never the PIN itself",
    ),
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
        raise ValueError(
            f"reader must be auto, cellular, pcsc:<name>, modem:<device> or a plugin's reader name "
            f"(emulated: the demo plugin), not {reader!r}"
        )
    timeout = options.get("timeout")
    if timeout is not None and not 0 < timeout <= MAX_TIMEOUT:  # NaN fails this too
        raise ValueError(f"timeout must be a number of seconds above 0 and at most {MAX_TIMEOUT}")
    pin = options.get("pin")
    if pin and reader == "cellular":
        raise ValueError("pin is for a SIM in a reader; reader = \"cellular\" does not use the SIM")
    params = options.get("request_parameters") or {}
    try:
        go_json(params)
    except ValueError as exc:  # a TOML date or time, nan or inf: krypton-cli's -p is JSON
        raise ValueError(f"request_parameters must hold only JSON values: {exc}") from None
    operation = options.get("operation")
    if operation == "inventory-bootstrap" and not isinstance(params.get("endpoint"), str):
        raise ValueError("inventory-bootstrap needs request_parameters.endpoint (the device's name), as krypton-cli")
    if operation == "azure-iot-registration-status" and not isinstance(params.get("operationId"), str):
        raise ValueError("azure-iot-registration-status needs request_parameters.operationId")


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


def _operation_call(options: dict[str, Any]) -> tuple[str, dict[str, Any] | None, str | None]:
    """(path, requestParameters, top-level endpoint) of the step's operation, as krypton-cli sends them."""
    from urllib.parse import quote

    operation = options["operation"]
    params = dict(options.get("request_parameters") or {}) or None
    path = OPERATION_PATHS[operation]
    endpoint = None
    if operation == "inventory-bootstrap":
        endpoint = str((params or {}).get("endpoint") or "")
        if not endpoint:
            raise StepError("inventory-bootstrap needs request_parameters.endpoint (the device's name)")
    if "{operationId}" in path:
        operation_id = str((params or {}).pop("operationId", "") or "")
        if not operation_id:
            raise StepError(f"{operation} needs request_parameters.operationId (from azure-iot-register)")
        path = path.replace("{operationId}", quote(operation_id, safe=""))
        params = params or None
    return path, params, endpoint


@dataclass
class Outcome:
    """What one Krypton call gave: the answer, the SIM's IMSI (None on cellular) and the session."""

    reply: Any
    imsi: str | None
    session: KryptonSession | None


def perform(ctx: Any, options: dict[str, Any]) -> Outcome:
    """Call the operation in ``options`` (unlocking the SIM's PIN1 first when it needs it)."""
    from .pin import read_imsi, unlock
    from .protocol import CellularClient, KryptonClient, endpoint_for, fetch

    path, params, inventory_endpoint = _operation_call(options)
    timeout = float(options.get("timeout") or DEFAULT_TIMEOUT)
    reader = options.get("reader") or "auto"
    if reader == "cellular":
        cellular = CellularClient(
            options.get("cellular_endpoint") or CELLULAR_ENDPOINT,
            verify=ctx.tls_verify,
            timeout=timeout,
            status=ctx.status,
        )
        cellular.preconnect()
        method = "GET" if options["operation"] == "azure-iot-registration-status" else "POST"
        try:
            return Outcome(cellular.call(path, params, endpoint=inventory_endpoint, method=method), None, None)
        finally:
            cellular.close()

    endpoint = endpoint_for(options.get("coverage"), options.get("endpoint"))
    client = KryptonClient(endpoint, verify=ctx.tls_verify, timeout=timeout, status=ctx.status)
    try:
        # TCP + TLS (and importing http.client and ssl) in a thread while the card answers: it
        # starts once the card is connected, so that it does not hold the interpreter while gw
        # gets to the first APDU; from there this thread mostly waits for the card
        sim = open_step_sim(ctx, options, connected=client.preconnect)
        client.preconnect()  # a reader that is not PC/SC
    except BaseException:
        client.close()
        raise
    try:
        unlock(ctx, sim, options.get("pin"))
        read_imsi(sim, options.get("pin"))
        reply, session = fetch(client, sim, path, params, StateSessionStore(ctx), endpoint=inventory_endpoint)
    finally:
        client.close()
        sim.close()
    return Outcome(reply, session.imsi, session)


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
    from gw.plugin import parse_time, unverified_jwt_claims

    claims = unverified_jwt_claims(token)
    try:
        return parse_time(claims.get("exp")) if claims is not None else None
    except ValueError:
        return None


def answer_document(ctx: Any, operation: str, outcome: Outcome) -> Any:
    """The operation's answer as the official client prints it (inventory: with its applicationKey)."""
    reply = outcome.reply
    if operation == "userdata":
        return reply.document()
    doc = reply.json()
    if operation == "inventory-bootstrap":
        doc = _inventory_answer(doc, outcome.session)
    for key in SECRET_FIELDS.get(operation, ()):
        if isinstance(doc, dict) and isinstance(doc.get(key), str):
            ctx.add_secret(doc[key])
    return doc


def _inventory_answer(doc: Any, session: KryptonSession | None) -> dict[str, Any]:
    """``applicationKey``, ``serverUri`` and ``pskId``, as ``OperationBootstrapInventoryDevice`` keeps them.

    When the server sends no applicationKey but a ``nonce`` and ``timestamp``, the key is
    derived from them and the SIM's CK (krypton-client-go krypton/operations.go).
    """
    from .protocol import inventory_application_key

    if not isinstance(doc, dict):
        raise StepError("Krypton inventory-bootstrap answer is not a JSON object")
    app_key = doc.get("applicationKey")
    if not isinstance(app_key, str):
        nonce, timestamp = doc.get("nonce"), doc.get("timestamp")
        if not isinstance(nonce, str) or not isinstance(timestamp, str):
            raise StepError("Krypton inventory-bootstrap answer has neither an applicationKey nor a nonce and timestamp")
        if session is None:
            raise StepError("inventory-bootstrap derives its applicationKey from the SIM: it needs a SIM reader, not cellular")
        app_key = inventory_application_key(nonce, timestamp, session.ck)
    result = {k: doc[k] for k in ("serverUri", "pskId") if k in doc}
    result["applicationKey"] = app_key
    return dict(sorted(result.items()))


def to_credential(ctx: Any, operation: str, outcome: Outcome) -> Credential:
    """Turn an operation's answer into its credential kind."""
    from gw.plugin import AwsCredentials, OpenIdToken, parse_time, utcnow

    reply, imsi = outcome.reply, outcome.imsi
    if OPERATION_KINDS[operation] == JSON_DOCUMENT:
        return JsonDocument(document=answer_document(ctx, operation, outcome))
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
            region=doc["region"] if isinstance(doc.get("region"), str) and doc["region"] else None,
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
    return to_credential(ctx, options["operation"], perform(ctx, options))


# -- gw krypton probe / call ----------------------------------------------------


def _configure(parser: Any) -> None:
    import argparse

    raw = argparse.RawDescriptionHelpFormatter
    actions = parser.add_subparsers(dest="krypton_action", metavar="ACTION")
    actions.required = True
    probe = actions.add_parser(
        "probe",
        help="list SIM readers and modems with the IMSI they see",
        description=textwrap.fill(
            "List the SIM readers (PC/SC through pcscd) and modems gw can reach, with the IMSI each "
            "SIM answers, or why none (no card, PIN1 enabled, no pcscd). It reads only the IMSI: "
            "no PIN is sent and no key is ever shown. Use it to choose a krypton step's reader.",
            width=88,
        ),
        epilog="examples:\n  gw krypton probe\n  gw krypton probe --json | jq -r '.[].reader'",
        formatter_class=raw,
    )
    probe.add_argument("--json", action="store_true", help="print JSON instead of a table")
    call = actions.add_parser(
        "call",
        help="call a Krypton operation and print its JSON answer",
        description=textwrap.fill(
            "Call one Krypton operation with the options of the profile's krypton step (reader, "
            "endpoint, coverage, pin ...) and print the answer as JSON, without caching it. --param "
            "entries are merged over the step's request_parameters. The step's stored Krypton session "
            "is shared, so within its hour no SIM handshake is needed. The answer may hold secrets "
            "(credentials, keys): it goes to stdout only.",
            width=88,
        ),
        epilog="examples:\n  gw krypton call --profile sim --operation subscriber-metadata\n"
               "  gw krypton call --profile sim --operation userdata\n"
               "  gw krypton call --profile sim --operation inventory-bootstrap --param endpoint=dev1\n"
               "  gw krypton call --profile sim --operation azure-iot-registration-status "
               "--param operationId=OPERATION-ID   (from azure-iot-register)",
        formatter_class=raw,
    )
    profile_option(call, "profile whose krypton step gives reader, endpoint ...")
    call.add_argument("--operation", required=True, choices=sorted(OPERATION_KINDS))
    call.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="a requestParameters entry (repeatable)"
    )
    from .pin import configure_pin_parser

    configure_pin_parser(actions)


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
        if row.get("imsi"):
            found = f"IMSI {row['imsi']}"
        elif row.get("pin_locked"):
            found = f"SIM locked ({row['error']})"
        else:
            found = f"no SIM ({row.get('error') or 'unknown'})"
        app.emit(f"{where}\t{row.get('kind') or ''}\t{found}")
    return 0


def _call(args: Any, app: Any) -> int:
    from gw.plugin import UsageError

    options = app.step_options(args.profile, "krypton")  # checked with --operation below, after --param
    options["operation"] = args.operation
    params = dict(options.get("request_parameters") or {})
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--param wants KEY=VALUE, not {item!r}")
        params[key] = value
    options["request_parameters"] = params or None
    _check(options)  # the same rules as in a profile (inventory endpoint, Azure operationId ...)
    # The krypton step's own context: the Krypton session it keeps is the profile's.
    ctx = app.step_context(args.profile, step="krypton")
    document = answer_document(ctx, args.operation, perform(ctx, options))
    app.emit(document if isinstance(document, str) else json.dumps(document, indent=2))
    return 0


def _command(args: Any, app: Any) -> int:
    if args.krypton_action == "probe":
        return _probe(args, app)
    if args.krypton_action == "pin":
        from .pin import run_pin_command

        return run_pin_command(args, app)
    try:
        return _call(args, app)
    except ValueError as exc:
        from gw.plugin import UsageError

        raise UsageError(str(exc)) from None


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
            help="Credentials from SORACOM Krypton, authenticated by the SIM (and its PIN1 when enabled): "
            + ", ".join(OPERATION_KINDS),
        )
    ]


@hookimpl
def gw_commands() -> list[Command]:
    return [
        Command(
            name="krypton",
            help="SORACOM Krypton: probe SIM readers, call an operation, manage the SIM PIN",
            configure=_configure,
            run=_command,
            description=textwrap.fill(
                "SORACOM Krypton with the SIM as the key: probe lists the readers and the IMSI each SIM "
                "answers, call runs one Krypton operation with a profile's krypton step options, pin shows "
                "or changes the SIM's PIN1 (the second factor of the SIM login). Profiles use Krypton "
                "through the krypton step; these commands are for setting it up and trying it.",
                width=88,
            ),
            epilog="examples:\n  gw krypton probe\n  gw krypton call --profile sim --operation subscriber-metadata\n"
            "  gw krypton call --profile sim --operation inventory-bootstrap --param endpoint=dev1\n"
            "  gw krypton pin status --profile sim\n  gw krypton pin change --profile sim",
        )
    ]


@hookimpl
def gw_credential_kinds() -> list[type[Credential]]:
    return [JsonDocument]


@hookimpl
def gw_add_hookspecs(pluginmanager: Any) -> None:
    """Offer ``gw_krypton_readers`` (see :mod:`.hookspecs`) to other plugins."""
    pluginmanager.add_hookspecs(hookspecs)

