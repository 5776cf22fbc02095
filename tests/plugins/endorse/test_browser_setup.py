"""The page's set-up from a fresh clone: what git holds is enough to install gw, and the
bundle that is not in git comes from the one command the page and the docs name."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
INSTALL_HINT = "bash tests/browser/install.sh --demo"


def _tracked(directory: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", "--", directory], cwd=ROOT, capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_every_declared_package_directory_is_in_a_fresh_clone():
    """setuptools refuses to build when a listed package's directory is missing: static/vendor/
    holds only the never-committed bundle, so a tracked README keeps the directory in a clone."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = config["package-dir"]
    for package in config["packages"]:
        top, _, rest = package.partition(".")
        directory = "/".join([mapping.get(top, top), *rest.split(".")]) if rest else mapping.get(top, top)
        assert _tracked(directory), f"{package}: {directory}/ has no tracked file, so a fresh clone cannot install"
    assert _tracked("plugins/endorse/static/vendor") == ["plugins/endorse/static/vendor/README.md"]


def test_the_page_the_docs_and_make_demo_name_the_same_command():
    assert INSTALL_HINT in (ROOT / "plugins/endorse/static/app.js").read_text()
    assert INSTALL_HINT in (ROOT / "plugins/endorse/static/vendor/README.md").read_text()
    assert INSTALL_HINT in (ROOT / "docs/plugins/endorse.md").read_text()
    assert INSTALL_HINT in (ROOT / "Makefile").read_text().replace("@bash", "bash")
