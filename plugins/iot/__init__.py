"""AWS IoT device certificates: AWS credentials from the IoT credentials provider.

The ``iot-certificate`` step calls ``GET https://<endpoint>/role-aliases/<alias>/credentials``
over mutual TLS with a device certificate (protocols.md section 8) and yields
AWS credentials. The certificate comes from files (``certificate``,
``private_key``), from a previous step yielding ``iot-certificate`` (Krypton's
``aws-iot-bootstrap``), or from a ``bootstrap`` table: the step then runs that
Krypton operation itself once, reuses the certificate until a day before its
notAfter, and forgets it when the endpoint refuses it (the next run bootstraps anew).

``gw iot register`` performs the just-in-time-registration (JITR) dance for a
certificate signed by a CA registered with auto-registration. Nothing heavy is
imported at module level.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from gw.plugin import (
    AWS,
    IOT_CERTIFICATE,
    Command,
    Credential,
    Option,
    StepError,
    StepType,
    hookimpl,
)

from .mtls import Endpoint
from .names import ROLE_ALIAS

STEP = "iot-certificate"
#: AWS's role alias pattern ``[\w=,@-]+`` (CreateRoleAlias API reference), \w meaning ASCII
#: word characters; every one of them may stand raw in a URL path (RFC 3986 pchar)
_THING = re.compile(r"[a-zA-Z0-9:_-]{1,128}\Z")
#: a bootstrap certificate is replaced this long before its notAfter
BOOTSTRAP_MARGIN_S = 86400
#: a looked-up endpoint is remembered this long
ENDPOINT_TTL_S = 7 * 86400

OPTIONS: dict[str, Option] = {
    "role_alias": Option(str, required=True, help="AWS IoT role alias naming the IAM role to assume"),
    "endpoint": Option(str, help="iot:CredentialProvider endpoint, host[:port] "
                                 "(omit to look it up with aws_profile)"),
    "aws_profile": Option(str, help="AWS profile used to look the endpoint up with DescribeEndpoint"),
    "region": Option(str, help="AWS region (for DescribeEndpoint and the credentials; "
                               "default: from the endpoint or the certificate)"),
    "certificate": Option(str, help="device certificate PEM file (default: the previous step's)"),
    "private_key": Option(str, help="device private key PEM file, mode 0600 (default: the previous step's)"),
    "key_passphrase": Option((str, dict), secret=True, help="passphrase of an encrypted private_key"),
    "ca": Option(str, help="CA bundle for the endpoint (Amazon Root CA 1 or a custom bundle; "
                           "default: the certificate's root CA, settings.ca_bundle, the system store)"),
    "thing_name": Option(str, help="thing attached to the certificate, sent as x-amzn-iot-thingname"),
    "bootstrap": Option(dict, help="krypton step options: get the certificate with Krypton "
                                   "aws-iot-bootstrap once and reuse it until near its expiry"),
    "timeout": Option((int, float), default=30, help="HTTP timeout in seconds"),
}


def _check(options: dict[str, Any]) -> None:
    if not ROLE_ALIAS.match(options.get("role_alias") or ""):
        raise ValueError("role_alias must be 1-128 characters from letters, digits and _=,@-")
    if options.get("thing_name") is not None and not _THING.match(options["thing_name"]):
        raise ValueError("thing_name must be 1-128 characters from letters, digits and :_-")
    if bool(options.get("certificate")) != bool(options.get("private_key")):
        raise ValueError("certificate and private_key go together: set both or neither")
    if options.get("bootstrap") is not None and options.get("certificate"):
        raise ValueError("set either certificate/private_key or bootstrap, not both")
    if "operation" in (options.get("bootstrap") or {}):
        raise ValueError("bootstrap takes the krypton step's options except operation (always aws-iot-bootstrap)")
    if not options.get("endpoint") and not options.get("aws_profile"):
        raise ValueError("set endpoint (the iot:CredentialProvider endpoint) or aws_profile to look it up")
    if options.get("endpoint"):
        try:
            Endpoint.parse(options["endpoint"])
        except StepError as exc:
            raise ValueError(str(exc)) from None
    if options.get("timeout") is not None and options["timeout"] <= 0:
        raise ValueError("timeout must be a positive number of seconds")


# -- where the certificate comes from ------------------------------------------


def _expand(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


def _device_material(ctx: Any, options: dict[str, Any], upstream: Credential | None) -> Any:
    """The IotCertificate to present: from options, the bootstrap table, or upstream."""
    from gw.plugin import IotCertificate

    if options.get("certificate"):
        return IotCertificate(certificate_path=_expand(options["certificate"]),
                              private_key_path=_expand(options["private_key"]))
    if options.get("bootstrap") is not None:
        return _bootstrapped(ctx, options["bootstrap"])
    if isinstance(upstream, IotCertificate):
        return upstream
    raise StepError("iot-certificate needs certificate and private_key, a bootstrap table, "
                    "or an iot-certificate from the previous step")


def _bootstrap_state_name(bootstrap: dict[str, Any]) -> str:
    import hashlib

    digest = hashlib.sha256(json.dumps(bootstrap, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"bootstrap-{digest}"


def _bootstrapped(ctx: Any, bootstrap: dict[str, Any]) -> Any:
    """Krypton aws-iot-bootstrap, run once and reused from private state until near notAfter."""
    import time

    from gw.plugin import IotCertificate

    name = _bootstrap_state_name(bootstrap)
    saved = ctx.state_get(name)
    if saved and all(os.path.isfile(saved.get(k) or "") for k in ("certificate_path", "private_key_path")):
        return IotCertificate.from_dict(saved)
    with ctx.status("getting a device certificate with Krypton aws-iot-bootstrap"):
        issued = ctx.run_step("krypton", {"operation": "aws-iot-bootstrap", **bootstrap}, None)
    if not isinstance(issued, IotCertificate):
        raise StepError("Krypton aws-iot-bootstrap did not yield a certificate")
    not_after = issued.expiration.timestamp() if issued.expiration else time.time() + 2 * BOOTSTRAP_MARGIN_S
    keep_until = max(time.time() + 60, not_after - BOOTSTRAP_MARGIN_S)
    ctx.state_put(name, issued.to_dict(), keep_until)
    return issued


def _endpoint(ctx: Any, options: dict[str, Any], region: str | None) -> Endpoint:
    if options.get("endpoint"):
        return Endpoint.parse(options["endpoint"])
    return Endpoint.parse(discover_endpoint(ctx, options["aws_profile"], region))


def discover_endpoint(ctx: Any, aws_profile: str, region: str | None) -> str:
    """DescribeEndpoint(endpointType=iot:CredentialProvider) with ``aws_profile``; remembered a week."""
    import time

    name = f"endpoint-{re.sub(r'[^A-Za-z0-9_.-]', '_', aws_profile)}-{region or 'default'}"
    saved = ctx.state_get(name)
    if saved and isinstance(saved.get("address"), str):
        return str(saved["address"])
    import boto3
    import botocore.exceptions

    from gw.plugin import refuse_aws_redirects

    try:
        session = boto3.session.Session(profile_name=aws_profile, region_name=region)
        client = refuse_aws_redirects(session.client("iot"))
        with ctx.status(f"looking up the IoT credentials endpoint with AWS profile {aws_profile}"):
            address = client.describe_endpoint(endpointType="iot:CredentialProvider")["endpointAddress"]
    except botocore.exceptions.ProfileNotFound:
        raise StepError(f"aws_profile {aws_profile!r} is not in the AWS config") from None
    except botocore.exceptions.NoRegionError:
        raise StepError(f"no region for DescribeEndpoint: set region, or a region in AWS profile {aws_profile}") from None
    except botocore.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise StepError(f"DescribeEndpoint with AWS profile {aws_profile} failed ({code}): "
                        "it needs iot:DescribeEndpoint") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise StepError(f"DescribeEndpoint with AWS profile {aws_profile} failed: {type(exc).__name__}") from None
    if not isinstance(address, str) or not address:
        raise StepError("DescribeEndpoint returned no endpoint address")
    ctx.state_put(name, {"address": address}, time.time() + ENDPOINT_TTL_S)
    return address


def _region_of(host: str) -> str | None:
    m = re.search(r"\.iot\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?\Z", host)
    return m.group(1) if m else None


# -- the credentials provider's answer -----------------------------------------


def _server_message(body: bytes) -> str:
    try:
        doc = json.loads(body.decode("utf-8"))
        message = doc.get("message") if isinstance(doc, dict) else None
    except (ValueError, UnicodeDecodeError):
        message = None
    if not isinstance(message, str):
        return ""
    return "".join(ch for ch in message if ch.isprintable())[:200]


def explain_refusal(status: int, body: bytes, *, alias: str, thing: str | None, endpoint: Endpoint) -> str:
    """One line for an error answer of the credentials provider, saying what to check."""
    message = _server_message(body)
    lowered = message.lower()
    if status == 403 and "thing name" in lowered:
        return (f"the credentials provider refused thing name {thing!r} ({message}): check thing_name - "
                "the thing must exist and be attached to this certificate (aws iot attach-thing-principal)")
    if status == 403 and "invalid on this endpoint" in lowered:
        return (f"the certificate is invalid on endpoint {endpoint} ({message}): check that endpoint is this "
                "account's and region's iot:CredentialProvider endpoint, given by host name (it is sent as SNI), "
                "and that the certificate is registered and ACTIVE there")
    if status == 403:
        return (f"access denied for role alias {alias!r} ({message or 'HTTP 403'}): the certificate's IoT policy "
                "must allow iot:AssumeRoleWithCertificate on the role alias ARN, and the role must trust "
                "credentials.iot.amazonaws.com")
    if status == 404:
        return (f"role alias {alias!r} does not exist at {endpoint} ({message or 'HTTP 404'}): "
                "check role_alias and the endpoint's region")
    if status == 400:
        return (f"the credentials provider rejected role alias {alias!r} ({message or 'HTTP 400'}): check the "
                "alias's credentialDurationSeconds against the role's maximum session duration, and the role")
    return f"the IoT credentials provider at {endpoint} answered HTTP {status}" + (f": {message}" if message else "")


def _credentials(ctx: Any, answer: Any, region: str | None) -> Credential:
    from gw.plugin import AwsCredentials, parse_time, utcnow

    try:
        doc = json.loads(answer.body.decode("utf-8"))
        creds = doc["credentials"]
        values = {k: creds[k] for k in ("accessKeyId", "secretAccessKey", "sessionToken")}
    except (ValueError, UnicodeDecodeError, KeyError, TypeError):
        raise StepError("the IoT credentials provider's answer lacks credentials") from None
    if not all(isinstance(v, str) and v for v in values.values()):
        raise StepError("the IoT credentials provider's answer lacks credentials")
    ctx.add_secret(values["secretAccessKey"])
    ctx.add_secret(values["sessionToken"])
    try:
        expiration = parse_time(creds.get("expiration"))
    except ValueError:
        raise StepError("the IoT credentials provider's answer has an unreadable expiration") from None
    return AwsCredentials(
        access_key_id=values["accessKeyId"],
        secret_access_key=values["secretAccessKey"],
        session_token=values["sessionToken"],
        expiration=expiration,
        issued_at=utcnow(),
        origin="iot-certificate",
        role_chained=False,
        region=region,
    )


def _run(ctx: Any, options: dict[str, Any], upstream: Credential | None) -> Credential:
    from . import mtls

    device = _device_material(ctx, options, upstream)
    region = options.get("region") or device.region
    endpoint = _endpoint(ctx, options, region)
    region = region or _region_of(endpoint.host)
    passphrase = options.get("key_passphrase")
    if passphrase:
        ctx.add_secret(passphrase)
    cafile = options.get("ca")
    cafile = _expand(cafile) if cafile else (device.root_ca_path or ctx.ca_bundle or None)
    context = mtls.client_context(device.certificate_path, device.private_key_path, cafile=cafile,
                                  passphrase=passphrase)
    alias = options["role_alias"]
    thing = options.get("thing_name")
    headers = {"x-amzn-iot-thingname": thing} if thing else {}
    with ctx.status(f"getting AWS credentials for role alias {alias} from {endpoint}"):
        try:
            # the alias raw, as AWS's documented curl call sends it (ROLE_ALIAS admits only path-safe characters)
            answer = mtls.get(context, endpoint, f"/role-aliases/{alias}/credentials", headers,
                              timeout=float(options.get("timeout") or 30), what="the IoT credentials provider")
        except mtls.CertificateRefused as exc:
            if options.get("bootstrap") is None:
                raise
            # A refused bootstrap certificate is forgotten: the next run asks Krypton for a new one.
            ctx.state_delete(_bootstrap_state_name(options["bootstrap"]))
            raise StepError(f"{exc}; the next run gets a new certificate with Krypton aws-iot-bootstrap") from None
    if answer.status != 200:
        raise StepError(explain_refusal(answer.status, answer.body, alias=alias, thing=thing, endpoint=endpoint))
    return _credentials(ctx, answer, region)


# -- hooks ------------------------------------------------------------------------


@hookimpl
def gw_step_types() -> list[StepType]:
    return [
        StepType(
            name=STEP,
            run=_run,
            produces=AWS,
            consumes=(IOT_CERTIFICATE,),
            may_start=True,
            options=OPTIONS,
            check=_check,
            help="AWS credentials from the AWS IoT credentials provider, with a device certificate (mutual TLS)",
        )
    ]


@hookimpl
def gw_commands() -> list[Command]:
    from .register import configure, run

    return [
        Command(
            name="iot",
            help="AWS IoT device certificates: just-in-time registration",
            configure=configure,
            run=run,
            description="gw iot register connects with a device certificate signed by a CA registered with "
                        "auto-registration, and retries until the certificate demonstrably authenticates at the "
                        "AWS IoT credentials provider.",
            epilog="examples:\n  gw iot register --certificate dev.pem --key dev.key --ca-certificate myca.pem "
                   "--endpoint c1a2b3example.credentials.iot.us-east-1.amazonaws.com --timeout 60",
        )
    ]
