"""Count the assertions of the test suite, so that a change to the suite can show it lost none.

Counted with ``ast`` over every ``tests/**/*.py`` (each counts once however often it runs):

- ``assert`` statements;
- ``pytest.raises`` / ``pytest.warns`` / ``pytest.fail`` calls (an expectation stated otherwise);
- calls of the suite's own checking helpers whose name starts with ``assert_`` or ``expect_``
  (``assert_clean_failure``, ``assert_no_redirect_followed``, ...).

Usage: ``python bench/count_asserts.py [tests] [--files]`` (``--files``: one line per file).
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path

PYTEST_CHECKS = {"raises", "warns", "fail"}


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def count(source: str) -> Counter[str]:
    """Assertions in one module's source, by kind."""
    found: Counter[str] = Counter()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assert):
            found["assert"] += 1
        elif isinstance(node, ast.Call):
            name = _call_name(node)
            func = node.func
            if (name in PYTEST_CHECKS and isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                    and func.value.id == "pytest"):
                found[f"pytest.{name}"] += 1
            elif name.startswith(("assert_", "expect_")):
                found["helper"] += 1
    return found


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    root = Path(args[0] if args else "tests")
    total: Counter[str] = Counter()
    files = 0
    for path in sorted(root.rglob("*.py")):
        if ".venv" in path.parts:
            continue
        found = count(path.read_text(encoding="utf-8"))
        files += 1
        total += found
        if "--files" in argv and found:
            print(f"{sum(found.values()):6d}  {path}")
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(total.items()))
    print(f"{sum(total.values())} assertions in {files} files under {root} ({kinds})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
