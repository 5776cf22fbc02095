"""Adding the ``credential_process`` line to ``~/.aws/config`` (``gw setup aws``, ``gw import aws``).

Edits by lines, so comments, ordering, line endings (LF, CRLF or CR) and every other
profile stay byte for byte; keeps a backup beside the file and writes atomically.

Lines are classified the way botocore reads the file (botocore/configloader.py
``raw_config_parse``: a default ``configparser.RawConfigParser`` over a text-mode
file): a header is a stripped line matching ``SECTCRE`` and names exactly the text
between its first ``[`` and last ``]`` (``[ profile dev]`` is the section
`` profile dev``, which botocore does not take for a profile); an option name is
case-insensitive; a line indented deeper than its option continues that option's
value (even one that looks like a header), across blank and comment lines.

botocore is also the judge. A file it cannot parse is refused untouched; so is one
where another section spelling maps to the same profile (``build_profile_map``:
``[profile<TAB>dev]`` and ``[profile  dev ]`` are profile ``dev`` as well). After
writing, the file is read again with botocore's loader: the profile must hold exactly
gw's lines and nothing else may differ, or the file is put back as it was.

A symlinked config is written through the link (the target is replaced, the
link stays); anything but a regular file at the path is refused.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import stat
from dataclasses import dataclass
from typing import Any

from gw.plugin import ConfigError, atomic_write, private_dir

_PARSER = configparser.RawConfigParser  # botocore's parser, with its default settings
NEWLINE = re.compile(r"\r\n|\r|\n")  # universal newlines, as a text-mode read splits lines
REGION = re.compile(r"[a-z]{2}(?:-[a-z0-9]+){1,4}")
MAX_SIZE = 4 * 1024 * 1024


@dataclass(frozen=True)
class Line:
    """How configparser reads one line: ``kind`` is header, option, value (a continuation),
    blank (blank or a comment) or other (a line it refuses); ``name`` is the section or
    the lowercased option name; ``indent`` is the line's own, ``level`` the indent a later
    line must exceed to continue an option (``None`` when no option is open after it)."""

    kind: str
    name: str = ""
    indent: int = 0
    level: int | None = None


def classify(lines: list[str]) -> list[Line]:
    """configparser's reading of each line (``RawConfigParser._read`` with default settings)."""
    out: list[Line] = []
    in_section = False
    level: int | None = None  # indent of the open option (None: no option to continue)
    for line in lines:
        stripped = line.strip()
        first = _PARSER.NONSPACECRE.search(line)
        indent = first.start() if first else 0
        if not stripped or stripped.startswith(("#", ";")):
            out.append(Line("blank", "", indent, level))  # neither ends a value nor starts anything
            continue
        if in_section and level is not None and indent > level:
            out.append(Line("value", "", indent, level))
            continue
        header = _PARSER.SECTCRE.match(stripped)
        found = _PARSER.OPTCRE.match(stripped) if in_section and not header else None
        if header:
            in_section, level = True, None
            out.append(Line("header", header.group("header"), indent, level))
        elif found and found.group("option").rstrip():
            level = indent
            out.append(Line("option", found.group("option").rstrip().lower(), indent, level))
        else:
            level = None if level is None else indent
            out.append(Line("other", "", indent, level))
    return out


def section_span(lines: list[str], section: str, kinds: list[Line] | None = None) -> tuple[int, int] | None:
    """(header line, end) of the section named exactly ``section``, or None when it is absent."""
    kinds = kinds if kinds is not None else classify(lines)
    start = None
    for i, kind in enumerate(kinds):
        if kind.kind == "header":
            if start is not None:
                return start, i
            if kind.name == section:
                start = i
    return None if start is None else (start, len(lines))


def value_end(kinds: list[Line], i: int, end: int) -> int:
    """Index after the last continuation line of the option on line ``i``."""
    j = stop = i + 1
    while j < end and kinds[j].kind in ("value", "blank"):
        j += 1
        if kinds[j - 1].kind == "value":
            stop = j
    return stop


def split_lines(text: str) -> list[str]:
    """``text`` cut after each line end a text-mode read sees (LF, CRLF, CR), ends kept."""
    lines, at = [], 0
    for m in NEWLINE.finditer(text):
        lines.append(text[at:m.end()])
        at = m.end()
    if at < len(text):
        lines.append(text[at:])
    return lines


def _ending(line: str) -> str:
    m = NEWLINE.search(line)
    return m.group() if m else ""


def aws_config_path() -> str:
    return os.path.expanduser(os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config")


def credential_process_command(gw_executable: str, profile: str) -> str:
    """The command line botocore will split with shlex (and Go runs through sh -c)."""
    return f"{shlex.quote(gw_executable)} credential-process --profile {shlex.quote(profile)}"


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


def profile_section(aws_profile: str) -> str:
    return "default" if aws_profile == "default" else f"profile {aws_profile}"


def _shown(section: str) -> str:
    return "[" + section.encode("unicode_escape").decode("ascii") + "]"


def _why(error: BaseException) -> str:
    """What configparser refused, by line number and name (never a line's text: it may hold a key)."""
    if isinstance(error, configparser.DuplicateSectionError):
        return f"line {error.lineno}: section {_shown(error.section)} appears twice"
    if isinstance(error, configparser.DuplicateOptionError):
        return f"line {error.lineno}: {error.option!r} appears twice in {_shown(error.section)}"
    if isinstance(error, configparser.MissingSectionHeaderError):
        return f"line {error.lineno}: text before the first [section]"
    if isinstance(error, configparser.ParsingError):
        return f"line {error.errors[0][0]}: not a 'name = value' line"
    if isinstance(error, UnicodeDecodeError):
        return "not text in this system's encoding"
    return "an indented block of settings that is not 'name = value' lines"


def botocore_view(path: str) -> dict[str, Any] | None:
    """The file as botocore's loader reads it (section -> settings), None when it is missing.

    A file botocore cannot parse is a :class:`ConfigError`: gw does not touch it.
    """
    from botocore.configloader import raw_config_parse
    from botocore.exceptions import ConfigNotFound, ConfigParseError

    try:
        return raw_config_parse(path)
    except ConfigNotFound:
        return None
    except ConfigParseError as exc:
        raise ConfigError(f"botocore cannot read {path} ({_why(exc.kwargs.get('error') or exc)}); "
                          "fix that first, gw leaves the file unchanged") from None


def _profiles(raw: dict[str, Any] | None) -> dict[str, Any]:
    from botocore.configloader import build_profile_map

    return build_profile_map(raw or {})


def check_profile_sections(path: str, raw: dict[str, Any] | None, aws_profile: str) -> None:
    """Refuse when botocore would also take ``aws_profile`` from a section spelled otherwise."""
    from botocore.configloader import build_profile_map

    section = profile_section(aws_profile)
    for key in raw or {}:
        if key != section and aws_profile in build_profile_map({key: {}})["profiles"]:
            raise ConfigError(f"botocore also reads profile {aws_profile!r} from section {_shown(key)} in {path}; "
                              f"spell it [{section}] or remove it, then run again (the file is unchanged)")


def _difference(before: dict[str, Any], after: dict[str, Any], aws_profile: str, settings: dict[str, str]) -> str | None:
    """What botocore reads differently from what gw meant to write (None: exactly gw's change)."""
    old = before["profiles"].get(aws_profile)
    new = after["profiles"].get(aws_profile) or {}
    for key, value in settings.items():
        if new.get(key) != value:
            return f"{key} = {value} in profile {aws_profile!r}"
    if old is not None and {k: v for k, v in new.items() if k not in settings} != \
            {k: v for k, v in old.items() if k not in settings}:
        return f"the other settings of profile {aws_profile!r} as they were"
    for part in ("profiles", "sso_sessions", "services"):
        names = set(before[part]) | set(after[part])
        for name in sorted(names - ({aws_profile} if part == "profiles" else set())):
            if before[part].get(name) != after[part].get(name):
                return f"{part.replace('_', '-').rstrip('s')} {name!r} as it was"
    others = {k: v for k, v in before.items() if k not in ("profiles", "sso_sessions", "services")}
    if others != {k: v for k, v in after.items() if k not in ("profiles", "sso_sessions", "services")}:
        return "the other sections as they were"
    return None


def load_checked(path: str, aws_profile: str) -> tuple[str, str | None, int, dict[str, Any] | None]:
    """(file written, its text or None, mode, botocore's reading) of the config at ``path``, refused
    (:class:`ConfigError`) when gw cannot edit ``aws_profile`` there safely. ``gw import aws`` calls it
    before it changes anything."""
    target = os.path.realpath(path) if os.path.islink(path) else path
    text, mode = _read(target)
    raw = botocore_view(target) if text is not None else None
    check_profile_sections(target, raw, aws_profile)
    return target, text, mode, raw


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
    section = profile_section(aws_profile)

    target, text, mode, raw = load_checked(path, aws_profile)
    before = _profiles(raw)
    lines = split_lines(text or "")
    newline = (_ending(lines[0]) if lines else "") or "\n"
    kinds = classify(lines)

    start, end = section_span(lines, section, kinds) or (None, None)
    if start is None:
        if lines and not _ending(lines[-1]):
            lines[-1] += newline
        if lines and lines[-1].strip():
            lines.append(newline)
        lines.append(f"[{section}]{newline}")
        lines += [f"{k} = {v}{newline}" for k, v in settings.items()]
        outcome = "added"
    else:
        assert end is not None
        body: list[str] = []
        state: list[Line] = []  # how botocore reads each body line
        remaining = dict(settings)
        i = start + 1
        while i < end:
            kind = kinds[i]
            if kind.kind == "option" and kind.name in settings:
                line = lines[i]
                if kind.name in remaining:  # replace it (and its continuation lines) in place
                    indent = line[: len(line) - len(line.lstrip(" \t"))]
                    body.append(f"{indent}{kind.name} = {remaining.pop(kind.name)}{_ending(line) or newline}")
                    state.append(kind)
                i = value_end(kinds, i, end)
                continue
            body.append(lines[i])
            state.append(kind)
            i += 1
        insert_at = len(body)  # new lines go after the last setting, before trailing blanks and comments
        while insert_at > 0 and state[insert_at - 1].kind == "blank":
            insert_at -= 1
        # Indented so that neither the new line continues an open option nor the next line continues it.
        level = state[insert_at - 1].level if insert_at > 0 else None
        if level is None:
            following = next((k for k in kinds[end:] if k.kind != "blank"), None)
            level = following.indent if following is not None else 0
        pad = " " * level
        if remaining:
            before_line = body[insert_at - 1] if insert_at > 0 else lines[start]
            if not _ending(before_line):
                if insert_at > 0:
                    body[insert_at - 1] += newline
                else:
                    lines[start] += newline
        body[insert_at:insert_at] = [f"{pad}{k} = {v}{newline}" for k, v in remaining.items()]
        lines[start + 1 : end] = body
        outcome = "updated"

    directory = os.path.dirname(target) or "."
    if not os.path.isdir(directory):
        private_dir(directory)
    backup = target + ".gw-backup"
    if text is not None:
        try:
            atomic_write(backup, text.encode("utf-8"), 0o600)
        except OSError as exc:
            raise ConfigError(f"cannot write the backup {backup}: {exc.strerror}; {target} is unchanged") from None
    try:
        atomic_write(target, "".join(lines).encode("utf-8"), mode)
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {exc.strerror}; it is unchanged") from None
    _verify(target, text, mode, before, aws_profile, settings)
    return outcome


def _verify(target: str, text: str | None, mode: int, before: dict[str, Any], aws_profile: str,
            settings: dict[str, str]) -> None:
    """Read the written file with botocore's loader; put the old one back unless it shows exactly gw's change."""
    from botocore.configloader import raw_config_parse
    from botocore.exceptions import BotoCoreError

    try:
        missing = _difference(before, _profiles(raw_config_parse(target)), aws_profile, settings)
        problem = f"botocore would not read {missing} from the edited {target}"
    except BotoCoreError as exc:
        missing = problem = f"botocore could not read the edited {target} ({_why(exc.kwargs.get('error') or exc)})"
    if missing is None:
        return
    try:
        if text is None:
            os.unlink(target)
        else:
            atomic_write(target, text.encode("utf-8"), mode)
    except OSError as exc:
        raise ConfigError(f"{problem}, and putting it back failed ({exc.strerror}): restore it from "
                          f"{target}.gw-backup") from None
    raise ConfigError(f"{problem}; it is back as it was, edit that profile by hand")
