"""gw.resolve: caching wraps a step; a chain runs from its longest cached prefix (unit tests, in-process)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import pytest

from gw.credentials import AwsCredentials, credential_from_dict
from gw.crypto import KEY_SIZE
from gw.resolve import CachedStep, Entries, Step, run_steps, with_region
from gw.store import Store, prefix_digests
from gw.ui import UI

KEY = b"r" * KEY_SIZE
STEPS = [{"use": "aws-keys"}, {"use": "session-token"}, {"use": "assume-role"}]


def _creds(akid: str) -> AwsCredentials:
    now = datetime.now(UTC)
    return AwsCredentials(access_key_id=akid, secret_access_key="s" * 40, session_token="t" * 60, issued_at=now,
                          expiration=now + timedelta(hours=1))


@pytest.fixture
def entries(tmp_path):
    directory = tmp_path / "cache"
    directory.mkdir(mode=0o700)
    return Entries(Store(str(directory), str(tmp_path / "config.toml")), UI(), lambda: KEY, lambda: "file",
                   credential_from_dict)


class Chain:
    """Three steps; each records its runs (and the locks taken) and answers a credential naming itself."""

    def __init__(self, entries: Entries) -> None:
        self.ran: list[int] = []
        self.locked: list[int] = []
        digests = prefix_digests(STEPS)
        self.steps: list[Step] = [CachedStep(self.runner(i), entries, digests[i], "aws-credentials", self.lock(i))
                                  for i in range(2)]
        self.steps.append(Step(self.runner(2)))

    def runner(self, index: int):
        def run(upstream):
            self.ran.append(index)
            return _creds(f"ASIASTEP{index}" + ("" if upstream is None else upstream.access_key_id[-5:]))
        return run

    def lock(self, index: int):
        @contextlib.contextmanager
        def held():
            self.locked.append(index)
            yield True
        return held


def test_a_cold_chain_runs_every_step_under_its_prefix_lock(entries):
    chain = Chain(entries)
    result = run_steps(chain.steps, refresh=False)
    assert chain.ran == [0, 1, 2] and chain.locked == [0, 1]
    assert result.access_key_id.startswith("ASIASTEP2")
    assert len(entries.store.names("prefix")) == 2  # the last step's result is the profile's, not a prefix's


def test_the_next_run_starts_after_the_longest_cached_prefix(entries):
    run_steps(Chain(entries).steps, refresh=False)
    again = Chain(entries)  # another profile with the same first two steps
    run_steps(again.steps, refresh=False)
    assert again.ran == [2] and again.locked == []


def test_refresh_runs_every_step_again(entries):
    run_steps(Chain(entries).steps, refresh=False)
    again = Chain(entries)
    run_steps(again.steps, refresh=True)
    assert again.ran == [0, 1, 2]


def test_a_result_cached_while_waiting_for_the_lock_is_used(entries):
    racer = Chain(entries)
    other = Chain(entries)

    @contextlib.contextmanager
    def contended():  # another gw holds the lock and fetches meanwhile
        run_steps(other.steps, refresh=False)
        yield True

    racer.steps[1].lock = contended  # type: ignore[attr-defined]
    assert racer.steps[1].cached() is None  # a miss before the lock ...
    assert racer.steps[1](_creds("ASIAUPSTREAM"), refresh=False).access_key_id.startswith("ASIASTEP1")  # ... a hit in it
    assert racer.ran == [] and other.ran == [0, 1, 2]


def test_the_profiles_region_fills_only_a_missing_one():
    assert with_region(_creds("ASIAX"), "eu-west-1").region == "eu-west-1"
    given = _creds("ASIAY")
    given.region = "us-east-1"
    assert with_region(given, "eu-west-1").region == "us-east-1"
