"""Credential kinds: what a step consumes and produces.

Every value that flows along a chain is a :class:`Credential`: the kinds here are the ones
more than one plugin (or the core's own commands) use; a kind only one plugin knows lives in
that plugin and is registered with ``gw_credential_kinds``, read back like these. Each kind has a
stable name (``KIND``), serialises to a JSON-able dict for the encrypted cache
(``to_dict`` / ``from_dict``), knows when it expires, and can describe itself as
environment variables for ``gw env`` / ``gw exec``.

This module must stay cheap to import: it is not on the cache-hit path, but it is
imported by every slow path.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

AWS = "aws-credentials"
SORACOM_CREDENTIALS = "soracom-credentials"
SORACOM_SESSION = "soracom-session"
BEARER_TOKEN = "bearer-token"
OPENID_TOKEN = "openid-token"
IOT_CERTIFICATE = "iot-certificate"


def utcnow() -> datetime:
    """The current time, timezone-aware UTC, second precision."""
    return datetime.now(UTC).replace(microsecond=0)


def to_rfc3339(value: datetime) -> str:
    """RFC 3339 UTC with a ``Z`` suffix, as botocore and the SDKs expect."""
    return value.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime | None:
    """Parse an expiry given as ISO 8601 text, epoch seconds or epoch milliseconds."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value / 1000 if value > 10**11 else value
        return datetime.fromtimestamp(seconds, UTC).replace(microsecond=0)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return parse_time(int(text))
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(text)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ValueError(f"unreadable time value of type {type(value).__name__}")


@dataclass
class Credential:
    """Base of every credential kind.

    ``expiration`` is None for long-lived material (never written to the cache).
    ``issued_at`` is when gw obtained it; with ``expiration`` it gives the lifetime
    that the refresh rule scales with.
    """

    KIND: ClassVar[str] = ""
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ()
    # The environment variables that hand a credential of this kind to a program (the
    # ones ``env()`` sets, and any that would make it pick other credentials of this kind);
    # ``gw env``/``gw exec`` clear the union over all kinds first. Settings such as a
    # region or an endpoint are not listed: a stale one points nowhere secret.
    ENV_VARS: ClassVar[tuple[str, ...]] = ()
    # A credential its consumer accepts once (a replay-protected token, e.g. a JWT whose
    # jti is remembered): never cached, not even as a shared chain step, so it is never reused.
    SINGLE_USE: ClassVar[bool] = False

    def secrets(self) -> list[str]:
        """Secret values carried by this credential (used to scrub messages)."""
        return [v for name in self.SECRET_FIELDS if isinstance(v := getattr(self, name, None), str) and v]

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            data[f.name] = to_rfc3339(value) if isinstance(value, datetime) else value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Credential:
        names = {f.name: f for f in dataclasses.fields(cls)}
        kwargs = {}
        for key, value in data.items():
            if key not in names:
                continue
            if key in ("expiration", "issued_at"):
                value = parse_time(value)
            kwargs[key] = value
        return cls(**kwargs)

    def env(self) -> dict[str, str]:
        """Environment variables that hand this credential to another program."""
        return {}

    def summary(self) -> str:
        """One line without secrets, for tables and logs."""
        return self.KIND

    def fast_output(self) -> str:
        """The line a cache hit prints as it is (no JSON work on the hot path), or ""."""
        return ""


