"""The core's built-in secret schemes, registered as an ordinary plugin (``core``).

- ``vault:NAME``   a value from gw's encrypted vault (``gw vault set NAME``)
- ``env:VAR``      an environment variable
- ``prompt``       asked on /dev/tty (or ``{ prompt = "label" }``)
- ``totp:<ref>``   the current TOTP code for the base32 seed found at ``<ref>``;
                   ``{ totp = "<ref>", period = 30, digits = 6 }`` sets the parameters
- ``cmd:ARGV``     the first line a command prints (pass, bw, keepassxc-cli, ykman ...):
                   split like a shell would (shlex) but run without one, stdin /dev/null,
                   bounded by a timeout (``{ cmd = "ARGV", timeout = 60 }``); its output
                   never appears in a message

They use only what any plugin's scheme gets: the :class:`gw.plugin.StepContext`.
"""

from __future__ import annotations

import os
from typing import Any

import pluggy

from .errors import SecretError
from .steps import SecretScheme, StepContext

hookimpl = pluggy.HookimplMarker("gw")
TOTP_KEYS = {"totp", "period", "digits"}
CMD_KEYS = {"cmd", "timeout", "period"}
CMD_TIMEOUT = 60


def _check_vault(ref: Any) -> None:
    if not ref[len("vault:"):]:
        raise ValueError("vault: needs a name after it")


def _resolve_vault(ctx: StepContext, ref: Any) -> str:
    return ctx.vault_get(ref[len("vault:"):])


def _check_env(ref: Any) -> None:
    if not ref[len("env:"):]:
        raise ValueError("env: needs a name after it")


def _resolve_env(ctx: StepContext, ref: Any) -> str:
    name = ref[len("env:"):]
    value = os.environ.get(name)
    if not value:
        raise SecretError(f"environment variable {name} is not set")
    return value


def _check_prompt(ref: Any) -> None:
    if isinstance(ref, dict):
        if set(ref) != {"prompt"} or not isinstance(ref["prompt"], str):
            raise ValueError('an inline prompt is { prompt = "label" }')
    elif ref != "prompt":
        raise ValueError('a prompt reference is exactly "prompt" (or { prompt = "label" })')


def _resolve_prompt(ctx: StepContext, ref: Any) -> str:
    if isinstance(ref, dict):
        return ctx.ask(f"{ref['prompt']}: ")
    return ctx.ask(f"{ctx.secret_label} for profile {ctx.profile}: ")


def _totp_parts(ref: Any) -> tuple[Any, int, int]:
    if isinstance(ref, dict):
        return ref["totp"], ref.get("period", 30), ref.get("digits", 6)
    return ref[len("totp:"):], 30, 6


def _check_totp(ref: Any) -> Any:
    if isinstance(ref, dict):
        unknown = set(ref) - TOTP_KEYS
        if unknown:
            raise ValueError(f"unknown key {sorted(unknown)[0]!r} in a totp reference (totp, period, digits)")
    inner, period, digits = _totp_parts(ref)
    if isinstance(period, bool) or not isinstance(period, int) or not 1 <= period <= 300:
        raise ValueError("totp period must be an integer from 1 to 300 seconds")
    if isinstance(digits, bool) or not isinstance(digits, int) or not 6 <= digits <= 10:
        raise ValueError("totp digits must be an integer from 6 to 10")
    if not inner:
        raise ValueError("totp: needs a reference to the seed after it")
    return inner


def _resolve_totp(ctx: StepContext, ref: Any) -> str:
    from .totp import generator, seed_account

    inner, period, digits = _totp_parts(ref)
    label = ctx.secret_label
    seed = totp_seed(ctx.resolve_secret(inner, label=f"{label} seed"), ref, f"profile {ctx.profile!r}")
    ctx.add_secret(seed.secret)
    return ctx.one_time_code(seed_account(seed), generator(seed), period=seed.period, label=label)


def totp_seed(value: str, ref: Any, whose: str):
    """The :class:`gw.totp.Seed` that ``value`` (read from ``ref``'s seed reference) holds; an
    error names the reference and ``whose`` it is (a profile), never the seed."""
    from .totp import parse_seed

    inner, period, digits = _totp_parts(ref)
    try:
        return parse_seed(value, period=period, digits=digits)
    except SecretError as exc:
        raise SecretError(f"{whose}: {inner}: {exc}") from None


def totp_refs(ref: Any) -> list[Any]:
    """The ``totp:`` references in an option's value (for ``gw check``)."""
    if isinstance(ref, dict) and "totp" in ref or isinstance(ref, str) and ref.startswith("totp:"):
        return [ref]
    return []


def totp_seed_ref(ref: Any) -> str:
    """The reference a ``totp:`` reference reads its seed from (``vault:NAME``)."""
    return _totp_parts(ref)[0]


