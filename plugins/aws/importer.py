"""``gw import aws``: move the plaintext keys of a ~/.aws profile into gw's vault.

Order matters, so that an interruption never loses the keys: (1) store them in the
vault (one atomic write) and read them back, (2) append the gw profile to gw's config
(backup, atomic write, the result must parse), (3) point the AWS profile's
``credential_process`` at gw (``gw setup aws``'s line editor: comments kept, backup,
atomic), (4) only when the person says so (a ``/dev/tty`` question or
``--remove-plaintext``) drop the two key lines from ~/.aws/credentials. That file gets
no backup: a backup would keep the very keys being removed.

By default the gw profile turns the keys into a session token (``aws-keys ->
session-token``, with the AWS profile's ``mfa_serial`` when it has one), as aws-vault does
(99designs/aws-vault, vault/vault.go: long-term keys go through GetSessionToken unless
``--no-session``), so the AKIA keys themselves are never handed out; ``--no-session``
keeps the keys-only profile. ``--all`` imports every profile of the file that holds keys.

The credentials file is read the way botocore reads it (``configparser``, section
names without the ``profile`` prefix; botocore ``configloader.raw_config_parse``).
"""

from __future__ import annotations

import configparser
import os
import re
from typing import Any

from gw.plugin import CommandContext, ConfigError, GwError, append_to_config, atomic_write, profile_option

from .awsconfig import (
    aws_config_path,
    classify,
    credential_process_command,
    load_checked,
    section_span,
    set_credential_process,
    split_lines,
    value_end,
)

KEY_NAMES = ("aws_access_key_id", "aws_secret_access_key")
PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}\Z")