@dataclass
class AwsCredentials(Credential):
    """AWS access keys, long-term (no session token) or temporary.

    ``origin`` tells how they were made: ``long-term``, ``session-token``,
    ``assume-role``, ``federation-token``, ``web-identity``, ``cognito-identity``
    or a plugin's own word. ``role_chained`` is True when an AssumeRole was made
    with role credentials; ``made_from`` is the ``origin`` of the credentials an
    STS call was made with (``long-term`` for IAM user keys): the console federation
    endpoint accepts a SessionDuration only for roles assumed with long-term keys.
    ``account_id`` is the AWS account when known (from an assumed-role or
    federated-user ARN, or a GetCallerIdentity already made).
    """

    KIND: ClassVar[str] = AWS
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("secret_access_key", "session_token")
    ENV_VARS: ClassVar[tuple[str, ...]] = (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_CREDENTIAL_EXPIRATION",
        "AWS_SESSION_EXPIRATION",
        "AWS_ACCOUNT_ID",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_ROLE_SESSION_NAME",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    )

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None
    expiration: datetime | None = None
    issued_at: datetime | None = None
    origin: str = "long-term"
    role_chained: bool = False
    region: str | None = None
    account_id: str | None = None
    made_from: str | None = None

    def credential_process_json(self) -> str:
        """The exact stdout of ``credential_process`` (protocols.md section 1)."""
        import json

        doc: dict[str, Any] = {
            "Version": 1,
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
        }
        if self.session_token:
            doc["SessionToken"] = self.session_token
        if self.expiration is not None:
            doc["Expiration"] = to_rfc3339(self.expiration)
        if self.account_id:
            doc["AccountId"] = self.account_id
        return json.dumps(doc, separators=(",", ":"))

    def env(self) -> dict[str, str]:
        env = {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key}
        if self.session_token:
            env["AWS_SESSION_TOKEN"] = self.session_token
        if self.expiration is not None:
            env["AWS_CREDENTIAL_EXPIRATION"] = to_rfc3339(self.expiration)
        if self.account_id:
            env["AWS_ACCOUNT_ID"] = self.account_id
        if self.region:
            env["AWS_REGION"] = self.region
            env["AWS_DEFAULT_REGION"] = self.region
        return env

    def summary(self) -> str:
        return f"AWS {self.origin} {self.access_key_id[:4]}…{self.access_key_id[-4:]}"

    def fast_output(self) -> str:
        return self.credential_process_json()


@dataclass
class SoracomCredentials(Credential):
    """Long-term SORACOM credentials: an AuthKey, a root email/password, or a SAM user.

    ``mfa_code`` is a fresh one-time code when the account has MFA; it is never cached.
    """

    KIND: ClassVar[str] = SORACOM_CREDENTIALS
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("auth_key", "password", "mfa_code")

    auth_key_id: str | None = None
    auth_key: str | None = None
    email: str | None = None
    password: str | None = None
    operator_id: str | None = None
    username: str | None = None
    mfa_code: str | None = None
    coverage: str = "jp"
    expiration: datetime | None = None

    def summary(self) -> str:
        who = self.auth_key_id or self.email or f"{self.operator_id}/{self.username}"
        return f"SORACOM credentials {who}"


@dataclass
class SoracomSession(Credential):
    """A SORACOM API session: the result of ``POST /v1/auth``."""

    KIND: ClassVar[str] = SORACOM_SESSION
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("api_key", "token")
    ENV_VARS: ClassVar[tuple[str, ...]] = ("SORACOM_API_KEY", "SORACOM_TOKEN", "SORACOM_PROFILE",
                                           "SORACOM_AUTH_KEY_ID", "SORACOM_AUTH_KEY")

    api_key: str
    token: str
    operator_id: str
    endpoint: str
    user_name: str | None = None
    expiration: datetime | None = None
    issued_at: datetime | None = None

    def env(self) -> dict[str, str]:
        return {"SORACOM_API_KEY": self.api_key, "SORACOM_TOKEN": self.token, "SORACOM_ENDPOINT": self.endpoint}

    def summary(self) -> str:
        return f"SORACOM session {self.operator_id}{'/' + self.user_name if self.user_name else ''}"


@dataclass
class BearerToken(Credential):
    """An OAuth 2.0 access token (for example Cognito client credentials).

    ``env_name`` is the variable ``gw env`` / ``gw exec`` set to the token.
    """

    KIND: ClassVar[str] = BEARER_TOKEN
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("access_token",)
    ENV_VARS: ClassVar[tuple[str, ...]] = ("GW_ACCESS_TOKEN", "GW_BEARER_TOKEN")

    access_token: str
    token_type: str = "Bearer"
    scope: str | None = None
    expiration: datetime | None = None
    issued_at: datetime | None = None
    env_name: str = "GW_BEARER_TOKEN"

    def env(self) -> dict[str, str]:
        return {self.env_name: self.access_token}

    def fast_output(self) -> str:
        return self.access_token


@dataclass
class OpenIdToken(Credential):
    """An OpenID Connect token, e.g. from Cognito via Krypton (``identity_id`` set)."""

    KIND: ClassVar[str] = OPENID_TOKEN
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("token",)
    ENV_VARS: ClassVar[tuple[str, ...]] = ("GW_OPENID_TOKEN",)

    token: str
    identity_id: str | None = None
    region: str | None = None
    expiration: datetime | None = None
    issued_at: datetime | None = None

    def env(self) -> dict[str, str]:
        return {"GW_OPENID_TOKEN": self.token}

    def fast_output(self) -> str:
        return self.token


@dataclass
class IotCertificate(Credential):
    """An AWS IoT device certificate saved under the state dir (paths, not PEM text)."""

    KIND: ClassVar[str] = IOT_CERTIFICATE

    certificate_path: str
    private_key_path: str
    root_ca_path: str | None = None
    host: str | None = None
    client_id: str | None = None
    region: str | None = None
    expiration: datetime | None = None


KINDS: dict[str, type[Credential]] = {
    cls.KIND: cls
    for cls in (
        AwsCredentials,
        SoracomCredentials,
        SoracomSession,
        BearerToken,
        OpenIdToken,
        IotCertificate,
    )
}


def credential_from_dict(kind: str, data: dict[str, Any]) -> Credential:
    """Rebuild a credential from its cached form."""
    try:
        cls = KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown credential kind {kind!r}") from None
    return cls.from_dict(data)

