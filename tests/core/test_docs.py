"""docs/plugins.md documents exactly the public plugin API (modelled on datasette's tests/test_docs.py).

Fails when a name of ``gw.plugin``, a hook of ``gw.hookspecs`` or a member of the context
protocols is not documented, and when the page documents a name that does not exist.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "plugins.md").read_text()
DOCUMENTED = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)", DOC))


def _public_names() -> list[str]:
    import gw.plugin

    return sorted(gw.plugin.__all__)


def _hooks() -> list[str]:
    import gw.hookspecs

    return sorted(name for name in dir(gw.hookspecs) if name.startswith("gw_"))


def _protocol_members() -> list[str]:
    from gw.plugin import CommandContext, StepContext

    members = set()
    for proto in (StepContext, CommandContext):
        members |= {n for n in vars(proto) if not n.startswith("_")}
        members |= set(getattr(proto, "__annotations__", {}))
    return sorted(members)


@pytest.mark.parametrize("name", _public_names())
def test_every_public_name_is_documented(name):
    assert name in DOCUMENTED, f"gw.plugin.{name} is not documented in docs/plugins.md"


@pytest.mark.parametrize("hook", _hooks())
def test_every_hook_is_documented_and_has_a_docstring(hook):
    import gw.hookspecs

    assert hook in DOCUMENTED, f"hook {hook} is not documented in docs/plugins.md"
    assert inspect.getdoc(getattr(gw.hookspecs, hook)), f"hook {hook} has no docstring"


@pytest.mark.parametrize("member", _protocol_members())
def test_every_context_member_is_documented(member):
    assert member in DOCUMENTED, f"context member {member} is not documented in docs/plugins.md"


def test_the_api_section_names_nothing_that_does_not_exist():
    import gw.plugin

    section = DOC.split("## The public API", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([A-Za-z_][A-Za-z0-9_]*)", section, re.M))
    assert listed, "the public API table is missing"
    assert listed <= set(gw.plugin.__all__), sorted(listed - set(gw.plugin.__all__))
    assert set(gw.plugin.__all__) <= listed, sorted(set(gw.plugin.__all__) - listed)


def test_every_public_function_and_class_has_a_docstring():
    import gw.plugin

    missing = [n for n in gw.plugin.__all__ if (inspect.isfunction(getattr(gw.plugin, n))
               or inspect.isclass(getattr(gw.plugin, n))) and not inspect.getdoc(getattr(gw.plugin, n))]
    assert missing == []


def test_architecture_names_every_module_of_the_core_and_the_emulators():
    """docs/architecture.md keeps up with the code, module by module."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    missing = [f"{package}/{path.name}" for package in ("core", "emulators")
               for path in sorted((ROOT / package).glob("*.py"))
               if path.name != "__init__.py" and f"`{path.name}`" not in text]
    missing += [f"core/commands/{path.name}" for path in sorted((ROOT / "core" / "commands").glob("*.py"))
                if f"`commands/{path.name}`" not in text]
    assert missing == []


def test_the_example_plugin_is_tested_with_the_kit_alone():
    """The example plugin's tests need nothing from gw's own tests: run them the way a plugin
    author's project would, with gw.testing as the only conftest (the repo's is cut off)."""
    import subprocess
    import sys

    example = ROOT / "tests" / "example_plugin"
    source = (example / "test_example_plugin.py").read_text()
    assert "from tests." not in source and "import tests" not in source
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "gw.testing", "-p", "no:cacheprovider",
                             "--confcutdir", str(example), "--rootdir", str(example), str(example)],
                            capture_output=True, text=True, timeout=300, cwd=example, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout
