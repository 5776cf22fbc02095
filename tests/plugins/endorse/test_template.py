"""The deployment template (SAM) is accepted by cfn-lint, and it wires the function to the settings."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import gw_plugins.endorse
from gw_plugins.endorse.settings import KEYS

TEMPLATE = Path(gw_plugins.endorse.__file__).parent / "template.yaml"


def cfn_lint() -> str:
    found = shutil.which("cfn-lint", path=str(Path(sys.executable).parent)) or shutil.which("cfn-lint")
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("cfn-lint is not installed (test extra) and CI=true")
        pytest.skip("cfn-lint is not installed (pip install 'gw-credential-gateway[test]')")
    return found


def test_cfn_lint_accepts_the_template():
    result = subprocess.run(check=False, args=[cfn_lint(), "--format", "parseable", str(TEMPLATE)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_is_not_a_rubber_stamp(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(TEMPLATE.read_text().replace("Resource: !GetAtt ReplayTable.Arn", "Resource: !GetAtt NoSuchTable.Arn"))
    result = subprocess.run(check=False, args=[cfn_lint(), str(broken)], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0


def test_template_sets_only_known_settings():
    import re

    names = set(re.findall(r"GW_ENDORSE_([A-Z_]+):", TEMPLATE.read_text()))
    assert names and {n.lower() for n in names} <= set(KEYS)
    assert "gw_plugins.endorse.lambda_handler.handler" in TEMPLATE.read_text()


def test_documented_settings_example_is_valid(tmp_path):
    import re

    from gw_plugins.endorse.settings import load_file

    doc = (Path(__file__).resolve().parents[3] / "docs" / "endorse-exchange.md").read_text()
    block = next(b for b in re.findall(r"```toml\n(.*?)```", doc, re.DOTALL) if "[endorse_exchange]" in b)
    path = tmp_path / "exchange.toml"
    path.write_text(block)
    settings = load_file(str(path))
    assert settings.role_arn.endswith(":role/EndorseDevice") and settings.duration == 3600
    documented = set(re.findall(r"^#? ?([a-z_]+) = ", block, re.MULTILINE))
    assert documented == set(KEYS)
