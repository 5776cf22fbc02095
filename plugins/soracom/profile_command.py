"""soracom-cli's rules for the two strings gw writes into its profile file.

* ``profileCommand`` is split into argv by mattn/go-shellwords ``Parse`` (no shell,
  no ``$VAR``/backtick expansion): gw writes a line that splits back to exactly the
  argv it means, or refuses (protocols.md section 3).
* ``--profile NAME`` is rewritten by soracom-cli with kennygrant/sanitize ``BaseName``
  before ``NAME.json`` is opened: gw only accepts names that survive it unchanged.
"""

from __future__ import annotations

import re

from gw.plugin import UsageError

# soracom-cli keeps a profile name as it is only when it is ASCII letters and digits,
# with single hyphens between them (sanitize.BaseName turns `. / space & _ = + :` into
# `-`, drops other characters and collapses runs of `-`).
_KEPT_NAME = re.compile(r"^[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*$")
_TO_HYPHEN = re.compile(r"[./ &_=+:]")
_BARE_SAFE = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")
_UNQUOTABLE = re.compile(r"[\x00-\x1f\x7f'`$\"\\]")


def soracom_profile_name_problem(name: str, *, origin: str = "SORACOM profile name") -> str | None:
    """None when soracom-cli opens ``NAME.json`` for ``--profile NAME``; else the one-line reason."""
    if _KEPT_NAME.fullmatch(name) and len(name) <= 64:
        return None
    suggestion = re.sub(r"-{2,}", "-", _TO_HYPHEN.sub("-", name.strip()))
    suggestion = re.sub(r"[^A-Za-z0-9-]", "", suggestion).strip("-")
    suggestion = re.sub(r"-{2,}", "-", suggestion)[:64].strip("-")
    hint = f"; use --soracom-profile {suggestion}" if suggestion else "; choose one with --soracom-profile"
    return (
        f"{origin} {name!r} would not reach soracom-cli as it is (it rewrites --profile names: "
        f"only ASCII letters, digits and single hyphens survive){hint}"
    )


def split_profile_command(command: str) -> list[str]:
    """Split like soracom-cli (go-shellwords ``Parse``): quotes honoured, a backslash
    escapes any character (also inside double quotes), no expansion, stop at ; & | < >."""
    args: list[str] = []
    buf: list[str] = []
    have = False
    quote: str | None = None
    i = 0
    while i < len(command):
        c = command[i]
        if quote == "'":
            if c == "'":
                quote = None
            else:
                buf.append(c)
        elif c == "\\" and i + 1 < len(command):
            i += 1
            nxt = command[i]
            buf.append({"t": "\t", "n": "\n"}.get(nxt, nxt))
            have = True
        elif quote == '"':
            if c == '"':
                quote = None
            else:
                buf.append(c)
        elif c in "'\"":
            quote = c
            have = True
        elif c in " \t\r\n":
            if have or buf:
                args.append("".join(buf))
            buf, have = [], False
        elif c in ";&|<>":
            break
        elif c in "()":
            raise ValueError("invalid command line string")
        else:
            buf.append(c)
        i += 1
    if quote is not None:
        raise ValueError("unterminated quote")
    if have or buf:
        args.append("".join(buf))
    return args


def _quote_word(word: str, what: str) -> str:
    if _BARE_SAFE.match(word):
        return word
    if _UNQUOTABLE.search(word):
        raise UsageError(f"the {what} {word!r} cannot be passed safely through soracom-cli's profileCommand")
    return f"'{word}'"


def profile_command(gw_path: str, profile: str) -> str:
    """The profileCommand line; refuses words that would not survive soracom-cli's splitting.

    No ``--coverage``: soracom-cli takes the coverage (and the endpoint) from the
    profile file, never from what the command prints.
    """
    words = [gw_path, "soracom-profile", "--profile", profile]
    line = " ".join(
        [_quote_word(gw_path, "gw path"), "soracom-profile", "--profile", _quote_word(profile, "profile name")]
    )
    try:
        same = split_profile_command(line) == words
    except ValueError:
        same = False
    if not same:
        raise UsageError("the gw path or profile name cannot be passed safely through soracom-cli's profileCommand")
    return line
