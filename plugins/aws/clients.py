"""boto3 clients and calls for the AWS steps and commands (boto3 imported only when a call is made):
``cognito-identity``, ``gw rotate``, ``gw import aws``, and the STS steps only where the configuration
asks for what ``sts.py`` (STS without boto3) does not model.

Its own module so that ``gw_plugins.aws`` and ``gw_plugins.aws.rotate`` both use it without importing each other.
"""

from __future__ import annotations

from typing import Any

from gw.plugin import AwsCredentials, StepError


def aws_client(ctx, service: str, options: dict[str, Any], credentials: AwsCredentials | None):
    """A boto3 client with the step's explicit credentials; a 3xx answer is one
    :class:`gw.plugin.RedirectRefused` line (botocore would report a parser error)."""
    import boto3
    import botocore.session
    from botocore.config import Config

    from gw.plugin import refuse_aws_redirects

    # The step's credentials are explicit: a profile named by AWS_PROFILE / AWS_DEFAULT_PROFILE
    # (often the very profile whose credential_process is gw) must not be read, nor fail the call.
    core = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
    session = boto3.session.Session(
        botocore_session=core,
        aws_access_key_id=credentials.access_key_id if credentials else None,
        aws_secret_access_key=credentials.secret_access_key if credentials else None,
        aws_session_token=credentials.session_token if credentials else None,
        region_name=options.get("region") or (credentials.region if credentials else None) or "us-east-1",
    )
    kwargs: dict[str, Any] = {"config": Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10, read_timeout=30)}
    if options.get("endpoint"):
        kwargs["endpoint_url"] = options["endpoint"]
    if ctx.ca_bundle:
        kwargs["verify"] = ctx.ca_bundle
    if credentials is None:
        from botocore import UNSIGNED

        kwargs["config"] = kwargs["config"].merge(Config(signature_version=UNSIGNED))
    return refuse_aws_redirects(session.client(service, **kwargs))


def aws_call(ctx, what: str, fn, upstream: str = "AWS STS", **kwargs) -> dict[str, Any]:
    """``fn(**kwargs)``: one line on failure; new credentials are checked against the answer's
    ``Date`` header (botocore keeps the HTTP headers in ``ResponseMetadata``), so a wrong local
    clock is named, and credentials already expired by it are never handed out."""
    from datetime import UTC, datetime

    from botocore.exceptions import BotoCoreError, ClientError

    from gw.plugin import check_expiry, clock_note

    try:
        with ctx.status(f"{what} ..."):
            data = fn(**{k: v for k, v in kwargs.items() if v is not None})
    except ClientError as exc:
        error = exc.response.get("Error", {})
        note = clock_note(upstream, _date_header(exc.response))  # a refused MFA code or signature time
        raise StepError(f"{what} failed: {error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
                        + note) from None
    except BotoCoreError as exc:
        raise StepError(f"{what} failed: {exc}") from None
    expiration = (data.get("Credentials") or {}).get("Expiration")
    if isinstance(expiration, datetime):
        check_expiry(expiration if expiration.tzinfo else expiration.replace(tzinfo=UTC), upstream,
                     _date_header(data), warn=ctx.warn)
    return data


def _date_header(response: dict[str, Any]) -> str | None:
    """The ``Date`` header of the HTTP answer behind a botocore response."""
    return ((response.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}).get("date")
