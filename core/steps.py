"""The public plugin API for step types and secret schemes.

A plugin returns :class:`StepType` objects from ``gw_step_types`` and
:class:`SecretScheme` objects from ``gw_secret_schemes``. The core validates a
step's options against ``StepType.options`` before anything runs, resolves the
options marked ``secret=True`` (``vault:``, ``env:``, ``prompt``, ``totp:`` and
plugin schemes) just before calling ``run``, and hands the step a
:class:`StepContext`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

if TYPE_CHECKING:
    from .credentials import Credential


class Duration(int):
    """An :class:`Option` type: a length of time, given as whole seconds (``3600``) or as a
    string in the syntax of ``--min-ttl`` (``"90s"``, ``"30m"``, ``"1h30m"``); the step gets an int
    of seconds."""


@dataclass(frozen=True)
class Option:
    """One option a step type accepts.

    ``type`` is checked against the TOML value (``int`` also accepts nothing but
    integers; a tuple allows several types). ``secret`` options take a secret
    reference and reach ``run`` already resolved to a ``str``. ``choices`` limits
    a value to a fixed set. ``account`` (for one-time-code options) names the
    option that says which account the code is for, e.g. ``"mfa_serial"`` (or a
    tuple of options whose present values, joined with ``/``, name it, e.g.
    ``("email", "operator_id", "username")``): a code is never used twice for that
    account, whichever source it came from.
    """

    type: type | tuple[type, ...] = str
    required: bool = False
    default: Any = None
    secret: bool = False
    choices: tuple[Any, ...] | None = None
    help: str = ""
    account: str | tuple[str, ...] | None = None

    def validate(self, value: Any) -> Any:
        """``value`` (as TOML gave it) in the form a step gets it, or ``ValueError`` with one line
        ``must be ..., not ...`` (the caller puts the option's name or place in front).

        The one check of an option's value, for step options, profile tables, ``[settings]``
        and declared defaults alike. Modelled on click's ``ParamType.convert``
        (pallets/click src/click/types.py): a value of the type passes as it is, a compatible
        one is converted (a :class:`Duration` string to seconds), anything else fails with a
        message naming what was given; ``choices`` are checked last, as click's ``Choice``
        does. ``true``/``false`` is never an ``int``; NaN and infinities are never a number.
        Secret references are not values: the core checks them with their scheme instead.
        """
        if self.type is Duration:
            value = _duration_seconds(value)
        else:
            allowed = self.type if isinstance(self.type, tuple) else (self.type,)
            if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed):
                raise InvalidValue(f"must be {type_name(allowed[0]())}, not {type_name(value)}")
            if isinstance(value, float) and not math.isfinite(value):
                raise InvalidValue(f"must be a finite number, not {value!r}")
        if self.choices is not None and value not in self.choices:
            raise InvalidValue(f"must be one of {', '.join(map(str, self.choices))}, not {value!r}", rule="choices")
        return value


class InvalidValue(ValueError):
    """:meth:`Option.validate`'s refusal; ``rule`` is ``"type"`` or ``"choices"``, the rule it broke."""

    def __init__(self, message: str, rule: str = "type") -> None:
        super().__init__(message)
        self.rule = rule


def _duration_seconds(value: Any) -> int:
    """Seconds of a :class:`Duration` value: whole seconds, or a string like ``"1h30m"``."""
    from .cli_options import DURATION_EXAMPLES
    from .durations import duration_seconds

    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value if value >= 0 else None
    else:
        seconds = duration_seconds(value.strip()) if isinstance(value, str) else None
    if seconds is None:
        raise InvalidValue(f"must be a duration: seconds or a string ({DURATION_EXAMPLES}), not {value!r}")
    return seconds


def type_name(value: Any) -> str:
    """How a message names the TOML type of ``value`` (``a string``, ``an integer`` ...)."""
    return {str: "a string", bool: "true/false", int: "an integer", float: "a number", list: "an array",
            dict: "a table"}.get(type(value), type(value).__name__)


class StepContext(Protocol):
    """What the core offers a running step, and a secret scheme's ``resolve``. Implemented in ``gw.chain``.

    While a secret reference is resolved, ``secret_label`` says what it is for (the option's
    name, e.g. ``secret access key``: for a prompt or a message) and ``code_account`` is the
    account a one-time code is for when the option is one (an :class:`Option` with ``account``;
    a scheme that makes codes hands it to :meth:`one_time_code`), else None.
    """

    profile: str
    step_index: int
    step_type: str
    state_dir: Path
    secret_label: str
    code_account: str | None

    @property
    def ca_bundle(self) -> str | None:
        """Extra CA bundle from the settings, for TLS to private endpoints."""

    @property
    def tls_verify(self) -> bool | str:
        """The ``verify`` argument for requests: True or a CA bundle path."""

    def status(self, message: str) -> ContextManager[None]:
        """Show ``message`` with a spinner on a terminal's stderr while the block runs."""

    def info(self, message: str) -> None:
        """A progress line on stderr, only when stderr is a terminal."""

    def warn(self, message: str) -> None:
        """A warning line on stderr, always shown (never put secrets here)."""

    def resolve_secret(self, ref: Any, *, label: str = "secret") -> str:
        """Resolve a secret reference (``vault:``, ``env:``, ``prompt``, ``totp:`` ...)."""

    def add_secret(self, value: str | None) -> None:
        """Register a value that must be scrubbed from every message and error."""

    def vault_get(self, name: str) -> str:
        """A secret from gw's vault; a missing name raises :class:`gw.plugin.SecretError` naming
        ``gw vault set`` (a step needs the value: :meth:`CommandContext.vault_get` gives None instead)."""

    def state_get(self, name: str) -> dict[str, Any] | None:
        """Read this plugin's private encrypted state entry, or None if absent or expired."""

    def state_put(self, name: str, data: dict[str, Any], expires_at: float) -> None:
        """Store a private encrypted state entry until ``expires_at`` (epoch seconds)."""

    def state_delete(self, name: str) -> None:
        """Drop a private state entry."""

    def ask(self, label: str, secret: bool = True) -> str:
        """Ask the person at the terminal (``/dev/tty``, or ``settings.askpass``)."""

    def lock(self, name: str, timeout: float | None = None) -> ContextManager[bool]:
        """Hold this plugin's inter-process lock ``name`` (bounded by ``settings.lock_timeout``)."""

    def one_time_code(self, account: str, produce: Callable[[float], str], *, period: int = 30,
                      label: str = "one-time code") -> str:
        """A one-time code for ``account`` that gw has never handed out before.

        ``produce(t)`` returns the code valid at epoch time ``t``. When the code of
        the current ``period``-second step was already used for ``account`` (by any
        gw process, from any source), gw waits for the next step, telling the person.
        """

    def call_hook(self, name: str, **kwargs: Any) -> list[Any]:
        """Call a hook that a plugin added with ``gw_add_hookspecs``; returns the results."""

    def setting(self, name: str) -> Any:
        """The value of a ``[settings]`` key a plugin declared (``gw_settings``), else its default."""

    def find_step_type(self, name: str) -> StepType:
        """Look up another step type by name (e.g. ``federation-token`` for login)."""

    def run_step(self, name: str, options: dict[str, Any], upstream: Credential | None) -> Credential:
        """Run another step type with the given options, inside this chain."""


class ProfileView(Protocol):
    """A read-only view of one profile, for plugin commands."""

    name: str
    description: str
    region: str | None
    steps: tuple[dict[str, Any], ...]
    tables: dict[str, dict[str, Any]]
    digest: str


class CommandContext(Protocol):
    """What the core offers a plugin command (``Command.run(args, ctx)``)."""

    state_dir: Path
    config_path: str

    @property
    def tls_verify(self) -> bool | str:
        """The ``verify`` argument for requests: True or ``settings.ca_bundle``."""

    def profile_names(self) -> list[str]:
        """Names of the profiles in the config."""

    def profile(self, name: str) -> ProfileView:
        """One profile; a missing one is a one-line :class:`gw.plugin.ConfigError`."""

    def output_kind(self, profile: str) -> str:
        """The credential kind the profile's chain yields (checks the chain)."""

    def setting(self, name: str) -> Any:
        """The value of a ``[settings]`` key a plugin declared (``gw_settings``), else its default."""

    def resolve(self, profile: str, *, require: str | None = None, refresh: bool = False,
                min_ttl: float = 0) -> Credential:
        """The profile's credential: from the cache when fresh, else by running the chain once.

        ``refresh=True`` fetches now; ``min_ttl`` (seconds) refetches when less is left.
        """

    def step_options(self, profile: str, step: str, **overrides: Any) -> dict[str, Any]:
        """The checked options (defaults filled in) of the profile's first ``step`` step."""

    def step_context(self, profile: str, step: str | None = None) -> StepContext:
        """A :class:`StepContext`; with ``step``, the one that step type's runs get (private state)."""

    def emit(self, text: str) -> None:
        """Write a result line to stdout (the only way a command prints results)."""

    def info(self, message: str) -> None:
        """A progress line on a terminal's stderr."""

    def warn(self, message: str) -> None:
        """A warning line on stderr, always shown (never put secrets here)."""

    def status(self, message: str) -> ContextManager[None]:
        """A spinner on a terminal's stderr while the block runs."""

    def add_secret(self, value: str | None) -> None:
        """Register a value that must be scrubbed from every message and error."""

    def ask(self, label: str, secret: bool = True) -> str:
        """Ask the person at the terminal (``/dev/tty``, or ``settings.askpass``)."""

    def gw_executable(self) -> str:
        """Absolute path of the gw command (for lines written into other tools' configs)."""

    def vault_get(self, name: str) -> str | None:
        """A secret from gw's vault, or None when there is no such name."""

    def vault_set(self, values: dict[str, str]) -> None:
        """Store one or more secrets in gw's vault in a single atomic write."""

    def vault_remove(self, name: str) -> bool:
        """Remove a secret from the vault; False when it was not there."""

    def exec_with(self, profile: str, credential: Credential, argv: Sequence[str],
                  env: Mapping[str, str | None], args: Sequence[str], *,
                  depends_on: Sequence[str] = ()) -> NoReturn:
        """Replace gw with the program ``argv[0]`` (found on ``PATH`` when it has no slash).

        ``argv[1:]`` and ``env`` values may hold ``{field}`` placeholders naming fields of
        ``credential.to_dict()`` (``{api_key}``, ``{token}``; ``{{``/``}}`` for a brace);
        ``args`` (the user's pass-through arguments) are appended untouched; ``env`` is set
        on top of gw's environment (None removes a variable). ``credential`` is what
        ``resolve(profile)`` returned. gw also records an exec recipe (no secrets), so the
        next ``gw NAME --profile P -- ARGS`` with a fresh cache entry execs at once without
        loading plugins (so the program and templates must not depend on ``args``); ``depends_on``
        names environment variables (never secret ones) the choice of program or templates
        depends on: a change sends gw the slow way again.
        Never put a secret literally in ``argv`` or ``env``: use a placeholder. A program
        not found exits 127, one that cannot run 126 (one line each).
        """

    def run_with(self, profile: str, credential: Credential, runner: str, program: str, args: Sequence[str], *,
                 options: Mapping[str, Any] | None = None, depends_on: Sequence[str] = ()) -> int | None:
        """Run ``program`` through the plugin's ``runner`` (``"module:function"``) while gw stays
        alive, e.g. to serve the program the credential over a local socket instead of its argv.

        ``function(program_path, fields, args, options)`` gets the program's path,
        ``credential.to_dict()``, ``args`` and ``options`` (JSON values, never secrets) and
        returns ``(status, drop)``: ``drop`` drops the profile's cached credential (refused or
        revoked upstream); a ``status`` of None means nothing irrevocable happened (the command
        may retry, e.g. after ``resolve(refresh=True)``). The runner's module must import only
        the standard library: gw records a runner recipe (no secrets), and the next cache hit
        calls the runner from the fast path without loading plugins (a None status there drops
        to the ordinary path). Returns the status. A program not found exits 127.
        """


RunFn = Callable[["StepContext", dict[str, Any], Any], "Credential"]


@dataclass(frozen=True)
class StepType:
    """A kind of step a chain can use: ``{ use = "<name>", ...options }``.

    ``consumes`` lists the credential kinds it accepts from the previous step; an
    empty tuple makes it a source step that must come first. ``produces`` is a kind
    name, or a function of the step's options when the output depends on them.
    ``check`` runs at validation time for rules the option table cannot say; it
    raises ``ValueError`` with a one-line message. ``advise`` returns advice for
    options that work but are probably not what the user meant (``gw check`` prints
    each as a warning; the profile still runs). ``unused`` names the secret options
    the step ignores for these options: gw leaves them unresolved (no prompt, no
    one-time code spent). ``may_start`` lets a step that
    consumes a kind also come first (its ``run`` then gets ``upstream=None``), e.g.
    ``iot-certificate`` reading certificate files or a Krypton bootstrap result.
    """

    name: str
    run: RunFn
    produces: str | Callable[[dict[str, Any]], str]
    consumes: tuple[str, ...] = ()
    options: dict[str, Option] = field(default_factory=dict)
    help: str = ""
    check: Callable[[dict[str, Any]], None] | None = None
    plugin: str = ""
    may_start: bool = False
    advise: Callable[[dict[str, Any]], list[str]] | None = None
    unused: Callable[[dict[str, Any]], Iterable[str]] | None = None

    def output_kind(self, options: dict[str, Any]) -> str:
        """The credential kind this step yields for these options."""
        return self.produces(options) if callable(self.produces) else self.produces


@dataclass(frozen=True)
class SecretScheme:
    """A secret-reference scheme such as ``op://``.

    ``prefix`` is matched at the start of a reference string (the longest
    matching prefix wins); ``table_key`` claims inline tables such as
    ``{ totp = "vault:seed", period = 30 }``. ``check(ref)`` validates a reference
    when the config is checked: it raises ``ValueError`` with one line, or returns a
    nested reference (``totp:vault:seed`` returns ``vault:seed``) that is checked in
    turn. ``resolve(ctx, ref)`` returns the secret text just before the step runs.
    """

    prefix: str
    resolve: Callable[[StepContext, Any], str]
    help: str = ""
    plugin: str = ""
    table_key: str = ""
    check: Callable[[Any], Any] | None = None


@dataclass(frozen=True)
class Command:
    """An extra subcommand contributed by a plugin.

    ``configure`` adds arguments to the argparse parser; ``run`` gets the parsed
    arguments and a :class:`CommandContext` and returns an exit status.
    ``group`` makes it ``gw <group> <name>`` (``"setup"``, ``"serve"`` or ``"import"``) instead of
    a top-level command. ``description`` and ``epilog`` (examples) go to ``--help``.
    ``extends=True`` adds to another plugin's command of the same name instead (the sso
    plugin's ``gw setup aws --sso``): ``configure`` gets that command's parser, and ``run``
    goes first, returning None to leave the call to the extended command.
    """

    name: str
    help: str
    configure: Callable[[Any], None]
    run: Callable[[Any, CommandContext], int | None]
    group: str | None = None
    description: str = ""
    epilog: str = ""
    plugin: str = ""
    extends: bool = False

    @property
    def full_name(self) -> str:
        """``name`` or ``"<group> <name>"``."""
        return f"{self.group} {self.name}" if self.group else self.name


@dataclass(frozen=True)
class EnvironmentVariable:
    """An environment variable a plugin reads (``gw_environment``), listed by ``gw --help``,
    e.g. the onepassword plugin's ``GW_OP_PATH``. ``help`` is one short line."""

    name: str
    help: str
    plugin: str = ""


@dataclass(frozen=True)
class Setting:
    """A ``[settings]`` key a plugin owns, e.g. the soracom plugin's ``soracom_cli``.

    ``option`` says its type, default and choices, checked like a step option's.
    Steps and commands read it with ``ctx.setting(name)``. A key no loaded plugin
    owns is an error naming it (``gw check``, and any command that resolves a profile).
    ``top_level=True`` makes it a top-level table ``[name]`` of the config instead of
    a key of ``[settings]`` (its option's type must be ``dict``), e.g. the sso plugin's
    ``[sso_sessions.NAME]`` tables.
    """

    name: str
    option: Option = field(default_factory=Option)
    plugin: str = ""
    top_level: bool = False


@dataclass(frozen=True)
class ProfileTable:
    """A profile-level table a plugin owns, e.g. ``[profiles.x.login]`` of the federation plugin.

    Its options are checked like a step's (``options``, and ``check`` for rules the
    table cannot say). Commands read it through ``ctx.profile(name).tables[name]``.
    """

    name: str
    options: dict[str, Option] = field(default_factory=dict)
    help: str = ""
    check: Callable[[dict[str, Any]], None] | None = None
    plugin: str = ""
