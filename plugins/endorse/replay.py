"""Remembering used ``jti`` values until the token expires, to refuse replays.

* :class:`MemoryReplayStore` - one process (the local server, a single Lambda instance).
* :class:`DynamoReplayStore` - a fleet: a DynamoDB table with partition key ``jti`` (S)
  and TTL attribute ``expires_at`` (N, epoch seconds = the token's ``exp``). A
  conditional ``PutItem`` (``attribute_not_exists(jti)``) makes the first use win
  across every instance sharing the table.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from .verify import ExchangeError


class ReplayStore(Protocol):
    def first_use(self, jti: str, exp: int) -> bool:
        """Record ``jti`` until ``exp``; True when it was not seen before."""


class MemoryReplayStore:
    """Used jti values of this process, dropped once their token has expired."""

    def __init__(self, clock: Callable[[], float] = time.time, max_entries: int = 1_000_000) -> None:
        self.clock = clock
        self.max_entries = max_entries
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()
        self._next_purge = 0.0

    def first_use(self, jti: str, exp: int) -> bool:
        now = self.clock()
        with self._lock:
            if now >= self._next_purge or len(self._seen) >= self.max_entries:
                self._seen = {k: v for k, v in self._seen.items() if v >= now}
                self._next_purge = now + 60
                if len(self._seen) >= self.max_entries:
                    raise ExchangeError(503, "replay_store_full", "too many tokens in flight; try again later")
            if jti in self._seen:
                return False
            self._seen[jti] = exp
            return True


class DynamoReplayStore:
    """Used jti values in DynamoDB table ``table`` (shared by every service instance)."""

    def __init__(self, table: str, *, region: str, endpoint: str | None = None, verify: bool | str = True) -> None:
        self.table = table
        self.region = region
        self.endpoint = endpoint
        self.verify = verify
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

        try:
            self.client().put_item(
                TableName=self.table,
                Item={"jti": {"S": jti}, "expires_at": {"N": str(int(exp))}},
                ConditionExpression="attribute_not_exists(jti)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise ExchangeError(502, "replay_store_error", "the replay store (DynamoDB) refused the write") from None
        except BotoCoreError:
            raise ExchangeError(502, "replay_store_error", "the replay store (DynamoDB) could not be reached") from None
        return True