def _cmd_parts(ref: Any) -> tuple[list[str], float, int]:
    import shlex

    text, timeout = (ref["cmd"], ref.get("timeout", CMD_TIMEOUT)) if isinstance(ref, dict) else (ref[4:], CMD_TIMEOUT)
    period = ref.get("period", 30) if isinstance(ref, dict) else 30
    if not isinstance(text, str):
        raise ValueError("cmd must be a command line string")  # noqa: TRY004 - the scheme API's one error type
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 1 <= timeout <= 3600:
        raise ValueError("cmd timeout must be a number of seconds from 1 to 3600")
    if isinstance(period, bool) or not isinstance(period, int) or not 1 <= period <= 300:
        raise ValueError("cmd period (of the one-time codes it prints) must be an integer from 1 to 300 seconds")
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"cmd: cannot split the command line ({exc})") from None
    if not argv:
        raise ValueError("cmd: needs a command after it, e.g. cmd:pass show aws/secret")
    return argv, float(timeout), period


def _check_cmd(ref: Any) -> None:
    if isinstance(ref, dict):
        unknown = set(ref) - CMD_KEYS
        if unknown:
            raise ValueError(f"unknown key {min(unknown)!r} in a cmd reference (cmd, timeout)")
    _cmd_parts(ref)


def _resolve_cmd(ctx: StepContext, ref: Any) -> str:
    """Run the command (no shell, stdin /dev/null, bounded); its first output line is the secret.

    For a one-time-code option (``mfa_code``; an option with an ``account``) the code goes
    through the core's no-reuse record like a ``totp:`` one: if this time step's code was
    already used for the account, gw waits for the next step and then runs the command.
    """
    try:
        argv, timeout, period = _cmd_parts(ref)
    except ValueError as exc:
        raise SecretError(str(exc)) from None
    label, account = ctx.secret_label, ctx.code_account
    if account:
        return ctx.one_time_code(account, lambda _at: _run_cmd(ctx, argv, timeout, label), period=period, label=label)
    return _run_cmd(ctx, argv, timeout, label)


def _run_cmd(ctx: StepContext, argv: list[str], timeout: float, label: str) -> str:
    import subprocess

    name = os.path.basename(argv[0])
    try:
        with ctx.status(f"running {name} for the {label} ..."):
            done = subprocess.run(argv, check=False, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  timeout=timeout, close_fds=True)
    except FileNotFoundError:
        raise SecretError(f"cmd: command not found: {argv[0]}") from None
    except PermissionError:
        raise SecretError(f"cmd: permission denied: {argv[0]}") from None
    except subprocess.TimeoutExpired:
        raise SecretError(f"cmd: {name} did not finish within {timeout:g} s (raise it with "
                          "{ cmd = \"...\", timeout = N })") from None
    except OSError as exc:
        raise SecretError(f"cmd: cannot run {name}: {exc.strerror}") from None
    output = done.stdout.decode("utf-8", "replace")
    value = output.splitlines()[0].strip() if output.strip() else ""
    for line in output.splitlines():
        ctx.add_secret(line.strip())  # whatever it printed stays out of every message
    if done.returncode != 0:
        raise SecretError(f"cmd: {name} exited with status {done.returncode} (run it yourself to see why)")
    if not value:
        raise SecretError(f"cmd: {name} printed nothing on its first line")
    return value


def vault_names(ref: Any, schemes: Any = None) -> list[str]:
    """The vault names a reference reads (for ``gw check``)."""
    if isinstance(ref, dict):
        return vault_names(ref.get("totp"))
    if isinstance(ref, str):
        if ref.startswith("totp:"):
            return vault_names(ref[5:])
        if ref.startswith("vault:"):
            return [ref[6:]]
    return []


@hookimpl
def gw_secret_schemes() -> list[SecretScheme]:
    return [
        SecretScheme("vault:", _resolve_vault, "a value from gw's encrypted vault: vault:NAME", check=_check_vault),
        SecretScheme("env:", _resolve_env, "an environment variable: env:VAR", check=_check_env),
        SecretScheme("prompt", _resolve_prompt, 'asked on the terminal: prompt or { prompt = "label" }',
                     table_key="prompt", check=_check_prompt),
        SecretScheme("totp:", _resolve_totp, "a TOTP code from a seed reference: totp:<ref> or "
                     "{ totp = <ref>, period = 30, digits = 6 }", table_key="totp", check=_check_totp),
        SecretScheme("cmd:", _resolve_cmd, "the first line a command prints (no shell, stdin /dev/null, "
                     'timeout 60 s): cmd:ARGV or { cmd = "ARGV", timeout = 60 }', table_key="cmd", check=_check_cmd),
    ]
