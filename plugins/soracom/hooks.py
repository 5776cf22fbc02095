"""The soracom plugin's hooks (its ``gw`` entry point); see the package docstring."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gw.plugin import Command, EnvironmentVariable, Option, Setting, StepType, hookimpl

if TYPE_CHECKING:
    from gw.plugin import Credential


@hookimpl
def gw_step_types() -> list[StepType]:
    from .steps import step_types

    return step_types()


@hookimpl
def gw_environment() -> list[EnvironmentVariable]:
    return [EnvironmentVariable("SORACOM_PROFILE_DIR", "where gw setup soracom writes soracom-cli profiles "
                                                       "(default ~/.soracom)"),
            EnvironmentVariable("GW_SORACOM_FORWARDER_IDLE", "seconds gw soracom's forwarder daemon stays without "
                                                             "a call before it exits (default 600)")]


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
