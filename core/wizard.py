"""``gw init``: a first profile without hand-written TOML, in the spirit of aws-vault's ``add``
(99designs/aws-vault, cli/add.go: the key ID is asked in the clear, the secret without echo,
and stored in the keyring, never in a file).

It asks what the credential is, asks for each value on ``/dev/tty`` (secrets without echo),
stores the secrets in gw's vault, writes a commented profile into the config (created 0600
when missing, appended otherwise; an existing profile is never replaced) and ends with
``gw check``. Nothing is written until every question is answered.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import ConfigError, UsageError

PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}\Z")


@dataclass
class Answers:
    """What the questions gave: the profile's steps and the secrets to store (vault name -> value)."""

    title: str
    steps: list[dict[str, object]]
    secrets: dict[str, str] = field(default_factory=dict)
    region: str | None = None
    notes: list[str] = field(default_factory=list)


Ask = Callable[..., str]


def say(text: str) -> None:
    """Text for the person at the terminal (the menu, a hint), on ``/dev/tty`` like the prompts."""
    try:
        fd = os.open("/dev/tty", os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        raise UsageError("gw init asks its questions on a terminal; run it in one") from None
    try:
        os.write(fd, text.replace("\n", "\r\n").encode("utf-8", "replace") + b"\r\n")
    finally:
        os.close(fd)


def _value(ask: Ask, label: str, default: str | None = None, pattern: str | None = None) -> str:
    """A visible answer (``default`` when empty); asked again while it does not fit ``pattern``."""
    for _ in range(5):
        shown = f" [{default}]" if default else ""
        answer = ask(f"{label}{shown}: ", secret=False).strip() or (default or "")
        if pattern is None or re.fullmatch(pattern, answer):
            return answer
        say(f"  that does not look right (expected: {pattern})")
    raise UsageError(f"no valid answer for {label!r}")


def _secret(ask: Ask, label: str) -> str:
    for _ in range(3):
        answer = ask(f"{label} (not shown): ", secret=True).strip()
        if answer:
            return answer
    raise UsageError(f"{label} is needed")


def _aws_keys(ask: Ask, name: str) -> Answers:
    akid = _value(ask, "AWS access key ID", pattern=r"A[KS]IA[A-Z0-9]{12,124}")
    secret = _secret(ask, "AWS secret access key")
    ids = f"{name}.aws_access_key_id", f"{name}.aws_secret_access_key"
    answers = Answers("AWS access keys of an IAM user, turned into a session token",
                      [{"use": "aws-keys", "access_key_id": f"vault:{ids[0]}", "secret_access_key": f"vault:{ids[1]}"}],
                      {ids[0]: akid, ids[1]: secret})
    session: dict[str, object] = {"use": "session-token"}
    serial = _value(ask, "MFA device ARN (empty: no MFA)", default="", pattern=r"(arn:aws[\w-]*:iam::\d{12}:mfa/\S+)?")
    if serial:
        seed = ask("TOTP seed of that device, for codes without typing (empty: type each code; not shown): ",
                   secret=True).strip()
        session.update(mfa_serial=serial, mfa_code=f"totp:vault:{name}.mfa_seed" if seed else "prompt")
        if seed:
            answers.secrets[f"{name}.mfa_seed"] = seed
    answers.steps.append(session)
    role = _value(ask, "Role ARN to assume with it (empty: none)", default="", pattern=r"(arn:aws[\w-]*:iam::\d{12}:role/\S+)?")
    if role:
        answers.steps.append({"use": "assume-role", "role_arn": role})
        answers.title += ", then a role"
    answers.region = _value(ask, "Region (empty: none)", default="", pattern=r"([a-z]{2}(-[a-z]+)+-\d)?") or None
    return answers


def _soracom_authkey(ask: Ask, name: str) -> Answers:
    key_id = _value(ask, "SORACOM AuthKey ID", pattern=r"keyId-\S+")
    key = _secret(ask, "SORACOM AuthKey secret")
    names = f"{name}.soracom_auth_key_id", f"{name}.soracom_auth_key"
    answers = Answers("a SORACOM AuthKey (SAM user or root)",
                      [{"use": "soracom-keys", "auth_key_id": f"vault:{names[0]}", "auth_key": f"vault:{names[1]}"}],
                      {names[0]: key_id, names[1]: key})
    answers.notes.append('add { use = "soracom-auth" } to the steps for an API session (gw soracom, gw token)')
    return answers


def _soracom_sam(ask: Ask, name: str) -> Answers:
    operator = _value(ask, "SORACOM operator ID", pattern=r"OP\d{10}")
    user = _value(ask, "SAM user name", pattern=r"[\w.@+-]+")
    password = _secret(ask, "SAM user password")
    step: dict[str, object] = {"use": "soracom-keys", "operator_id": operator, "username": user,
                               "password": f"vault:{name}.soracom_password"}
    answers = Answers("a SORACOM SAM user", [step], {f"{name}.soracom_password": password})
    seed = ask("TOTP seed of the user's MFA (empty: no MFA; not shown): ", secret=True).strip()
    if seed:
        step["mfa_code"] = f"totp:vault:{name}.soracom_mfa_seed"
        answers.secrets[f"{name}.soracom_mfa_seed"] = seed
    answers.notes.append('add { use = "soracom-auth" } to the steps for an API session (gw soracom, gw token)')
    return answers


def _onepassword(ask: Ask, name: str) -> Answers:
    item = _value(ask, "1Password item (title or id)", pattern=r".+")
    vault = _value(ask, "1Password vault (empty: the default)", default="")
    kind = _value(ask, "It holds 1) AWS access keys or 2) a SORACOM login", default="1", pattern=r"[12]")
    step: dict[str, object] = {"use": "onepassword", "item": item}
    if vault:
        step["vault"] = vault
    if kind == "1":
        step.update(produces="aws-credentials", fields={
            "access_key_id": _value(ask, "its field with the access key ID", default="access key id"),
            "secret_access_key": _value(ask, "its field with the secret access key", default="secret access key")})
        steps: list[dict[str, object]] = [step, {"use": "session-token"}]
        title = "AWS access keys kept in 1Password, turned into a session token"
    else:
        step.update(produces="soracom-credentials", fields={
            "email": _value(ask, "its field with the email", default="username"),
            "password": _value(ask, "its field with the password", default="password")})
        steps, title = [step], "a SORACOM root login kept in 1Password"
    return Answers(title, steps)


#: the menu: (what the person sees, the questions that follow)
KINDS: list[tuple[str, Callable[[Ask, str], Answers]]] = [
    ("AWS access keys of an IAM user (a session token from them; optional MFA and role)", _aws_keys),
    ("SORACOM AuthKey (SAM user or root)", _soracom_authkey),
    ("SORACOM SAM user: operator ID, user name, password (optional TOTP)", _soracom_sam),
    ("1Password item holding AWS keys or a SORACOM login (read with op)", _onepassword),
]


def profile_text(name: str, answers: Answers) -> str:
    """The profile as commented TOML (values quoted by tomli-w)."""
    import tomli_w

    def inline(value: object) -> str:
        if isinstance(value, dict):
            return "{ " + ", ".join(f"{k} = {inline(v)}" for k, v in value.items()) + " }"
        return tomli_w.dumps({"v": value})[4:].strip()

    key = name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else inline(name)
    lines = [f"# added by gw init on {time.strftime('%Y-%m-%d')}: {answers.title}",
             "# secrets are in gw's vault (gw vault list); the values below are references to them",
             f"[profiles.{key}]", f"description = {inline(answers.title)}"]
    if answers.region:
        lines.append(f"region = {inline(answers.region)}")
    lines += [f"# {note}" for note in answers.notes]
    lines.append("steps = [")
    lines += [f"  {inline(step)}," for step in answers.steps]
    lines.append("]")
    return "\n".join(lines) + "\n"


def _existing(path: str) -> tuple[bytes, dict]:
    import tomllib

    try:
        with open(path, "rb") as f:
            before = f.read()
    except FileNotFoundError:
        return b"", {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return before, tomllib.loads(before.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}); fix it before adding a profile") from None


def write_profile(path: str, name: str, text: str) -> bool:
    """Append ``text`` to the config (created 0600 in a 0700 directory when missing); True if created."""
    from .config_append import append_to_config

    before, parsed = _existing(path)
    if name in parsed.get("profiles", {}):
        raise ConfigError(f"profile {name!r} already exists in {path}; choose another name")
    return append_to_config(path, ("\n" if before else "") + text, what=f"profile {name!r}",
                            expect=lambda parsed: name in parsed.get("profiles", {}))


def run(ns, app) -> tuple[str, str]:
    """``gw init``: ask, store the secrets, write the profile; (config path, profile name)."""
    from functools import partial

    from .prompt import ask as ask_tty

    ask = partial(ask_tty, empty_ok=True)

    path = app.config_file
    _, parsed = _existing(path)  # an unreadable config is refused before any question
    taken = set(parsed.get("profiles", {}))
    if ns.profile in taken:
        raise ConfigError(f"profile {ns.profile!r} already exists in {path}; choose another name")
    say(f"gw init: a new profile in {path}\nWhat is the credential?\n"
        + "\n".join(f"  {number}) {label}" for number, (label, _) in enumerate(KINDS, 1)))
    choice = _value(ask, f"Choose 1-{len(KINDS)}", default="1", pattern=f"[1-{len(KINDS)}]")
    name = ns.profile or _value(ask, "Profile name", default="default" if "default" not in taken else None,
                                pattern=PROFILE_NAME.pattern.removesuffix(r"\Z"))
    if not PROFILE_NAME.match(name):
        raise UsageError(f"{name!r} cannot be a profile name (letters, digits, _ . @ -)")
    if name in taken:
        raise ConfigError(f"profile {name!r} already exists in {path}; choose another name")
    answers = KINDS[int(choice) - 1][1](ask, name)
    for value in answers.secrets.values():
        app.ui.scrubber.add(value)
    held = set(app.vault.names()) & set(answers.secrets)
    if held:
        raise ConfigError(f"the vault already holds {', '.join(sorted(held))}; remove it (gw vault rm NAME) "
                          "or choose another profile name")
    for vault_name, value in answers.secrets.items():
        app.vault.set(vault_name, value)
    created = write_profile(path, name, profile_text(name, answers))
    stored = f"; stored {', '.join(answers.secrets)} in gw's vault" if answers.secrets else ""
    app.emit(f"{'created' if created else 'added profile ' + repr(name) + ' to'} {path}{stored}")
    return path, name


def print_example(ns, app) -> int:
    """``gw config example``: the commented example config shipped with gw (package data)."""
    import sys
    from importlib.resources import files

    sys.stdout.buffer.write(files("gw").joinpath("config.example.toml").read_bytes())
    sys.stdout.flush()
    return 0
