"""The public plugin API for step types and secret schemes.

A plugin returns :class:`StepType` objects from ``gw_step_types`` and
:class:`SecretScheme` objects from ``gw_secret_schemes``. The core validates a
step's options against ``StepType.options`` before anything runs, resolves the
options marked ``secret=True`` (``vault:``, ``env:``, ``prompt``, ``totp:`` and
plugin schemes) just before calling ``run``, and hands the step a
:class:`StepContext`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Protocol

if TYPE_CHECKING:
    from .credentials import Credential


@dataclass(frozen=True)
class Option:
    """One option a step type accepts.

    ``type`` is checked against the TOML value (``int`` also accepts nothing but
    integers; a tuple allows several types). ``secret`` options take a secret
    reference and reach ``run`` already resolved to a ``str``. ``choices`` limits
    a value to a fixed set.
    """

    type: type | tuple[type, ...] = str
    required: bool = False
    default: Any = None
    secret: bool = False
    choices: tuple[Any, ...] | None = None
    help: str = ""


class StepContext(Protocol):
    """What the core offers a running step. Implemented in ``gw.chain``."""

    profile: str
    step_index: int
    step_type: str
    state_dir: Path

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

    def state_get(self, name: str) -> dict[str, Any] | None:
        """Read this plugin's private encrypted state entry, or None if absent or expired."""

    def state_put(self, name: str, data: dict[str, Any], expires_at: float) -> None:
        """Store a private encrypted state entry until ``expires_at`` (epoch seconds)."""

    def state_delete(self, name: str) -> None:
        """Drop a private state entry."""

    def find_step_type(self, name: str) -> StepType:
        """Look up another step type by name (e.g. ``federation-token`` for login)."""

    def run_step(self, name: str, options: dict[str, Any], upstream: Credential | None) -> Credential:
        """Run another step type with the given options, inside this chain."""


RunFn = Callable[["StepContext", dict[str, Any], "Credential | None"], "Credential"]


@dataclass(frozen=True)
class StepType:
    """A kind of step a chain can use: ``{ use = "<name>", ...options }``.

    ``consumes`` lists the credential kinds it accepts from the previous step; an
    empty tuple makes it a source step that must come first. ``produces`` is a kind
    name, or a function of the step's options when the output depends on them.
    ``check`` runs at validation time for rules the option table cannot say; it
    raises ``ValueError`` with a one-line message.
    """

    name: str
    run: RunFn
    produces: str | Callable[[dict[str, Any]], str]
    consumes: tuple[str, ...] = ()
    options: dict[str, Option] = field(default_factory=dict)
    help: str = ""
    check: Callable[[dict[str, Any]], None] | None = None
    plugin: str = ""

    def output_kind(self, options: dict[str, Any]) -> str:
        """The credential kind this step yields for these options."""
        return self.produces(options) if callable(self.produces) else self.produces


@dataclass(frozen=True)
class SecretScheme:
    """A secret-reference scheme such as ``op://``.

    ``prefix`` is matched at the start of the reference string; ``resolve`` gets
    the context and the whole reference and returns the secret text.
    """

    prefix: str
    resolve: Callable[["StepContext", str], str]
    help: str = ""
    plugin: str = ""


@dataclass
class Command:
    """An extra subcommand contributed by a plugin.

    ``configure`` adds arguments to the argparse parser; ``run`` gets the parsed
    arguments and the :class:`gw.app.App` and returns an exit status.
    ``setup_target`` makes it a ``gw setup <name>`` target instead of a top-level command.
    """

    name: str
    help: str
    configure: Callable[[Any], None]
    run: Callable[[Any, Any], int]
    setup_target: bool = False
