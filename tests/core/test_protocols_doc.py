"""docs/protocols.md stands alone: every section names its public sources, and nothing in the
project points at material its users do not have."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "protocols.md").read_text()


def _sections() -> dict[int, str]:
    parts = re.split(r"^## (\d+)\. ", DOC, flags=re.M)
    return {int(num): body for num, body in zip(parts[1::2], parts[2::2], strict=True)}


def test_every_section_names_a_public_source():
    sections = _sections()
    assert sorted(sections) == list(range(1, len(sections) + 1)), "sections are numbered 1..N"
    for num, body in sections.items():
        assert re.search(r"^Sources?: ", body, re.M), f"section {num} names no source"
        assert re.search(r"https://|`[\w.-]+/[\w.-]+: ", body), f"section {num} has no URL or repository"


def test_every_cited_section_exists():
    sections = _sections()
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    for name in tracked:
        path = ROOT / name
        if path.suffix not in {".py", ".md", ".js", ".toml"} or not path.is_file():
            continue
        text = path.read_text(errors="replace")
        for match in re.finditer(r"protocols\.md\)?,? sections? ((?:\d+(?:, | and | or )?)+)", text):
            for num in re.findall(r"\d+", match.group(1)):
                assert int(num) in sections, f"{name} cites protocols.md section {num}, which does not exist"


def test_nothing_cites_material_users_do_not_have():
    out = subprocess.run(
        ["git", "grep", "-n", "-e", "shared/protocols", "-e", "shared/vectors", "--", "README.md", "docs", "core", "plugins", "emulators", "bench"],
        cwd=ROOT, capture_output=True, text=True,
    ).stdout
    assert out == "", f"files cite ../shared, which users never see:\n{out}"
