"""Adding the ``credential_process`` line to ``~/.aws/config`` (``gw setup aws``).

Edits by lines, so comments, ordering and every other profile stay exactly as
they were; keeps a backup beside the file and writes atomically.
"""

from __future__ import annotations

import os
import re
import shlex

from gw.plugin import ConfigError, atomic_write, private_dir

SECTION = re.compile(r"^\s*\[\s*(.+?)\s*\]\s*(?:[#;].*)?$")
KEY = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*=")


def aws_config_path() -> str:
    return os.path.expanduser(os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config")


def credential_process_command(gw_executable: str, profile: str) -> str:
    """The command line botocore will split with shlex (and Go runs through sh -c)."""
    return f"{shlex.quote(gw_executable)} credential-process --profile {shlex.quote(profile)}"


def set_credential_process(path: str, aws_profile: str, command: str, extra: dict[str, str] | None = None) -> str:
    """Add or update the profile's ``credential_process``; returns "added" or "updated"."""
    if not re.fullmatch(r"[A-Za-z0-9_.@-]+", aws_profile):
        raise ConfigError(f"AWS profile name {aws_profile!r} has characters AWS config files cannot hold")
    section = "default" if aws_profile == "default" else f"profile {aws_profile}"
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines(keepends=True)
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        lines, mode = [], 0o600
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text; not touching it") from None
    settings = {"credential_process": command, **(extra or {})}

    start = end = None
    for i, line in enumerate(lines):
        m = SECTION.match(line)
        if m:
            if start is not None:
                end = i
                break
            if m.group(1) == section:
                start = i
    if start is not None and end is None:
        end = len(lines)
    if start is None:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        if lines and lines[-1].strip():
            lines.append("\n")
        lines.append(f"[{section}]\n")
        lines += [f"{k} = {v}\n" for k, v in settings.items()]
        outcome = "added"
    else:
        assert end is not None
        body = lines[start + 1 : end]
        remaining = dict(settings)
        for i, line in enumerate(body):
            m = KEY.match(line)
            if m and m.group(1) in remaining:
                body[i] = f"{m.group(1)} = {remaining.pop(m.group(1))}\n"
        insert_at = len(body)
        while insert_at > 0 and not body[insert_at - 1].strip():
            insert_at -= 1
        body[insert_at:insert_at] = [f"{k} = {v}\n" for k, v in remaining.items()]
        if body and insert_at > 0 and not body[insert_at - 1].endswith("\n"):
            body[insert_at - 1] += "\n"
        lines[start + 1 : end] = body
        outcome = "updated"

    private_dir(os.path.dirname(path))
    if os.path.exists(path):
        # Created 0600 from the start (a copy would be umask-readable until a chmod).
        with open(path, "rb") as f:
            atomic_write(path + ".gw-backup", f.read(), 0o600)
    atomic_write(path, "".join(lines).encode(), mode)
    return outcome
