"""SORACOM: long-term credentials, API sessions and soracom-cli integration.

Step types (``steps``; protocols.md section 3):

* ``soracom-keys`` - SoracomCredentials from secret references: an AuthKey, a root
  email/password or a SAM user, plus an optional ``mfa_code`` (``totp:...``,
  ``op-otp://...``; never with an AuthKey) and ``coverage``.
* ``soracom-auth`` - ``POST /v1/auth`` (and ``/v1/auth/switch_user``) -> SoracomSession.

Commands (``cli``): ``gw soracom`` (soracom-cli with the cached session),
``gw soracom-profile`` (the stdout of a soracom-cli ``profileCommand``),
``gw soracom-token`` and ``gw setup soracom`` (writes ``~/.soracom/NAME.json``).
HTTP calls are in ``api``; soracom-cli's splitting and naming rules in ``profile_command``.
Hook: ``gw_cache_cleared`` logs a dropped SoracomSession out upstream.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gw.plugin import Command, EnvironmentVariable, Option, Setting, StepType, hookimpl

from .profile_command import (
    profile_command,
    soracom_profile_name_problem,
    split_profile_command,
)

if TYPE_CHECKING:
    from gw.plugin import Credential

__all__ = ["profile_command", "soracom_profile_name_problem", "split_profile_command"]


@hookimpl
def gw_step_types() -> list[StepType]:
    from .steps import step_types

    return step_types()


@hookimpl
def gw_environment() -> list[EnvironmentVariable]:
    return [EnvironmentVariable("SORACOM_PROFILE_DIR", "where gw setup soracom writes soracom-cli profiles "
                                                       "(default ~/.soracom)")]


@hookimpl
def gw_settings() -> list[Setting]:
    return [Setting("soracom_cli", Option(str, help="soracom-cli for gw soracom: a path, or a name looked up on PATH "
                                                     "(default: soracom)"))]


@hookimpl
def gw_commands() -> list[Command]:
    from .cli import commands

    return commands()


@hookimpl
def gw_cache_cleared(profile: str, credential: Credential, context: Any) -> None:
    from gw.plugin import SoracomSession

    if isinstance(credential, SoracomSession):
        from .api import logout

        logout(context, credential)  # never raises: failures are a warning
