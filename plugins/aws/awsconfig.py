"""Adding the ``credential_process`` line to ``~/.aws/config`` (``gw setup aws``).

Edits by lines, so comments, ordering, line endings (LF or CRLF) and every other
profile stay byte for byte; keeps a backup beside the file and writes atomically.

The file is read the way botocore reads it (botocore/configloader.py:
``raw_config_parse`` with ``configparser.RawConfigParser``): option names are
case-insensitive (``optionxform`` lowercases them), ``=`` and ``:`` both separate
a name from its value, and an indented line after an option continues its value.
So ``Credential_Process`` is the same key as ``credential_process``, and the
continuation lines of an old value go with it when it is replaced.

A symlinked config is written through the link (the target is replaced, the
link stays); anything but a regular file at the path is refused.
"""

from __future__ import annotations

import os
import re
import shlex
import stat

from gw.plugin import ConfigError, atomic_write, private_dir

SECTION = re.compile(r"^\s*\[\s*(.+?)\s*\]\s*(?:[#;].*)?$")
KEY = re.compile(r"^\s*([^=:\s\[#;][^=:]*?)\s*[=:]")  # group 1: the option name (importer.py uses it too)
REGION = re.compile(r"[a-z]{2}(?:-[a-z0-9]+){1,4}")
MAX_SIZE = 4 * 1024 * 1024


def section_span(lines: list[str], section: str) -> tuple[int, int] | None:
    """(header line, end) of ``[section]`` in an INI file's lines, or None when it is absent."""
    start = None
    for i, line in enumerate(lines):
        m = SECTION.match(line)
        if m:
            if start is not None:
                return start, i
            if m.group(1) == section:
                start = i
    return None if start is None else (start, len(lines))


def aws_config_path() -> str:
    return os.path.expanduser(os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config")


def credential_process_command(gw_executable: str, profile: str) -> str:
    """The command line botocore will split with shlex (and Go runs through sh -c)."""
    return f"{shlex.quote(gw_executable)} credential-process --profile {shlex.quote(profile)}"


def _lines(text: str) -> list[str]:
    """``text`` split after each LF only (``str.splitlines`` also splits at \\x0b, \\u2028 ...)."""
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _read(path: str) -> tuple[str | None, int]:
    """(text or None when missing, mode) of the config at ``path``; never blocks on a FIFO."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return None, 0o600
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            what = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise ConfigError(f"{path} is {what}; gw setup aws edits only a regular file")
        if st.st_size > MAX_SIZE:
            raise ConfigError(f"{path} is larger than {MAX_SIZE} bytes; not touching it")
        data = b""
        while chunk := os.read(fd, 1 << 16):
            data += chunk
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8"), stat.S_IMODE(st.st_mode)
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text; not touching it") from None


def _check_value(name: str, value: str) -> None:
    if any(c in value for c in "\r\n\0") or value != value.strip():
        raise ConfigError(f"{name} must be one line without surrounding spaces")


def _continuation_end(body: list[str], i: int) -> int:
    """Index after the last continuation line of the option on line ``i`` (configparser's rule)."""
    indent = len(body[i]) - len(body[i].lstrip(" \t"))
    j = i + 1
    end = j
    while j < len(body):
        line = body[j]
        stripped = line.strip()
        if not stripped:
            j += 1  # blank lines belong to the value only if an indented line follows
            continue
        if len(line) - len(line.lstrip(" \t")) > indent and not SECTION.match(line):
            j += 1
            end = j
            continue
        break
    return end


def set_credential_process(path: str, aws_profile: str, command: str, extra: dict[str, str] | None = None) -> str:
    """Add or update the profile's ``credential_process``; returns "added" or "updated"."""
    if not re.fullmatch(r"[A-Za-z0-9_.@-]+", aws_profile):
        raise ConfigError(f"AWS profile name {aws_profile!r} has characters AWS config files cannot hold")
    extra = dict(extra or {})
    if "region" in extra and not REGION.fullmatch(extra["region"]):
        raise ConfigError(f"--region {extra['region']!r} is not an AWS region name (like eu-west-1)")
    settings = {"credential_process": command, **extra}
    for key, value in settings.items():
        _check_value(key, value)
    section = "default" if aws_profile == "default" else f"profile {aws_profile}"

    target = os.path.realpath(path) if os.path.islink(path) else path
    text, mode = _read(target)
    lines = _lines(text or "")
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"

    start, end = section_span(lines, section) or (None, None)
    if start is None:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += newline
        if lines and lines[-1].strip():
            lines.append(newline)
        lines.append(f"[{section}]{newline}")
        lines += [f"{k} = {v}{newline}" for k, v in settings.items()]
        outcome = "added"
    else:
        assert end is not None
        body = lines[start + 1 : end]
        remaining = {k.lower(): (k, v) for k, v in settings.items()}
        i = 0
        while i < len(body):
            m = KEY.match(body[i])
            name = m.group(1).strip().lower() if m else None
            if name in remaining:
                key, value = remaining.pop(name)
                ending = "\r\n" if body[i].endswith("\r\n") else newline
                stop = _continuation_end(body, i)
                indent = body[i][: len(body[i]) - len(body[i].lstrip(" \t"))]
                body[i:stop] = [f"{indent}{key} = {value}{ending}"]
            elif name is not None and any(name == k for k in (s.lower() for s in settings)):
                stop = _continuation_end(body, i)  # a second spelling of a key just written: drop it
                del body[i:stop]
                continue
            i += 1
        insert_at = len(body)
        while insert_at > 0 and not body[insert_at - 1].strip():
            insert_at -= 1
        body[insert_at:insert_at] = [f"{k} = {v}{newline}" for k, v in remaining.values()]
        if body and insert_at > 0 and not body[insert_at - 1].endswith("\n"):
            body[insert_at - 1] += newline
        lines[start + 1 : end] = body
        outcome = "updated"

    directory = os.path.dirname(target) or "."
    if not os.path.isdir(directory):
        private_dir(directory)
    if text is not None:
        backup = target + ".gw-backup"
        try:
            atomic_write(backup, text.encode("utf-8"), 0o600)
        except OSError as exc:
            raise ConfigError(f"cannot write the backup {backup}: {exc.strerror}; {target} is unchanged") from None
    try:
        atomic_write(target, "".join(lines).encode("utf-8"), mode)
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {exc.strerror}; it is unchanged") from None
    return outcome
