"""docs/architecture.md stays true: its section of each source directory names every module there
(by its path in that directory, such as `aws/rotate.py`, or its dotted name, such as
`gw_plugins.aws.rotate`) and names no module that is gone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "architecture.md").read_text()
PACKAGES = {"core": "gw", "plugins": "gw_plugins", "emulators": "gw_emulators"}


def _section(directory: str) -> str:
    match = re.search(rf"^## {directory}/ .*?(?=^## |\Z)", DOC, re.M | re.S)
    assert match, f"docs/architecture.md has no section '## {directory}/ ...'"
    return match.group(0)


def _modules(directory: str) -> list[str]:
    base = ROOT / directory
    return sorted(p.relative_to(base).as_posix() for p in base.rglob("*.py") if "__pycache__" not in p.parts)


def _dotted(directory: str, module: str) -> str:
    parts = [PACKAGES[directory], *module[:-3].split("/")]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.mark.parametrize("directory", sorted(PACKAGES))
def test_every_module_is_named(directory):
    section = _section(directory)
    missing = [f"{directory}/{m}" for m in _modules(directory)
               if f"`{m}`" not in section and f"`{_dotted(directory, m)}`" not in section]
    assert missing == [], f"docs/architecture.md, section {directory}/, does not name {missing}"


@pytest.mark.parametrize("directory", sorted(PACKAGES))
def test_every_module_named_exists(directory):
    named = set(re.findall(r"`([\w/]+\.py)`", _section(directory)))
    gone = sorted(named - set(_modules(directory)))
    assert gone == [], f"docs/architecture.md, section {directory}/, names modules that do not exist: {gone}"
