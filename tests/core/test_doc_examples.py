"""Every example a user may paste works: each ```toml block of README.md and docs/ parses and passes
its own checker (``gw check`` for gw configs), and each ```sh line that starts with ``gw `` parses
with gw's own command-line parser (plugins loaded)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from gw.testing import GwHome

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _blocks(language: str) -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for i, block in enumerate(re.findall(rf"^```{language}\n(.*?)^```", page.read_text(), re.S | re.M)):
            found.append((f"{page.relative_to(ROOT)}#{i + 1}", block))
    return found


TOML_BLOCKS = _blocks("toml")
SH_LINES = [
    (f"{where}: {line.strip()}", line.strip())
    for where, block in _blocks("sh")
    for line in block.splitlines()
    if line.strip().startswith("gw ")
]


def test_the_pages_have_examples_to_check():
    assert len(TOML_BLOCKS) >= 10 and len(SH_LINES) >= 12


@pytest.mark.parametrize(("where", "block"), TOML_BLOCKS, ids=[w for w, _ in TOML_BLOCKS])
def test_every_toml_example_parses_and_passes_its_checker(where, block, tmp_path):
    import tomllib

    document = tomllib.loads(block)  # a TOMLDecodeError here names the line and column
    if "profiles" in document or "settings" in document:
        home = GwHome.create(tmp_path)
        if "example-token" in block:  # docs/plugins.md's walk through the example plugin
            home.install_plugin(ROOT / "tests" / "example_plugin")
        for name in sorted(set(re.findall(r'vault:([\w.-]+)', block))):
            home.vault_set(name, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")  # a valid TOTP seed (160 bits) serves every kind
        home.config_path.write_text(block)
        home.config_path.chmod(0o600)
        result = home.run_in_process("check")
        assert result.returncode == 0, f"{where}: gw check says\n{result.stderr}"
    elif "endorse_exchange" in document:
        from gw_plugins.endorse.settings import load_file

        path = tmp_path / "endorse-exchange.toml"
        path.write_text(block)
        load_file(str(path))
    elif "project" in document:
        assert "gw" in document["project"].get("entry-points", {}), f"{where}: a pyproject example without gw's group"
    else:
        pytest.fail(f"{where}: neither a gw config, an exchange config nor a pyproject.toml: make it a whole example")


def _argv(line: str) -> list[str]:
    """The gw command of a shell line: comments, pipes, redirections and what follows them cut off."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    argv = []
    for token in lexer:
        if token in {"|", "||", "&&", ";", "&", ">", ">>", "<", "2>"} or token.startswith(("|", ">", "<", ";", "&")):
            break
        argv.append(token)
    return argv[1:]


@pytest.mark.parametrize(("where", "line"), SH_LINES, ids=[w for w, _ in SH_LINES])
def test_every_gw_command_line_in_the_docs_parses(where, line, monkeypatch, tmp_path, capsys):
    from gw.app import App
    from gw.cli import build_parser

    monkeypatch.setenv("GW_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("GW_CONFIG", str(tmp_path / "config.toml"))
    argv = [a for a in _argv(line) if "$(" not in a]
    parser = build_parser(App(config_path=None), argv)
    try:
        parser.parse_args(argv)
    except SystemExit as exc:
        if exc.code != 0:  # 0: --help or --version
            pytest.fail(f"{where}: gw's parser refuses it: {capsys.readouterr().err.strip()}")
