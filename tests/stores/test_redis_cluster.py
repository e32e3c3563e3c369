"""RedisStore on a real three-master Redis Cluster: the contract suite, the key layout, and
the cluster's subscriber (any node hears a PUBLISH)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio.cluster import RedisCluster

from tests.redisfixture import free_port
from tests.redisfleet import ClusterFleet
from tests.stores import test_contract as contract
from tests.stores.conftest import STORE_TIMEOUT, identity
from webproxy.config import Secret
from webproxy.errors import StoreUnavailable
from webproxy.settings import StoreSettings
from webproxy.stores.base import ALL
from webproxy.stores.redis import RedisStore
from webproxy.stores.redis_clients import FAILURES, RedisClients, make_clients

TEAM = (ALL, "teams", "team:5000")


@pytest.fixture
async def clients(redis_cluster: ClusterFleet) -> AsyncIterator[RedisClients]:
    made = make_clients(
        StoreSettings(
            backend="redis",
            redis_url=Secret(redis_cluster.url),
            redis_cluster=True,
            timeout=STORE_TIMEOUT,
        )
    )
    yield made
    await made.aclose()


@pytest.fixture
def store(clients: RedisClients, redis_prefix: str) -> RedisStore[bytes]:
    """The contract suite's `store`, here on the cluster (overrides the conftest's)."""
    return RedisStore(clients.client, prefix=redis_prefix, encode=identity, decode=identity)


@pytest.fixture
def redis_client(clients: RedisClients) -> RedisCluster:
    """The contract suite's raw client, here the cluster's (it reads entries' PTTL)."""
    assert isinstance(clients.client, RedisCluster)
    return clients.client


# The contract suite, run again on the cluster (the tests take the fixtures above).
test_a_missing_key_reads_as_none_with_zero_generation = (
    contract.test_a_missing_key_reads_as_none_with_zero_generation
)
test_a_stored_value_reads_back = contract.test_a_stored_value_reads_back
test_a_second_put_overwrites_the_first = contract.test_a_second_put_overwrites_the_first
test_an_entry_is_kept_for_its_keep_time = contract.test_an_entry_is_kept_for_its_keep_time
test_purge_invalidates_only_entries_that_list_the_counter = (
    contract.test_purge_invalidates_only_entries_that_list_the_counter
)
test_a_put_with_a_generation_read_before_a_purge_is_refused = (
    contract.test_a_put_with_a_generation_read_before_a_purge_is_refused
)
test_clear_invalidates_everything = contract.test_clear_invalidates_everything
test_stats_count_live_entries_and_bytes_by_label = (
    contract.test_stats_count_live_entries_and_bytes_by_label
)
test_counters_move_independently = contract.test_counters_move_independently
test_get_reports_the_current_generation_on_a_miss = (
    contract.test_get_reports_the_current_generation_on_a_miss
)
test_an_entry_reads_as_missing_under_other_counters = (
    contract.test_an_entry_reads_as_missing_under_other_counters
)
test_a_put_breaking_the_interface_raises_value_error = (
    contract.test_a_put_breaking_the_interface_raises_value_error
)
test_a_serving_store_answers_ping = contract.test_a_serving_store_answers_ping


async def put_fresh(store: RedisStore[bytes], key: str, value: bytes) -> bool:
    found = await store.get(key, TEAM)
    return await store.put(
        key, value, keep=60, label="TeamResource", counters=TEAM, generation=found.generation
    )


def test_a_cluster_client_puts_the_store_in_cluster_mode(store: RedisStore[bytes]) -> None:
    assert store.cluster


async def test_entries_spread_over_masters_while_counters_share_one_slot(
    store: RedisStore[bytes],
    redis_client: RedisCluster,
    redis_cluster: ClusterFleet,
    redis_prefix: str,
) -> None:
    for number in range(30):
        assert await put_fresh(store, f"/spread/{number}", b"v")
    for counter in TEAM:
        await store.purge(counter)
    assert len(redis_cluster.masters_holding(f"{redis_prefix}:entry:*")) > 1
    assert len(redis_cluster.masters_holding(f"{{{redis_prefix}}}:gen:*")) == 1
    slots = {redis_client.keyslot(f"{{{redis_prefix}}}:gen:{name}") for name in TEAM}
    assert len(slots) == 1
    assert await redis_client.get(f"{{{redis_prefix}}}:gen:team:5000") == b"1"


async def test_stats_count_entries_on_every_master(store: RedisStore[bytes]) -> None:
    for number in range(30):
        assert await put_fresh(store, f"/stats/{number}", b"x" * 10)
    stats = await store.stats()
    assert stats.entries == 30
    assert stats.by_label["TeamResource"].entries == 30


async def test_a_put_racing_a_purge_never_outlives_it(
    clients: RedisClients, redis_prefix: str
) -> None:
    writer = RedisStore(clients.client, prefix=redis_prefix, encode=identity, decode=identity)
    purger = RedisStore(clients.client, prefix=redis_prefix, encode=identity, decode=identity)
    for round_ in range(30):
        key = f"/race/{round_}"
        found = await writer.get(key, TEAM)
        put = writer.put(
            key, b"old", keep=60, label="x", counters=TEAM, generation=found.generation
        )
        await asyncio.gather(put, purger.purge("team:5000"))
        assert (await writer.get(key, TEAM)).value is None


async def test_a_fill_claim_is_held_once_and_released_only_by_its_holder(
    store: RedisStore[bytes],
) -> None:
    token = await store.claim("/fill", 5.0)
    assert token is not None
    assert await store.claim("/fill", 5.0) is None
    await store.release("/fill", "not-the-token")
    assert await store.claim("/fill", 5.0) is None
    await store.release("/fill", token)
    assert await store.claim("/fill", 5.0) is not None


async def test_a_cluster_that_cannot_be_reached_raises_store_unavailable_promptly() -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings = StoreSettings(
        backend="redis", redis_url=Secret(nowhere), redis_cluster=True, timeout=STORE_TIMEOUT
    )
    unreachable = make_clients(settings)
    store = RedisStore(unreachable.client, prefix="nowhere", encode=identity, decode=identity)
    try:
        async with asyncio.timeout(STORE_TIMEOUT * 4):
            for call in (store.get("/a", TEAM), put_fresh(store, "/a", b"v"), store.ping()):
                with pytest.raises(StoreUnavailable):
                    await call
            with pytest.raises(StoreUnavailable):
                await store.purge("team:5000")
            with pytest.raises(FAILURES):  # what RedisEvents catches, to try again later
                await unreachable.subscriber()
    finally:
        await unreachable.aclose()


async def test_every_node_subscriber_hears_a_publish_through_the_cluster_client(
    clients: RedisClients, redis_prefix: str
) -> None:
    channel = f"{redis_prefix}:events"
    subscribers = [await clients.subscriber() for _ in range(6)]  # random nodes, likely all
    pubsubs = [subscriber.pubsub() for subscriber in subscribers]
    try:
        for pubsub in pubsubs:
            await pubsub.subscribe(channel)
            assert (await pubsub.get_message(timeout=STORE_TIMEOUT))["type"] == "subscribe"
        await clients.client.publish(channel, b"hello")
        for pubsub in pubsubs:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2.0)
            assert message is not None and message["data"] == b"hello"
    finally:
        for pubsub, subscriber in zip(pubsubs, subscribers, strict=True):
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            await subscriber.aclose()
