"""What the tests of gw.commands share: a home with a profile that needs no network (aws-keys from
environment variables), and a way to run one command's handler with a stand-in for exec."""

from __future__ import annotations

import os
from typing import Any

import pytest

KEYS_CONFIG = """
[profiles.keys]
description = "long-term keys from the environment"
region = "ap-northeast-1"
steps = [{ use = "aws-keys", access_key_id = "env:GWTEST_AK", secret_access_key = "env:GWTEST_SK" }]

[profiles.other]
steps = [{ use = "aws-keys", access_key_id = "env:GWTEST_AK", secret_access_key = "env:GWTEST_SK" }]
"""
KEYS_ENV = {"GWTEST_AK": "AKIAGWTESTCOMMANDS01", "GWTEST_SK": "Zq9xLw2Kf7Hd3Vn8" * 2 + "Yp4Tm6Rc"}


def with_keys(home: Any) -> Any:
    """``home`` with the profiles ``keys`` and ``other`` (the ``keys_home`` fixture of tests/core/conftest.py)."""
    home.write_config(KEYS_CONFIG)
    home.env.update(KEYS_ENV)
    return home


def parse(home: Any, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[Any, Any]:
    """(parsed arguments, App) for ``gw ARGS`` as gw.cli builds them, in this process with the
    home's environment (for calling a handler with a stand-in for what ends the process)."""
    from gw.app import App
    from gw.cli import build_parser

    for name in list(os.environ):
        monkeypatch.delenv(name)
    for name, value in home.env.items():
        monkeypatch.setenv(name, value)
    app = App()
    return build_parser(app, list(args)).parse_args(list(args)), app
