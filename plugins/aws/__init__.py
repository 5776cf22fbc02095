"""Built-in AWS step types: long-term keys, ~/.aws profiles and the STS calls.

The STS steps call STS as plain Query API requests signed with botocore's SigV4
signer (``sts.py``; no boto3), falling back to a boto3 client only where the
configuration asks for what that module does not model (FIPS or dual-stack
endpoints, ...). boto3 is imported only inside the functions that need it
(``cognito-identity``, ``gw rotate``, ``gw import aws``). Every step accepts
``region`` and ``endpoint`` (e.g. a private or emulated STS); like botocore, gw
also honours ``AWS_ENDPOINT_URL_STS`` and ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from typing import Any

from gw.plugin import (
    AWS,
    OPENID_TOKEN,
    AwsCredentials,
    Command,
    CommandContext,
    ConfigError,
    Duration,
    OpenIdToken,
    Option,
    StepError,
    StepType,
    hookimpl,
    profile_option,
    utcnow,
)

from .clients import aws_call, aws_client
from .sts import sts_call

ROLE_ORIGINS = {"assume-role", "web-identity", "cognito-identity", "saml", "sso"}
ALLOW_ALL = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]},
    separators=(",", ":"),
)
SERVICE = {
    "region": Option(str, help="AWS region of the STS endpoint (default us-east-1)"),
    "endpoint": Option(str, help="STS endpoint URL override"),
}


def _account_of(data: dict[str, Any]) -> str | None:
    """The account in an STS answer's AssumedRoleUser / FederatedUser ARN (None when absent)."""
    for key in ("AssumedRoleUser", "FederatedUser"):
        arn = (data.get(key) or {}).get("Arn")
        parts = arn.split(":", 5) if isinstance(arn, str) else []
        if len(parts) == 6 and parts[4].isdigit() and len(parts[4]) == 12:
            return parts[4]
    return None


def _from_sts(data: dict[str, Any], origin: str, region: str | None, chained: bool = False,
              made_from: str | None = None, account_id: str | None = None) -> AwsCredentials:
    c = data["Credentials"]
    expiration = c["Expiration"]
    if isinstance(expiration, datetime) and expiration.tzinfo is None:
        expiration = expiration.replace(tzinfo=UTC)
    return AwsCredentials(
        access_key_id=c["AccessKeyId"],
        secret_access_key=c.get("SecretAccessKey") or c.get("SecretKey"),
        session_token=c.get("SessionToken"),
        expiration=expiration,
        issued_at=utcnow(),
        origin=origin,
        role_chained=chained,
        region=region,
        account_id=_account_of(data) or account_id,
        made_from=made_from,
    )


def _session_name(ctx, options: dict[str, Any]) -> str:
    name = options.get("session_name") or f"gw-{ctx.profile}"
    return re.sub(r"[^\w+=,.@-]", "-", name)[:64]


def _mfa(options: dict[str, Any]) -> dict[str, Any]:
    if options.get("mfa_serial"):
        return {"SerialNumber": options["mfa_serial"], "TokenCode": options["mfa_code"]}
    return {}


def _check_mfa(options: dict[str, Any]) -> None:
    if bool(options.get("mfa_serial")) != bool(options.get("mfa_code")):
        raise ValueError("mfa_serial and mfa_code go together")


def _check_duration(low: int, high: int):
    def check(options: dict[str, Any]) -> None:
        duration = options.get("duration")
        if duration is not None and not low <= duration <= high:
            raise ValueError(f"duration must be between {low} and {high} seconds")
        if "mfa_serial" in options:
            _check_mfa(options)

    return check


# -- source steps ---------------------------------------------------------------------------
def run_aws_keys(ctx, options: dict[str, Any], upstream) -> AwsCredentials:
    return AwsCredentials(
        access_key_id=options["access_key_id"],
        secret_access_key=options["secret_access_key"],
        session_token=options.get("session_token"),
        origin="long-term" if not options.get("session_token") else "session",
        region=options.get("region"),
    )