def credentials_path() -> str:
    return os.path.expanduser(os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials")


def read_section(path: str, section: str) -> dict[str, str]:
    """The keys of ``[section]`` in an AWS ini file (empty when the file or section is missing)."""
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read as an AWS ini file ({type(exc).__name__})") from None
    return dict(parser.items(section)) if parser.has_section(section) else {}


def vault_names(profile: str) -> tuple[str, str]:
    return f"{profile}.aws_access_key_id", f"{profile}.aws_secret_access_key"


def profile_steps(profile: str, session: bool = False, mfa_serial: str | None = None) -> list[dict[str, str]]:
    """The imported profile's chain: the keys, then (``session``) GetSessionToken, with MFA when known."""
    akid, secret = vault_names(profile)
    steps = [{"use": "aws-keys", "access_key_id": f"vault:{akid}", "secret_access_key": f"vault:{secret}"}]
    if session:
        steps.append({"use": "session-token", **({"mfa_serial": mfa_serial, "mfa_code": "prompt"} if mfa_serial else {})})
    return steps


def profile_toml(name: str, description: str, region: str | None, steps: list[dict[str, str]]) -> str:
    """The gw profile as TOML text (strings quoted with tomli-w)."""
    import tomli_w

    def q(value: str) -> str:
        return tomli_w.dumps({"v": value})[4:].strip()

    lines = [f"[profiles.{q(name) if not re.fullmatch(r'[A-Za-z0-9_-]+', name) else name}]",
             f"description = {q(description)}"]
    if region:
        lines.append(f"region = {q(region)}")
    lines.append("steps = [")
    for step in steps:
        lines.append("  { " + ", ".join(f"{key} = {q(value)}" for key, value in step.items()) + " },")
    lines.append("]")
    return "\n".join(lines) + "\n"


def append_profile(path: str, text: str, name: str, steps: list[dict[str, str]]) -> None:
    """Append ``text`` to the gw config (created if missing), keeping every byte before it."""
    append_to_config(path, text, what=f"profile {name!r}",
                     expect=lambda parsed: parsed.get("profiles", {}).get(name, {}).get("steps") == steps)


def remove_plaintext(path: str, section: str) -> int:
    """Drop the key lines of ``[section]`` with their continuations (and the header, if nothing else is
    left); returns lines removed. Lines are read as botocore reads them (``awsconfig.classify``)."""
    with open(path, encoding="utf-8", newline="") as f:
        lines = split_lines(f.read())
    mode = os.stat(path).st_mode & 0o777
    kinds = classify(lines)
    span = section_span(lines, section, kinds)
    if span is None:
        return 0
    start, end = span
    body, i = [], start + 1
    while i < end:
        if kinds[i].kind == "option" and kinds[i].name in KEY_NAMES + ("aws_session_token",):
            i = value_end(kinds, i, end)
            continue
        body.append(lines[i])
        i += 1
    removed = (end - start - 1) - len(body)
    keep_header = any(line.strip() for line in body)
    lines[start:end] = [lines[start], *body] if keep_header else []
    atomic_write(path, "".join(lines).encode(), mode)
    return removed + (0 if keep_header else 1)


def _aws_settings(aws_profile: str) -> dict[str, str]:
    """The profile's section of ~/.aws/config (region, mfa_serial ...)."""
    return read_section(aws_config_path(), "default" if aws_profile == "default" else f"profile {aws_profile}")


def _wants_removal(args: Any, ctx: CommandContext, path: str, section: str) -> bool:
    if args.remove_plaintext:
        return True
    if args.keep_plaintext:
        return False
    try:
        answer = ctx.ask(f"Remove the plaintext keys of [{section}] from {path} now? [y/N] ", secret=False)
    except GwError:  # no terminal to ask on: never remove silently
        return False
    return answer.strip().lower() in ("y", "yes")


def run_import(args: Any, ctx: CommandContext) -> int:
    if args.all:
        if args.profile or args.aws_profile:
            raise ConfigError("--all imports every profile under its own name; drop --aws-profile and --profile")
        return import_all(args, ctx)
    if not args.aws_profile:
        raise ConfigError("name the AWS profile to import (--aws-profile NAME), or import them all (--all)")
    return import_one(args, ctx, args.aws_profile, args.profile or args.aws_profile)


def importable(path: str) -> list[str]:
    """Sections of the credentials file holding long-term keys (no session token)."""
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read as an AWS ini file ({type(exc).__name__})") from None
    return [name for name in parser.sections()
            if all(parser.has_option(name, key) for key in KEY_NAMES) and not parser.has_option(name, "aws_session_token")]


def import_all(args: Any, ctx: CommandContext) -> int:
    path = credentials_path()
    names = importable(path)
    if not names:
        raise ConfigError(f"no profile with aws_access_key_id and aws_secret_access_key in {path}")
    failed = 0
    for aws_profile in names:
        try:
            import_one(args, ctx, aws_profile, aws_profile)
        except GwError as exc:  # one profile's problem does not stop the others
            ctx.warn(f"[{aws_profile}] not imported: {exc}")
            failed += 1
    ctx.emit(f"imported {len(names) - failed} of {len(names)} profile(s) from {path}")
    return 1 if failed else 0


def import_one(args: Any, ctx: CommandContext, aws_profile: str, name: str) -> int:
    if not PROFILE_NAME.match(name):
        raise ConfigError(f"{name!r} cannot be a gw profile name (letters, digits, _ . @ -); choose one with --profile")
    path = credentials_path()
    section = read_section(path, aws_profile)
    akid, secret = section.get(KEY_NAMES[0]), section.get(KEY_NAMES[1])
    ctx.add_secret(secret)
    if section.get("aws_session_token"):
        raise ConfigError(f"[{aws_profile}] in {path} holds temporary keys (aws_session_token); nothing to import")
    if not akid or not secret:
        raise ConfigError(f"no [{aws_profile}] with aws_access_key_id and aws_secret_access_key in {path}")

    load_checked(aws_config_path(), aws_profile)  # a config gw cannot edit is refused before anything changes
    names = vault_names(name)
    for vault_name, value in zip(names, (akid, secret), strict=True):
        held = ctx.vault_get(vault_name)
        if held is not None and held != value:
            raise ConfigError(f"the vault already holds a different {vault_name!r}; remove it first "
                              f"(gw vault rm {vault_name}) or import under another --profile")
    config_path = ctx.config_path
    existing = ctx.profile_names() if os.path.exists(config_path) else []
    settings = _aws_settings(aws_profile)
    steps = profile_steps(name, session=not args.no_session, mfa_serial=settings.get("mfa_serial"))
    if name in existing and list(ctx.profile(name).steps) != steps:
        raise ConfigError(f"gw profile {name!r} already exists in {config_path}; import under another --profile")

    ctx.vault_set(dict(zip(names, (akid, secret), strict=True)))
    if (ctx.vault_get(names[0]), ctx.vault_get(names[1])) != (akid, secret):
        raise GwError("the vault did not keep the keys; nothing else was changed")
    region = args.region or settings.get("region") or None
    if name not in existing:
        kind = "long-term keys" if args.no_session else "a session token from the keys"
        append_profile(config_path, profile_toml(name, f"imported from AWS profile {aws_profile}: {kind}", region,
                                                 steps), name, steps)
    ctx.emit(f"stored the keys of [{aws_profile}] in gw's vault as {names[0]}, {names[1]}; "
             f"added profile {name!r} to {config_path}")

    aws_config = aws_config_path()
    command = credential_process_command(ctx.gw_executable(), name)
    outcome = set_credential_process(aws_config, aws_profile, command)
    ctx.emit(f"{outcome} [{'default' if aws_profile == 'default' else 'profile ' + aws_profile}] in {aws_config}: "
             f"credential_process = {command}")

    if _wants_removal(args, ctx, path, aws_profile):
        remove_plaintext(path, aws_profile)
        ctx.emit(f"removed the plaintext keys of [{aws_profile}] from {path} (no backup of that file is kept)")
    else:
        ctx.warn(f"the plaintext keys of [{aws_profile}] are still in {path}, and the AWS CLI and SDKs use them "
                 f"before credential_process; remove them (gw import aws --aws-profile {aws_profile} "
                 "--remove-plaintext) once gw works for you")
    return 0


def configure_import(parser: Any) -> None:
    parser.add_argument("--aws-profile", help="the profile in ~/.aws/credentials whose keys move")
    parser.add_argument("--all", action="store_true",
                        help="import every profile of ~/.aws/credentials that holds keys, each under its own name")
    parser.add_argument("--no-session", action="store_true",
                        help="hand out the long-term keys themselves (default: a session token made from them, "
                             "which gw exec --server and the ECS endpoint need)")
    profile_option(parser, "the gw profile to create (default: the AWS profile's name)", required=False)
    parser.add_argument("--region", help="region for the gw profile (default: the AWS profile's region)")
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--remove-plaintext", action="store_true",
                        help="remove the keys from ~/.aws/credentials without asking")
    choice.add_argument("--keep-plaintext", action="store_true", help="leave ~/.aws/credentials as it is")
