"""config.example.toml is valid and documents every option of every built-in step type."""

from __future__ import annotations

import re
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"
BUILTIN = {"aws", "federation", "soracom", "onepassword", "krypton", "cognito", "endorse", "iot", "sso"}


def test_example_is_valid_except_for_its_vault_entries(gw_home):
    result = gw_home.run_in_process("check", env={"GW_CONFIG": str(EXAMPLE)})
    problems = [line for line in result.stderr.splitlines() if not line.startswith("gw: ")]
    assert problems, "expected the example's vault references to be reported as missing"
    assert all("in the vault (add it with: gw vault set" in line for line in problems), problems


def test_example_mentions_every_option():
    from gw.config import CORE_SETTINGS
    from gw.loading import load_registry

    text = EXAMPLE.read_text()
    registry = load_registry()
    missing = []
    for step in registry.step_types.values():
        if step.plugin not in BUILTIN:
            continue
        if f'"{step.name}"' not in text:
            missing.append(step.name)
        for option in step.options:
            if not re.search(rf"\b{option}\b", text):
                missing.append(f"{step.name}.{option}")
    for table in registry.tables.values():
        if table.plugin in BUILTIN:
            for option in table.options:
                if not re.search(rf"\b{option}\b", text):
                    missing.append(f"{table.name}.{option}")
    plugin_settings = [name for name, s in registry.settings.items() if s.plugin in BUILTIN]
    assert plugin_settings, "no built-in plugin declares a setting any more: drop this line"
    for key in [*CORE_SETTINGS, *plugin_settings]:
        if not re.search(rf"\b{key}\b", text):
            missing.append(key)
    assert missing == []