def _aws_profile_cycle(profile: str, gw_profile: str) -> bool:
    """True when ~/.aws/config's ``profile`` runs gw for ``gw_profile`` (a loop)."""
    import configparser
    import shlex

    path = os.path.expanduser(os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config")
    parser = configparser.RawConfigParser()
    try:
        parser.read(path)
    except configparser.Error:
        return False
    section = "default" if profile == "default" else f"profile {profile}"
    command = parser.get(section, "credential_process", fallback="") if parser.has_section(section) else ""
    try:
        argv = shlex.split(command)
    except ValueError:
        return False
    if "credential-process" not in argv or not any(os.path.basename(a) == "gw" for a in argv[:1]):
        return False
    for i, arg in enumerate(argv):
        if (arg == "--profile" and argv[i + 1 : i + 2] == [gw_profile]) or arg == f"--profile={gw_profile}":
            return True
    return False


def run_aws_profile(ctx, options: dict[str, Any], upstream) -> AwsCredentials:
    import botocore.session
    from botocore.exceptions import BotoCoreError

    name = options["profile"]
    if _aws_profile_cycle(name, ctx.profile):
        raise ConfigError(
            f"profile cycle: gw profile {ctx.profile!r} reads AWS profile {name!r}, whose credential_process is gw "
            f"for {ctx.profile!r} again"
        )
    try:
        session = botocore.session.Session(profile=name)
        with ctx.status(f"Reading AWS profile {name} ..."):
            credentials = session.get_credentials()
            frozen = credentials.get_frozen_credentials() if credentials else None
    except BotoCoreError as exc:
        raise StepError(f"AWS profile {name!r}: {exc}") from None
    if frozen is None or not frozen.access_key:
        raise StepError(f"AWS profile {name!r} has no credentials")
    expiry = getattr(credentials, "_expiry_time", None)
    return AwsCredentials(
        access_key_id=frozen.access_key,
        secret_access_key=frozen.secret_key,
        session_token=frozen.token,
        expiration=expiry.astimezone(UTC) if isinstance(expiry, datetime) else None,
        issued_at=utcnow() if expiry else None,
        origin="long-term" if not frozen.token else "aws-profile",
        region=options.get("region") or session.get_config_variable("region"),
        account_id=getattr(frozen, "account_id", None) or None,
    )


# -- STS steps -----------------------------------------------------------------------------------
def run_assume_role(ctx, options: dict[str, Any], upstream: AwsCredentials) -> AwsCredentials:
    chained = upstream.origin in ROLE_ORIGINS
    duration = options["duration"]
    if chained and duration > 3600:
        ctx.info("role chaining is limited to 1 hour by AWS; asking for 3600 s")
        duration = 3600
    tags = [{"Key": k, "Value": v} for k, v in (options.get("tags") or {}).items()]
    data = sts_call(
        ctx,
        "AssumeRole",
        f"AssumeRole {options['role_arn']}",
        options,
        upstream,
        RoleArn=options["role_arn"],
        RoleSessionName=_session_name(ctx, options),
        DurationSeconds=duration,
        ExternalId=options.get("external_id"),
        Tags=tags or None,
        TransitiveTagKeys=options.get("transitive_tag_keys") or None,
        SourceIdentity=options.get("source_identity"),
        Policy=options.get("policy"),
        **_mfa(options),
    )
    return _from_sts(data, "assume-role", options.get("region") or upstream.region, chained, upstream.origin)


def _check_assume_role(options: dict[str, Any]) -> None:
    _check_duration(900, 43200)(options)
    tags = options.get("tags") or {}
    if not all(isinstance(v, str) for v in tags.values()):
        raise ValueError("tags must be a table of strings")
    keys = options.get("transitive_tag_keys") or []
    if not all(isinstance(k, str) for k in keys):
        raise ValueError("transitive_tag_keys must be an array of strings")
    if not re.fullmatch(r"arn:aws[\w-]*:iam::\d{12}:role/.+", options["role_arn"]):
        raise ValueError(f"role_arn {options['role_arn']!r} is not an IAM role ARN")


def run_session_token(ctx, options: dict[str, Any], upstream: AwsCredentials) -> AwsCredentials:
    if upstream.session_token:
        raise StepError("GetSessionToken needs long-term IAM user keys, but the previous step gave temporary ones")
    data = sts_call(ctx, "GetSessionToken", "GetSessionToken", options, upstream, DurationSeconds=options["duration"],
                    **_mfa(options))
    return _from_sts(data, "session-token", options.get("region") or upstream.region, made_from=upstream.origin,
                     account_id=upstream.account_id)


def run_federation_token(ctx, options: dict[str, Any], upstream: AwsCredentials) -> AwsCredentials:
    if upstream.session_token:
        raise StepError("GetFederationToken needs long-term IAM user keys, but the previous step gave temporary ones")
    name = re.sub(r"[^\w+=,.@-]", "-", options.get("name") or f"gw-{ctx.profile}")[:32]
    policy_arns = [{"arn": arn} for arn in options.get("policy_arns") or []]
    data = sts_call(
        ctx,
        "GetFederationToken",
        "GetFederationToken",
        options,
        upstream,
        Name=name,
        DurationSeconds=options["duration"],
        Policy=options.get("policy") or (None if policy_arns else ALLOW_ALL),
        PolicyArns=policy_arns or None,
    )
    return _from_sts(data, "federation-token", options.get("region") or upstream.region,
                     made_from=upstream.origin, account_id=upstream.account_id)


def run_web_identity(ctx, options: dict[str, Any], upstream: OpenIdToken) -> AwsCredentials:
    data = sts_call(
        ctx,
        "AssumeRoleWithWebIdentity",
        f"AssumeRoleWithWebIdentity {options['role_arn']}",
        options,
        None,
        RoleArn=options["role_arn"],
        RoleSessionName=_session_name(ctx, options),
        WebIdentityToken=upstream.token,
        DurationSeconds=options["duration"],
    )
    return _from_sts(data, "web-identity", options.get("region") or upstream.region, made_from="openid-token")


def run_cognito_identity(ctx, options: dict[str, Any], upstream: OpenIdToken) -> AwsCredentials:
    identity_id = options.get("identity_id") or upstream.identity_id
    if not identity_id:
        raise StepError("cognito-identity needs an identity id (from the token's issuer, or option identity_id)")
    region = options.get("region") or upstream.region or identity_id.split(":", 1)[0]
    client = aws_client(ctx, "cognito-identity", {**options, "region": region}, None)
    data = aws_call(
        ctx,
        "GetCredentialsForIdentity",
        client.get_credentials_for_identity,
        upstream="Amazon Cognito Identity",
        IdentityId=identity_id,
        Logins={options["provider"]: upstream.token},
    )
    return _from_sts(data, "cognito-identity", region, made_from="openid-token")


MFA = {
    "mfa_serial": Option(str, help="ARN (or serial) of the MFA device"),
    "mfa_code": Option((str, dict), secret=True, account="mfa_serial", help="the MFA code: prompt, totp:<ref>, ..."),
}


@hookimpl
def gw_step_types() -> list[StepType]:
    return [
        StepType(
            name="aws-keys",
            run=run_aws_keys,
            produces=AWS,
            options={
                "access_key_id": Option((str, dict), required=True, secret=True),
                "secret_access_key": Option((str, dict), required=True, secret=True),
                "session_token": Option((str, dict), secret=True),
                "region": Option(str),
            },
            help="Long-term (or given temporary) AWS keys from secret references.",
        ),
        StepType(
            name="aws-profile",
            run=run_aws_profile,
            produces=AWS,
            options={"profile": Option(str, required=True, help="a profile in ~/.aws/config or credentials"),
                     "region": Option(str)},
            help="The credentials of a profile in the user's ~/.aws files (resolved by botocore).",
        ),
        StepType(
            name="assume-role",
            run=run_assume_role,
            produces=AWS,
            consumes=(AWS,),
            options={
                "role_arn": Option(str, required=True),
                "session_name": Option(str),
                "duration": Option(Duration, default=3600),
                "external_id": Option(str),
                "tags": Option(dict, help="session tags"),
                "transitive_tag_keys": Option(list),
                "source_identity": Option(str),
                "policy": Option(str, help="inline session policy (JSON)"),
                **MFA,
                **SERVICE,
            },
            check=_check_assume_role,
            help="STS AssumeRole (optionally with MFA, session tags, source identity).",
        ),
        StepType(
            name="session-token",
            run=run_session_token,
            produces=AWS,
            consumes=(AWS,),
            options={"duration": Option(Duration, default=43200), **MFA, **SERVICE},
            check=_check_duration(900, 129600),
            help="STS GetSessionToken: an MFA session from long-term IAM user keys.",
        ),
        StepType(
            name="federation-token",
            run=run_federation_token,
            produces=AWS,
            consumes=(AWS,),
            options={
                "name": Option(str, help="federated user name (<= 32 characters)"),
                "duration": Option(Duration, default=43200),
                "policy": Option(str, help="session policy JSON (default: allow all the user may do)"),
                "policy_arns": Option(list),
                **SERVICE,
            },
            check=_check_duration(900, 129600),
            help="STS GetFederationToken (used by gw login for long-term IAM user keys).",
        ),
        StepType(
            name="web-identity",
            run=run_web_identity,
            produces=AWS,
            consumes=(OPENID_TOKEN,),
            options={"role_arn": Option(str, required=True), "session_name": Option(str),
                     "duration": Option(Duration, default=3600), **SERVICE},
            check=_check_duration(900, 43200),
            help="STS AssumeRoleWithWebIdentity with an OpenID token.",
        ),
        StepType(
            name="cognito-identity",
            run=run_cognito_identity,
            produces=AWS,
            consumes=(OPENID_TOKEN,),
            options={
                "identity_id": Option(str, help="default: the identity id that came with the token"),
                "provider": Option(str, default="cognito-identity.amazonaws.com"),
                **SERVICE,
            },
            help="Amazon Cognito GetCredentialsForIdentity with an OpenID token.",
        ),
    ]


# -- gw setup aws -------------------------------------------------------------------------
def _configure_setup(parser: Any) -> None:
    profile_option(parser)
    parser.add_argument("--aws-profile", help="the AWS profile name to write (default: same as --profile)")
    parser.add_argument("--region", help="also set region in that AWS profile")


def _run_setup(args: Any, ctx: CommandContext) -> int:
    from .awsconfig import (
        aws_config_path,
        credential_process_command,
        set_credential_process,
    )

    kind = ctx.output_kind(args.profile)
    if kind != AWS:
        raise ConfigError(f"profile {args.profile!r} yields {kind}, not AWS credentials")
    path = aws_config_path()
    command = credential_process_command(ctx.gw_executable(), args.profile)
    extra = {"region": args.region} if args.region else None
    name = args.aws_profile or args.profile
    outcome = set_credential_process(path, name, command, extra)
    ctx.emit(f"{outcome} [profile {name}] in {path}: credential_process = {command}")
    return 0


def _configure_import(parser: Any) -> None:
    from .importer import configure_import

    configure_import(parser)


def _run_import(args: Any, ctx: CommandContext) -> int:
    from .importer import run_import

    return run_import(args, ctx)


def _configure_rotate(parser: Any) -> None:
    from .rotate import configure_rotate

    configure_rotate(parser)


def _run_rotate(args: Any, ctx: CommandContext) -> int:
    from .rotate import run_rotate

    return run_rotate(args, ctx)


@hookimpl
def gw_commands() -> list[Command]:
    return [
        Command(
            "aws", "add credential_process for a profile to ~/.aws/config", _configure_setup, _run_setup,
            group="setup",
            description="Add (or update) credential_process for a gw profile in ~/.aws/config. Comments and every "
                        "other profile stay byte for byte; a backup is kept beside the file.",
            epilog="example:\n  gw setup aws --profile admin --region eu-west-1\n"
                   "  aws sts get-caller-identity --profile admin",
        ),
        Command(
            "aws", "move a ~/.aws profile's plaintext keys into gw's vault", _configure_import, _run_import,
            group="import",
            description="Move the long-term keys of a profile in ~/.aws/credentials into gw's encrypted vault, add "
                        "a gw profile that turns them into a session token (GetSessionToken, with the AWS profile's "
                        "mfa_serial if it has one; --no-session hands out the keys themselves), point the AWS "
                        "profile's credential_process at gw, and offer "
                        "to remove the plaintext keys (asked on the terminal, or --remove-plaintext / "
                        "--keep-plaintext). gw's config and ~/.aws/config keep a backup; ~/.aws/credentials does "
                        "not (it would keep the keys).",
            epilog="examples:\n  gw import aws --aws-profile work\n  gw import aws --all --keep-plaintext\n"
                   "  gw import aws --aws-profile default --profile personal --remove-plaintext\n"
                   "  aws sts get-caller-identity --profile work",
        ),
        Command(
            "rotate", "replace the IAM user access key gw keeps in its vault", _configure_rotate, _run_rotate,
            description="Create a new access key for the profile's IAM user (through its MFA session when it has "
                        "one), verify it, store it in the vault and delete the old one. An interrupted rotation "
                        "leaves a working key in the vault; running gw rotate again finishes it.",
            epilog="examples:\n  gw rotate --profile work\n  GW_PROFILE=work gw rotate",
        ),
    ]
