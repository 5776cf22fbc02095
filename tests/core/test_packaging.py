"""What a wheel ships is declared, not discovered: no setuptools banner during `make demo`/`make test`.

setuptools prints a long "importable package absent from packages" warning for every data
directory it finds by itself (``include-package-data``). gw lists its package data instead:
every non-Python file the repository tracks under the product packages is either the launcher
script or matched by a ``package-data`` pattern of a package listed in ``packages``.
"""

from __future__ import annotations

import fnmatch
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def _package_dir(package: str) -> Path:
    top, _, rest = package.partition(".")
    return ROOT / SETUPTOOLS["package-dir"][top] / rest.replace(".", "/")


def test_package_data_is_declared_not_discovered():
    assert SETUPTOOLS.get("include-package-data") is False


def test_every_tracked_data_file_is_shipped_by_a_declared_pattern_or_is_the_launcher():
    tracked = subprocess.run(["git", "ls-files", *SETUPTOOLS["package-dir"].values()], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    scripts = set(SETUPTOOLS["script-files"])
    patterns = {package: _package_dir(package) for package in SETUPTOOLS["package-data"]}
    for package in patterns:
        assert package in SETUPTOOLS["packages"], f"package-data for {package}, which is not in packages"
    for name in tracked:
        if name.endswith(".py") or name in scripts:
            continue
        path = ROOT / name
        shipped = any(
            path.parent == directory and any(fnmatch.fnmatch(path.name, p) for p in SETUPTOOLS["package-data"][pkg])
            or any(fnmatch.fnmatch(str(path.relative_to(directory)), p) for p in SETUPTOOLS["package-data"][pkg]
                   if path.is_relative_to(directory))
            for pkg, directory in patterns.items()
        )
        assert shipped, f"{name} is tracked but no package-data pattern ships it"
