"""The replay window: a token verifies until ``exp + leeway``, so its ``jti`` must be remembered
that long by every replay store - not only until ``exp``.

The service runs in this process behind its real HTTP front door with an injected clock (the
verifier and the memory store both read it); tokens come from the Endorse emulator signed with
its key, which the service fetches over HTTPS; STS and DynamoDB are moto's server.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from typing import Any

import pytest

LEEWAY = 30


@dataclass
class SetClock:
    """A clock the test sets to exact instants (epoch seconds)."""

    now: float

    def __call__(self) -> float:
        return self.now


def claims_of(token: str) -> dict[str, Any]:
    piece = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(piece + "=" * (-len(piece) % 4)))


def make_table(moto: Any) -> str:
    name = f"endorse-jti-{secrets.token_hex(4)}"
    moto.client("dynamodb").create_table(
        TableName=name, AttributeDefinitions=[{"AttributeName": "jti", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "jti", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST",
    )
    return name


def ttl_sweep(moto: Any, table: str, now: float) -> int:
    """Delete what DynamoDB's TTL process may delete at ``now``: items whose ``expires_at`` is
    before ``now`` (moto's server keeps items forever; real DynamoDB deletes them lazily, at
    any time after ``expires_at``, so the sweep at the earliest moment is the worst case)."""
    client = moto.client("dynamodb")
    gone = 0
    for item in client.scan(TableName=table)["Items"]:
        if int(item["expires_at"]["N"]) < now:
            client.delete_item(TableName=table, Key={"jti": item["jti"]})
            gone += 1
    return gone


def assert_replayed(response: Any, token: str) -> None:
    assert response.status_code == 401, response.text
    assert response.json() == {"code": "token_replayed", "message": "the token was used before"}
    assert token not in response.text


def test_memory_store_remembers_a_jti_through_the_leeway(endorse, base_settings, local_exchange):
    token = endorse.mint()
    exp, jti = claims_of(token)["exp"], claims_of(token)["jti"]
    clock = SetClock(exp - 5)
    server = local_exchange({**base_settings, "leeway": LEEWAY}, clock=clock)
    store = server.service.replay
    assert server.post(token).status_code == 200  # used at exp - 5

    clock.now = exp  # the wording: remembered until exp
    store.purge()
    assert jti in store
    assert_replayed(server.post(token), token)

    clock.now = exp + 5  # past exp, inside the leeway: a purge here must keep the jti
    store.purge()
    assert jti in store
    clock.now = exp + 15  # the token still verifies now, so it must be refused as a replay
    assert_replayed(server.post(token), token)

    clock.now = exp + LEEWAY - 1
    store.purge()
    assert_replayed(server.post(token), token)

    clock.now = exp + LEEWAY  # the token no longer verifies: it is refused as expired ...
    refused = server.post(token)
    assert refused.status_code == 401 and refused.json()["code"] == "token_expired"
    store.purge()  # ... and only now may the store forget it
    assert jti not in store and len(store) == 0


def test_memory_store_sweep_on_its_own_schedule_keeps_the_jti(endorse, base_settings, local_exchange):
    """No explicit purge: the store's own periodic sweep (run by first_use) must not forget either."""
    first, second = endorse.mint(), endorse.mint()
    exp = claims_of(first)["exp"]
    clock = SetClock(exp - 70)
    server = local_exchange({**base_settings, "leeway": LEEWAY}, clock=clock)
    assert server.post(first).status_code == 200  # sweeps now, next sweep at exp - 10
    clock.now = exp + 5
    assert server.post(second).status_code == 200  # this request sweeps the store
    clock.now = exp + 15
    assert_replayed(server.post(first), first)


def test_dynamodb_store_ttl_is_exp_plus_leeway_and_survives_the_ttl_sweep(endorse, moto, base_settings,
                                                                          local_exchange):
    table = make_table(moto)
    token = endorse.mint()
    exp, jti = claims_of(token)["exp"], claims_of(token)["jti"]
    clock = SetClock(exp - 5)
    settings = {**base_settings, "leeway": LEEWAY, "replay_store": f"dynamodb:{table}", "dynamodb_endpoint": moto.url}
    server = local_exchange(settings, clock=clock)
    assert server.post(token).status_code == 200
    items = moto.client("dynamodb").scan(TableName=table)["Items"]
    assert items == [{"jti": {"S": jti}, "expires_at": {"N": str(exp + LEEWAY)}}]

    for now in (exp, exp + 5):  # TTL deletion may happen at any time after expires_at: not yet
        clock.now = now
        assert ttl_sweep(moto, table, now) == 0
    clock.now = exp + 15
    assert_replayed(server.post(token), token)
    # a second instance sharing the table refuses it too
    other = local_exchange(settings, clock=clock)
    assert_replayed(other.post(token), token)

    clock.now = exp + LEEWAY + 1  # expired for the verifier: only now may the TTL process delete it
    assert ttl_sweep(moto, table, clock.now) == 1
    refused = server.post(token)
    assert refused.status_code == 401 and refused.json()["code"] == "token_expired"


def test_dynamodb_item_past_its_expiry_but_not_yet_deleted_is_still_a_replay(endorse, moto, base_settings,
                                                                             local_exchange):
    """DynamoDB deletes expired items lazily. A jti present in the table is a replay while the
    token can still verify, whatever expiry the writer stored (e.g. an instance with a smaller
    leeway wrote it): the conditional put has no "expires_at < now" escape."""
    table = make_table(moto)
    token = endorse.mint()
    exp, jti = claims_of(token)["exp"], claims_of(token)["jti"]
    clock = SetClock(exp + 10)  # inside this service's leeway: the token verifies
    moto.client("dynamodb").put_item(TableName=table, Item={"jti": {"S": jti}, "expires_at": {"N": str(exp)}})
    settings = {**base_settings, "leeway": LEEWAY, "replay_store": f"dynamodb:{table}", "dynamodb_endpoint": moto.url}
    server = local_exchange(settings, clock=clock)
    assert_replayed(server.post(token), token)
    # the stored item is left as it was (no overwrite that would extend or reset it)
    items = moto.client("dynamodb").scan(TableName=table)["Items"]
    assert items == [{"jti": {"S": jti}, "expires_at": {"N": str(exp)}}]


@pytest.mark.parametrize("leeway", [0, 30, 300])
def test_store_leeway_is_the_services(leeway, endorse, base_settings, local_exchange):
    server = local_exchange({**base_settings, "leeway": leeway}, clock=SetClock(0))
    assert server.service.replay.leeway == server.service.verifier.leeway == leeway
