"""Fixtures for the emulator tests (moto, ca, clock and federation come from tests/conftest.py)."""

from __future__ import annotations

import uuid

import pytest

from gw_emulators.aws import MotoStack


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def user(moto: MotoStack, unique: str) -> tuple[str, str]:
    """Long-term keys of a fresh IAM user."""
    return moto.create_user(f"user-{unique}")


@pytest.fixture
def role_arn(moto: MotoStack, unique: str) -> str:
    return moto.create_role(f"role-{unique}", max_session_duration=43200)
