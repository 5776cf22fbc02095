"""Every help page fits 80 columns (issue 18, "80 columns and pipes"): prose is wrapped,
example lines are kept (or continued with a backslash), plugins' pages included."""

from __future__ import annotations

import argparse

from gw.helpfmt import fill


def _pages(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _pages(sub, (*path, name))
    return found


def test_every_help_page_fits_80_columns(gw_home, monkeypatch):
    from gw.app import App
    from gw.cli import build_parser

    gw_home.write_config('[profiles.a]\nsteps = [ { use = "aws-keys", access_key_id = "x", '
                         'secret_access_key = "vault:s" } ]\n')
    for key, value in gw_home.env.items():
        monkeypatch.setenv(key, value)
    pages = _pages(build_parser(App(), ["completion", "bash"]))
    assert len(pages) > 30  # the plugins' commands are there too
    too_wide = {}
    for path in pages:
        result = gw_home.run_in_process(*path, "--help", env={"COLUMNS": "80"})
        assert result.returncode == 0, (path, result.stderr)
        wide = [line for line in result.stdout.splitlines() if len(line) > 80]
        if wide:
            too_wide[" ".join(path) or "gw"] = wide
    assert not too_wide, too_wide


def test_prose_is_wrapped_and_examples_are_kept():
    text = ("A paragraph " * 20).strip() + "\n\nexamples:\n  gw exec --profile admin -- aws s3 ls\n" \
        "  " + "word " * 30
    lines = fill(text, 60).splitlines()
    assert all(len(line) <= 60 for line in lines)
    assert "  gw exec --profile admin -- aws s3 ls" in lines
    assert lines[lines.index("examples:") + 2].endswith(" \\")  # a long example line is continued
