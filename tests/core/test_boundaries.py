"""The plugin boundary, enforced by reading the source.

- Built-in plugins and emulators import nothing from gw but ``gw.plugin`` (the public API).
- No product module (core, plugins) imports ``gw_emulators``; the core never imports a plugin.
- The modules of the core, the plugins and the emulators import each other without cycles (function-level imports included).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"core": "gw", "plugins": "gw_plugins", "emulators": "gw_emulators"}


def _modules(directory: str) -> list[Path]:
    return sorted(p for p in (ROOT / directory).rglob("*.py") if "__pycache__" not in p.parts)


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT)
    parts = [PACKAGES[rel.parts[0]], *rel.parts[1:]]
    parts[-1] = parts[-1][:-3]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, *, skip_type_checking: bool = False) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    skipped: set[int] = set()
    if skip_type_checking:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
                skipped.update(id(n) for child in node.body for n in ast.walk(child))
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if node.module is None or module in PACKAGES.values():
                found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, module))
    return found


def test_plugins_and_emulators_import_only_the_public_api():
    offenders = []
    for directory in ("plugins", "emulators"):
        for path in _modules(directory):
            for line, module in _imports(path):
                if (module == "gw" or module.startswith("gw.")) and module != "gw.plugin" \
                        and not module.startswith("gw.plugin."):
                    offenders.append(f"{path.relative_to(ROOT)}:{line}: imports {module}")
    assert offenders == []


def test_no_product_module_imports_the_emulators_and_the_core_no_plugin():
    offenders = []
    for directory in ("core", "plugins"):
        for path in _modules(directory):
            for line, module in _imports(path):
                bad = module.startswith("gw_emulators") or (directory == "core" and module.startswith("gw_plugins"))
                if bad:
                    offenders.append(f"{path.relative_to(ROOT)}:{line}: imports {module}")
    assert offenders == []


def _cycles(directory: str) -> list[str]:
    """Every import cycle among the modules of ``directory`` (function-level imports count)."""
    names = {_module_name(p) for p in _modules(directory)}
    root = PACKAGES[directory]
    graph: dict[str, set[str]] = {}
    for path in _modules(directory):
        name = _module_name(path)
        graph[name] = set()
        for _, module in _imports(path, skip_type_checking=True):
            while module and module not in names:
                module = module.rpartition(".")[0]
            if module and module != name and module != root:
                graph[name].add(module)
    cycles: set[str] = set()

    def visit(node: str, trail: list[str]) -> None:
        for target in sorted(graph.get(node, ())):
            if target in trail:
                loop = trail[trail.index(target):]
                first = loop.index(min(loop))  # one spelling per cycle, whatever module it is entered from
                cycles.add(" -> ".join(loop[first:] + loop[:first] + [min(loop)]))
            elif len(trail) < 30:
                visit(target, trail + [target])

    for start in sorted(graph):
        visit(start, [start])
    return sorted(cycles)


def test_the_core_has_no_import_cycle():
    assert _cycles("core") == []


def test_the_plugins_have_no_import_cycle():
    assert _cycles("plugins") == []


def test_the_emulators_have_no_import_cycle():
    assert _cycles("emulators") == []


def test_every_package_directory_is_listed_for_installation():
    """A subpackage missing from pyproject's `packages` works in the editable venv but not when installed."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {_module_name(init) for directory in PACKAGES for init in (ROOT / directory).rglob("__init__.py")
             if "__pycache__" not in init.parts}
    assert found <= listed, sorted(found - listed)
