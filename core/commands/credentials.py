"""``gw credential-process``, ``gw token`` and ``gw env``: a profile's credentials on stdout.

Their cache hits never get here (:mod:`gw.fastpath` serves ``credential-process`` and ``token``
before argparse); this is the ordinary path, which resolves the profile.
"""

from __future__ import annotations

import os
from typing import Any

from ..cli_options import freshness_options, profile_option
from ..errors import ConfigError
from .base import command
from .credential_output import credential_process, resolve, token


def region_values(ns: Any, app: Any, values: dict[str, str], environ: dict[str, str]) -> dict[str, str]:
    """``values`` with AWS_REGION / AWS_DEFAULT_REGION by precedence: ``--region``, the
    profile's ``region``, the caller's environment (left alone), the region a step used."""
    learned = values.pop("AWS_REGION", None)
    values.pop("AWS_DEFAULT_REGION", None)
    if "AWS_ACCESS_KEY_ID" not in values and "AWS_CONTAINER_CREDENTIALS_FULL_URI" not in values:
        return values  # not AWS credentials
    region = getattr(ns, "region", None) or app.config.profile(ns.profile).region
    if region is None and (environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")):
        return values
    region = region or learned
    if region:
        values["AWS_REGION"] = values["AWS_DEFAULT_REGION"] = region
    return values


def environment_values(ns: Any, app: Any, credential: Any) -> dict[str, str]:
    """The credential's environment form (AWS region included), or a ConfigError for a kind without one."""
    values = credential.env()
    if not values:
        raise ConfigError(f"profile {ns.profile!r} yields {credential.KIND}, which has no environment form")
    return region_values(ns, app, values, dict(os.environ))


# -- gw credential-process ----------------------------------------------------------------
def configure_credential_process(parser: Any) -> None:
    profile_option(parser)
    freshness_options(parser)
    # botocore puts a failing credential_process's stderr into its own error: the person sees it
    # there, so the error line goes to stderr only (waits still reach /dev/tty)
    parser.set_defaults(errors_on_tty=False)


# -- gw token -----------------------------------------------------------------------------
def configure_token(parser: Any) -> None:
    profile_option(parser)
    parser.add_argument("--format", choices=("raw", "header", "json"), default="raw",
                        help="raw: the token; header: 'Authorization: Bearer ...'; json: token, type, expiry")
    freshness_options(parser)


# -- gw env -------------------------------------------------------------------------------
def configure_env(parser: Any) -> None:
    profile_option(parser)
    parser.add_argument("--format", choices=("sh", "fish", "powershell", "json"), default="sh")
    parser.add_argument("--region", help="AWS_REGION for the credentials (wins over the profile and the environment)")
    freshness_options(parser)


def env(ns: Any, app: Any) -> int:
    from ..envvars import render

    app.emit(render(environment_values(ns, app, resolve(ns, app)), ns.format))
    return 0


COMMANDS = [
    command("credential-process", "print AWS credentials for credential_process (JSON)",
            "Print the profile's AWS credentials as the JSON that credential_process expects (with "
            "AccountId when known). A cache hit answers without loading any plugin.",
            "  credential_process = /usr/local/bin/gw credential-process --profile admin\n"
            "  gw credential-process --profile admin --min-ttl 30m", configure_credential_process, credential_process),
    command("token", "print the profile's bearer or OpenID token (raw, header or json)",
            "Print the access token of a profile whose chain yields a bearer token (e.g. "
            "cognito-m2m) or an OpenID token. A cache hit loads no plugin.",
            '  curl -H "$(gw token --profile api --format header)" https://api.example.com/items\n'
            "  gw token --profile api --format json", configure_token, token),
    command("env", "print the profile's credentials as environment variables",
            "Print shell code that exports the profile's credentials (and unsets conflicting "
            "variables). AWS_REGION comes from --region, then the profile's region, then your "
            "environment, then the region a step used.",
            '  eval "$(gw env --profile admin)"\n  gw env --profile admin --format fish | source\n'
            "  gw env --profile admin --format json --region eu-west-1", configure_env, env),
]
