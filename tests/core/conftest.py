"""Fixtures of the core's unit tests."""

from __future__ import annotations

import pytest

from tests.core.commands_helpers import with_keys


@pytest.fixture
def keys_home(gw_home):
    """A home whose profiles ``keys`` and ``other`` need no network (aws-keys from environment variables)."""
    return with_keys(gw_home)
