"""Help pages that fit the terminal: prose is wrapped, example blocks keep their lines.

argparse's ``RawDescriptionHelpFormatter`` prints descriptions and epilogs as written,
so a one-line paragraph of 280 characters stays one line. :class:`WrappingFormatter`
wraps each paragraph (lines that start at the margin) to the terminal width and keeps
indented lines (examples, tables) as they are; an indented line that is still too wide
is broken at spaces with a shell continuation (`` \\``), so it can still be pasted.
"""

from __future__ import annotations

import argparse
import textwrap


def fill(text: str, width: int, indent: str = "") -> str:
    """``text`` with its prose paragraphs wrapped to ``width`` and indented lines kept."""
    width = max(width, 20)
    out: list[str] = []
    prose: list[str] = []

    def flush() -> None:
        if prose:
            hang = "  " if prose[0].startswith(("- ", "* ")) else ""
            out.extend(textwrap.wrap(" ".join(line.strip() for line in prose), width,
                                     initial_indent=indent, subsequent_indent=indent + hang,
                                     break_on_hyphens=False, break_long_words=False) or [indent])
            prose.clear()

    for line in text.splitlines():
        if not line.strip():
            flush()
            out.append("")
        elif line[:1].isspace() or line.rstrip().endswith(":") and len(line) < width:
            flush()
            out.extend(_indented(indent + line.rstrip(), width))
        else:
            if line.startswith(("- ", "* ")):  # a list item starts a paragraph of its own
                flush()
            prose.append(line)
    flush()
    return "\n".join(out)


def _indented(line: str, width: int) -> list[str]:
    """An indented line; when too wide, a trailing remark (after two spaces) moves to the next
    lines, and a command still too wide is broken at spaces with `` \\`` and four more spaces."""
    if len(line) <= width:
        return [line]
    margin = line[: len(line) - len(line.lstrip())]
    command, gap, remark = line.strip().partition("   ")
    out = _continued(margin, command, width)
    if gap and remark.strip():
        out += textwrap.wrap(remark.strip(), width, initial_indent=margin + "    ", subsequent_indent=margin + "    ",
                             break_on_hyphens=False, break_long_words=False)
    return out


def _continued(margin: str, command: str, width: int) -> list[str]:
    if len(margin) + len(command) <= width:
        return [margin + command]
    pieces = textwrap.wrap(command, width - len(margin) - 6, break_on_hyphens=False, break_long_words=False)
    if len(pieces) < 2:
        return [margin + command]
    return [margin + pieces[0] + " \\"] + [margin + "    " + p + " \\" for p in pieces[1:-1]] + \
        [margin + "    " + pieces[-1]]


class WrappingFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs wrapped to the terminal; example blocks kept (see :func:`fill`)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return fill(text, width, indent)

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False) or [""]

    def _metavar_formatter(self, action, default_metavar):
        if _long_choices(action):  # {a,b,...} wider than a usage line: named, and listed in the help
            return super()._metavar_formatter(_named(action, default_metavar), default_metavar)
        return super()._metavar_formatter(action, default_metavar)

    def _format_action(self, action: argparse.Action) -> str:
        if _long_choices(action) and action.help is not argparse.SUPPRESS:
            import copy

            choices = ", ".join(str(c) for c in action.choices or ())
            action = copy.copy(action)
            action.help = f"{action.help or ''} (one of: {choices})".strip()
        return super()._format_action(action)


def _long_choices(action: argparse.Action) -> bool:
    return (action.metavar is None and action.choices is not None and not isinstance(action.choices, dict)
            and len(",".join(str(c) for c in action.choices)) > 40)


def _named(action: argparse.Action, default_metavar: str) -> argparse.Action:
    import copy

    named = copy.copy(action)
    named.choices = None
    named.metavar = default_metavar
    return named


def apply(parser: argparse.ArgumentParser) -> None:
    """Give ``parser`` and every subcommand's parser the wrapping formatter.

    Plugins build their parsers with argparse's own formatters; the raw ones are
    replaced (the default ``HelpFormatter`` already wraps).
    """
    if parser.formatter_class in (argparse.RawDescriptionHelpFormatter, argparse.HelpFormatter):
        parser.formatter_class = WrappingFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in set(action.choices.values()):
                apply(sub)
