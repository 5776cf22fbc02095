"""``gw exec --profile P`` without a command: a shell with the credentials, as aws-vault's
``exec`` does (99designs/aws-vault, cli/exec.go: no command means ``$SHELL``, and a nested
exec is noticed through the variable the outer one set, there ``AWS_VAULT``)."""

from __future__ import annotations

#: set by ``gw exec`` in the child's environment: the profile whose credentials it holds
MARKER = "GW_EXEC_PROFILE"


def command_or_shell(command: list[str], profile: str, ui, environ: dict[str, str]) -> list[str]:
    """``command``, or the user's shell (``$SHELL``, else /bin/sh) when none was given.

    Inside another ``gw exec`` it warns: the outer profile's credentials are replaced
    only for the new child, and ``exit`` leaves the inner shell first.
    """
    outer = environ.get(MARKER)
    if outer:
        ui.warn(f"already inside gw exec for profile {outer!r}; the new one nests inside it "
                f"(type exit to leave a gw exec shell)")
    if command:
        return command
    shell = environ.get("SHELL") or "/bin/sh"
    ui.info(f"starting {shell} with the credentials of profile {profile!r}; type exit to leave it")
    return [shell]


def mark(env: dict[str, str], profile: str) -> dict[str, str]:
    """The child's environment, marked as inside ``gw exec`` for ``profile``."""
    env["GW_PROFILE"] = env[MARKER] = profile
    return env
