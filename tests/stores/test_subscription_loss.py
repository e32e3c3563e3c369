"""A lost event subscription makes the store owe a clear (a failover may have lost a purge)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tests.stores.conftest import STORE_TIMEOUT, identity
from webproxy.config import Secret
from webproxy.settings import StoreSettings
from webproxy.stores.base import ALL
from webproxy.stores.redis import RedisStore
from webproxy.stores.redis_clients import RedisClients, make_clients
from webproxy.stores.redis_events import RedisEvents

TEAM = (ALL, "teams", "team:5000")
WITHIN = 5.0


@pytest.fixture
async def clients(redis_url: str) -> AsyncIterator[RedisClients]:
    made = make_clients(
        StoreSettings(backend="redis", redis_url=Secret(redis_url), timeout=STORE_TIMEOUT)
    )
    yield made
    await made.aclose()


async def test_a_subscription_lost_after_it_was_made_makes_the_store_owe_a_clear(
    clients: RedisClients, redis_client: Redis, redis_prefix: str
) -> None:
    store = RedisStore(clients.client, prefix=redis_prefix, encode=identity, decode=identity)
    lost, subscribed = asyncio.Event(), [asyncio.Event(), asyncio.Event()]

    def owe() -> None:
        lost.set()
        store.owe_clear("test: subscription lost")

    def made() -> None:
        next(event for event in subscribed if not event.is_set()).set()

    events = RedisEvents(clients, prefix=redis_prefix, lost=owe)
    listening = asyncio.create_task(events.listen(lambda event: None, lambda: None, made))
    try:
        async with asyncio.timeout(WITHIN):
            await subscribed[0].wait()
        found = await store.get("/a", TEAM)
        assert await store.put(
            "/a", b"alpha", keep=60, label="x", counters=TEAM, generation=found.generation
        )
        assert (await store.get("/a", TEAM)).value == b"alpha"
        assert not lost.is_set()  # a subscription made is no loss

        await redis_client.client_kill_filter(_type="pubsub")  # Redis itself stays up
        async with asyncio.timeout(WITHIN):
            await lost.wait()
        assert (await store.get("/a", TEAM)).value is None  # the owed clear was paid first
        assert await redis_client.get(f"{redis_prefix}:gen:{ALL}") == b"1"
        async with asyncio.timeout(WITHIN):  # and the events subscribe again, on a new client
            await subscribed[1].wait()
        assert (await redis_client.pubsub_numsub(events.channel))[0][1] == 1
    finally:
        listening.cancel()
        with pytest.raises(asyncio.CancelledError):
            await listening
        await events.close()
