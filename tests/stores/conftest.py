"""Fixtures for the store tests: a hand-driven clock, a raw Redis client, each store."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tests.conftest import ManualClock
from tests.redisrelay import StallRelay
from webproxy.stores.base import CacheStore
from webproxy.stores.local import LocalTier
from webproxy.stores.memory import MemoryStore
from webproxy.stores.redis import RedisStore
from webproxy.stores.redis_clients import make_redis_client
from webproxy.stores.shared import SharedGenerations

STORE_TIMEOUT = 0.5
MEMORY_BUDGET = 10_000


def identity(value: bytes) -> bytes:
    return value


def value_length(key: str, value: bytes) -> int:
    """A memory store's sizeof for the contract tests: the value's length alone."""
    return len(value)


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    """A client of the store's kind, for tests that look at Redis directly."""
    client = make_redis_client(redis_url, timeout=STORE_TIMEOUT)
    yield client
    await client.aclose()


@pytest.fixture
async def relayed(relay: StallRelay) -> AsyncIterator[Redis]:
    """A client of the store's kind through the stall relay (`tests.redisrelay`)."""
    client = make_redis_client(f"redis://127.0.0.1:{relay.port}/0", timeout=STORE_TIMEOUT)
    yield client
    await client.aclose()


@pytest.fixture(params=["memory", "memory-shared", "redis", "redis-local"])
async def store(
    request: pytest.FixtureRequest, clock: ManualClock
) -> AsyncIterator[CacheStore[bytes]]:
    """Each store in turn, holding bytes; the memory stores run on `clock`.

    `memory-shared` keeps its generations in memory shared with forked workers;
    `redis-local` is Redis behind the local tier (subscribed: copies are made).
    """
    if request.param.startswith("memory"):
        shared = SharedGenerations() if request.param == "memory-shared" else None
        memory: MemoryStore[bytes] = MemoryStore(
            MEMORY_BUDGET, value_length, timer=clock, generations=shared
        )
        yield memory
        await memory.close()
        return
    url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("redis_prefix")
    client = make_redis_client(url, timeout=STORE_TIMEOUT)
    redis_store = RedisStore(client, prefix=prefix, encode=identity, decode=identity)
    if request.param == "redis-local":
        tier = LocalTier(redis_store, max_bytes=MEMORY_BUDGET, ttl=60.0, sizeof=value_length)
        tier.trust()
        yield tier
    else:
        yield redis_store
    await redis_store.close()
    await client.aclose()
