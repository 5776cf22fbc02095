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
    result = subprocess.run([cfn_lint(), "--format", "parseable", str(TEMPLATE)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_is_not_a_rubber_stamp(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(TEMPLATE.read_text().replace("Resource: !GetAtt ReplayTable.Arn", "Resource: !GetAtt NoSuchTable.Arn"))
    result = subprocess.run([cfn_lint(), str(broken)], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0


def test_template_sets_only_known_settings():
    import re

    names = set(re.findall(r"GW_ENDORSE_([A-Z_]+):", TEMPLATE.read_text()))
    assert names and {n.lower() for n in names} <= set(KEYS)
    assert "gw_plugins.endorse.lambda_handler.handler" in TEMPLATE.read_text()
