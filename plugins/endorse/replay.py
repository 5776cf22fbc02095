"""Remembering used ``jti`` values for as long as their token can still verify, to refuse replays.

The verifier accepts a token until ``exp + leeway`` (:meth:`.verify.Verifier._check_times`),
so every store remembers a ``jti`` until ``exp + leeway`` - never only until ``exp``, which
would let a token used just before ``exp`` be used again inside the leeway.

* :class:`MemoryReplayStore` - one process (the local server, a single Lambda instance).
* :class:`DynamoReplayStore` - a fleet: a DynamoDB table with partition key ``jti`` (S)
  and TTL attribute ``expires_at`` (N, epoch seconds = the token's ``exp + leeway``). A
  conditional ``PutItem`` (``attribute_not_exists(jti)``) makes the first use win
  across every instance sharing the table.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from .verify import ExchangeError

PURGE_INTERVAL = 60.0  # seconds between sweeps of the memory store


class ReplayStore(Protocol):
    def first_use(self, jti: str, exp: int) -> bool:
        """Record ``jti`` until ``exp + leeway``; True when it was not seen before."""


class MemoryReplayStore:
    """Used jti values of this process, dropped once their token can no longer verify.

    ``leeway`` must be the verifier's: a jti is kept until ``exp + leeway``.
    """

    def __init__(self, clock: Callable[[], float] = time.time, max_entries: int = 1_000_000, *,
                 leeway: int = 0) -> None:
        self.clock = clock
        self.max_entries = max_entries
        self.leeway = leeway
        self._seen: dict[str, int] = {}  # jti -> forget after (epoch seconds) = exp + leeway
        self._lock = threading.Lock()
        self._next_purge = 0.0

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)

    def __contains__(self, jti: object) -> bool:
        with self._lock:
            return jti in self._seen

    def purge(self) -> None:
        """Forget every jti whose token can no longer verify (``exp + leeway`` is past)."""
        with self._lock:
            self._purge(self.clock())

    def _purge(self, now: float) -> None:
        self._seen = {k: v for k, v in self._seen.items() if v > now}  # at exp + leeway it is expired
        self._next_purge = now + PURGE_INTERVAL

    def first_use(self, jti: str, exp: int) -> bool:
        now = self.clock()
        with self._lock:
            if now >= self._next_purge or len(self._seen) >= self.max_entries:
                self._purge(now)
                if len(self._seen) >= self.max_entries:
                    raise ExchangeError(503, "replay_store_full", "too many tokens in flight; try again later")
            if jti in self._seen:  # present = used before, whatever its stored time says
                return False
            self._seen[jti] = int(exp) + self.leeway
            return True


class DynamoReplayStore:
    """Used jti values in DynamoDB table ``table`` (shared by every service instance).

    ``leeway`` must be the verifier's: the TTL attribute ``expires_at`` is ``exp + leeway``.
    """

    def __init__(self, table: str, *, region: str, endpoint: str | None = None, verify: bool | str = True,
                 leeway: int = 0) -> None:
        self.table = table
        self.region = region
        self.endpoint = endpoint
        self.verify = verify
        self.leeway = leeway
        self._client: Any = None
        self._lock = threading.Lock()

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                self._client = boto3.session.Session().client(
                    "dynamodb", region_name=self.region, endpoint_url=self.endpoint, verify=self.verify,
                    config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=10),
                )
            return self._client

    def first_use(self, jti: str, exp: int) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        # DynamoDB deletes items whose TTL has passed lazily (typically within a few days), so
        # an item may still be in the table after its expires_at. The condition is deliberately
        # only "attribute_not_exists(jti)": no "OR expires_at < :now" escape. This method runs
        # only for a token that has just verified, i.e. one that can still be used; a jti present
        # in the table is then a replay whatever its stored expiry says (an instance with a
        # larger leeway, or a clock ahead of the writer's, must not be able to reuse it). Items
        # that linger cost nothing: a token past exp + leeway never gets this far.
        try:
            self.client().put_item(
                TableName=self.table,
                Item={"jti": {"S": jti}, "expires_at": {"N": str(int(exp) + self.leeway)}},
                ConditionExpression="attribute_not_exists(jti)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise ExchangeError(502, "replay_store_error", "the replay store (DynamoDB) refused the write") from None
        except BotoCoreError:
            raise ExchangeError(502, "replay_store_error", "the replay store (DynamoDB) could not be reached") from None
        return True
