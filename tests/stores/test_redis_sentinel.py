"""RedisStore through real Redis Sentinels: the master is found, and followed across a failover."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from tests.redisfleet import SentinelFleet
from tests.stores.conftest import STORE_TIMEOUT, identity
from webproxy.config import Secret
from webproxy.errors import StoreUnavailable
from webproxy.settings import StoreSettings
from webproxy.stores.base import ALL
from webproxy.stores.redis import RedisStore
from webproxy.stores.redis_clients import RedisClients, make_clients

TEAM = (ALL, "teams", "team:5000")
GUARD = STORE_TIMEOUT * 4  # an operation must fail well inside this, never hang


@pytest.fixture
async def clients(healthy_sentinels: SentinelFleet) -> AsyncIterator[RedisClients]:
    made = make_clients(
        StoreSettings(
            backend="redis",
            redis_url=Secret("redis://127.0.0.1:6379/0"),  # scheme and db only: ignored host
            sentinels=healthy_sentinels.sentinels,
            timeout=STORE_TIMEOUT,
        )
    )
    yield made
    await made.aclose()


@pytest.fixture
def store(clients: RedisClients, redis_prefix: str) -> RedisStore[bytes]:
    return RedisStore(clients.client, prefix=redis_prefix, encode=identity, decode=identity)


async def put_fresh(store: RedisStore[bytes], key: str, value: bytes) -> bool:
    found = await store.get(key, TEAM)
    return await store.put(
        key, value, keep=60, label="TeamResource", counters=TEAM, generation=found.generation
    )


async def test_the_store_reaches_the_master_the_sentinels_name(
    store: RedisStore[bytes], healthy_sentinels: SentinelFleet, redis_prefix: str
) -> None:
    assert not store.cluster
    assert await put_fresh(store, "/a", b"alpha")
    assert (await store.get("/a", TEAM)).value == b"alpha"
    master = healthy_sentinels.master_port()
    assert healthy_sentinels.keys_on(master, f"{redis_prefix}:entry:*")
    await store.purge("team:5000")
    assert (await store.get("/a", TEAM)).value is None


async def test_the_store_follows_a_failover_and_forgets_what_came_before(
    store: RedisStore[bytes], healthy_sentinels: SentinelFleet, redis_prefix: str
) -> None:
    assert await put_fresh(store, "/a", b"alpha")
    replica = healthy_sentinels.replica_port()
    healthy_sentinels.wait_replicated(f"{redis_prefix}:entry:*")  # the promoted will hold it
    old = healthy_sentinels.kill_master()
    failing_over = asyncio.create_task(
        asyncio.to_thread(healthy_sentinels.wait_for_new_master, old)
    )
    started = time.monotonic()
    while not failing_over.done():  # meanwhile every call fails promptly, none hangs
        async with asyncio.timeout(GUARD):
            try:
                await store.get("/a", TEAM)
            except StoreUnavailable:
                pass
        await asyncio.sleep(0.05)  # pacing of the calls while the sentinels promote
    assert await failing_over == replica
    assert time.monotonic() - started < 15
    async with asyncio.timeout(GUARD):  # the same client, now on the promoted replica
        while True:
            try:
                found = await store.get("/a", TEAM)
                break
            except StoreUnavailable:
                await asyncio.sleep(0.05)  # poll interval, bounded by the timeout
    assert found.value is None  # Redis was gone: the clear it owed was paid
    assert await put_fresh(store, "/a", b"again")
    assert (await store.get("/a", TEAM)).value == b"again"
    assert healthy_sentinels.keys_on(replica, f"{redis_prefix}:entry:*")
