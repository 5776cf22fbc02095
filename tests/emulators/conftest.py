"""Fixtures: one moto per module, a fresh federation emulator (with a movable clock) per test."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Iterator

import pytest

from gw_emulators.aws import MotoStack
from gw_emulators.federation import FederationEmulator
from gw_emulators.tls import LocalCA


@dataclass
class Clock:
    """Real UTC time plus an offset tests can push forward."""

    offset: timedelta = field(default_factory=timedelta)

    def __call__(self) -> float:
        return (datetime.now(timezone.utc) + self.offset).timestamp()

    def advance(self, **kwargs: float) -> None:
        self.offset += timedelta(**kwargs)


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoStack]:
    with MotoStack() as stack:
        yield stack


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return LocalCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def federation(ca: LocalCA, moto: MotoStack, clock: Clock) -> Iterator[FederationEmulator]:
    emulator = FederationEmulator(ca, moto, clock=clock)
    with emulator:
        yield emulator


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
