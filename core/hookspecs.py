# mypy: disable-error-code="empty-body"
"""The hooks a gw plugin can implement.

A plugin is a module registered in the ``gw`` entry-point group::

    [project.entry-points.gw]
    myplugin = "my_package.my_module"

and decorates functions with ``gw.plugin.hookimpl``. Built-in plugins use exactly the
same mechanism. Every hook is optional.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .credentials import Credential
    from .steps import Command, EnvironmentVariable, ProfileTable, SecretScheme, Setting, StepType

hookspec = pluggy.HookspecMarker("gw")


@hookspec
def gw_step_types() -> list[StepType]:
    """Return the step types this plugin provides.

    Each :class:`gw.steps.StepType` names the credential kinds it consumes and
    produces, declares its options and supplies the ``run`` function. Two plugins
    offering the same step type name is a configuration error.
    """


@hookspec
def gw_secret_schemes() -> list[SecretScheme]:
    """Return secret-reference schemes (e.g. ``op://``) this plugin resolves.

    A secret option whose value starts with a scheme's ``prefix`` is handed to
    that scheme's ``resolve`` just before the step runs.
    """


@hookspec
def gw_commands() -> list[Command]:
    """Return extra subcommands: ``gw <name>``, or ``gw <group> <name>`` for ``group`` "setup" or "serve".

    ``run(args, ctx)`` gets the parsed arguments and a :class:`gw.plugin.CommandContext`.
    """


@hookspec
def gw_credentials_issued(profile: str, credential: Credential, from_cache: bool) -> None:
    """Called after a profile's credentials are handed out (audit hook).

    Always called when a chain ran and fetched new credentials (``from_cache``
    False). Cache hits are reported (``from_cache`` True) only by commands that
    loaded the plugins anyway (``gw login``, plugin commands on their slow path); the
    cache-hit fast paths of ``credential-process``, ``token`` and plugin commands that
    exec a program (``CommandContext.exec_with``) load no plugin and stay silent.
    Never log secret fields.
    """


@hookspec
def gw_cache_cleared(profile: str, credential: Credential, context: Any) -> None:
    """Called for each live cached credential that ``gw cache clear`` drops.

    A plugin may revoke it upstream (e.g. SORACOM ``/v1/auth/logout``).
    Failures should be reported with ``context.warn`` and not raised.
    """


@hookspec
def gw_profile_tables() -> list[ProfileTable]:
    """Return the profile-level tables this plugin owns (``[profiles.<name>.<table>]``).

    The core checks each table's options like a step's; a table no plugin owns
    is an error naming it. Commands read tables through ``ctx.profile(name).tables``.
    """


@hookspec
def gw_settings() -> list[Setting]:
    """Return the ``[settings]`` keys this plugin owns (:class:`gw.plugin.Setting`).

    Each is checked like a step option; a name the core uses, or another plugin's,
    is refused. Steps and commands read the value with ``ctx.setting(name)``.
    """


@hookspec
def gw_environment() -> list[EnvironmentVariable]:
    """Return the environment variables this plugin reads (:class:`gw.plugin.EnvironmentVariable`),
    so ``gw --help`` lists them beside gw's own."""


@hookspec
def gw_credential_kinds() -> list[type[Credential]]:
    """Return credential classes (subclasses of :class:`gw.plugin.Credential`) this plugin adds.

    Each needs a unique ``KIND`` name; it is cached and read back like a built-in kind.
    """


@hookspec(historic=True)
def gw_add_hookspecs(pluginmanager: Any) -> None:
    """Add hook specifications of this plugin's own (``pluginmanager.add_hookspecs(module)``).

    A historic hook (like pytest's ``pytest_addhooks``): gw calls it once with
    ``call_historic`` after registering the plugins, and pluggy replays it to any plugin
    registered later.

    This is how a plugin offers an extension point to other plugins (the krypton
    plugin's ``gw_krypton_readers``, implemented by the demo plugin). Steps call
    such hooks with ``ctx.call_hook(name, ...)``.
    """
