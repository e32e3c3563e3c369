"""Reads of one turn of the event loop go to Redis together (`stores.batched_reads`): one
connection for many hits, each caller its own answer or its own error, never a hang."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from tests.redisfixture import RedisServer
from tests.redisrelay import StallRelay
from tests.stores.conftest import identity
from tests.stores.test_redis_store import GUARD, TEAM, put_fresh
from webproxy.errors import StoreUnavailable
from webproxy.stores.batched_reads import MAX_BATCH, BatchedReads
from webproxy.stores.redis import RedisStore

READERS = 50


@pytest.fixture
def store(relayed: Redis, redis_prefix: str) -> RedisStore[bytes]:
    return RedisStore(relayed, prefix=redis_prefix, encode=identity, decode=identity)


async def test_many_hits_at_once_are_one_write_to_redis_and_each_gets_its_own_entry(
    store: RedisStore[bytes], relay: StallRelay
) -> None:
    keys = [f"/finesse/api/Team/{n}" for n in range(READERS)]
    for key in keys:
        assert await put_fresh(store, key, key.encode())
    before = relay.writes
    found = await asyncio.gather(*(store.get(key, TEAM) for key in keys))
    assert [f.value for f in found] == [key.encode() for key in keys]
    assert relay.writes - before == 1  # one by one: 50


async def test_a_turn_busier_than_one_pipeline_is_sent_as_several(
    relayed: Redis, redis_client: Redis, redis_prefix: str
) -> None:
    await redis_client.set(f"{redis_prefix}:k", b"v")
    reads = BatchedReads(relayed)
    replies = await asyncio.gather(
        *(
            reads.mget([f"{redis_prefix}:k", f"{redis_prefix}:none"])
            for _ in range(MAX_BATCH * 2 + 1)
        )
    )
    assert replies == [[b"v", None]] * (MAX_BATCH * 2 + 1)


async def test_a_cancelled_reader_leaves_the_others_their_answers(
    relayed: Redis, redis_client: Redis, redis_prefix: str
) -> None:
    await redis_client.set(f"{redis_prefix}:k", b"v")
    reads = BatchedReads(relayed)
    tasks = [asyncio.ensure_future(reads.mget([f"{redis_prefix}:k"])) for _ in range(3)]
    await asyncio.sleep(0)  # (one turn: every task has asked; none is answered yet)
    tasks[1].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert done[0] == done[2] == [b"v"]
    assert isinstance(done[1], asyncio.CancelledError)
    await reads.close()


async def test_with_redis_gone_every_reader_gets_a_clean_error_promptly(
    store: RedisStore[bytes], redis_server: RedisServer
) -> None:
    assert await put_fresh(store, "/finesse/api/ChatConfig", b"x")
    redis_server.stop()
    async with asyncio.timeout(GUARD):
        failed = await asyncio.gather(
            *(store.get(f"/finesse/api/Team/{n}", TEAM) for n in range(READERS)),
            return_exceptions=True,
        )
    assert all(isinstance(result, StoreUnavailable) for result in failed)
