"""Faults around the Redis store's batched hit reads (`stores.batched_reads`): a real
redis-server reached through a relay of our own that can hold Redis's replies (a stall)
or cut every connection mid-batch; cancelled readers, a refused command, close()."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tests.functional.finesse import eventually
from tests.redisfixture import RedisServer
from tests.redisrelay import StallRelay
from tests.stores.conftest import STORE_TIMEOUT
from webproxy.errors import StoreUnavailable
from webproxy.stores.base import Found
from webproxy.stores.batched_reads import BatchedReads
from webproxy.stores.redis import RedisStore
from webproxy.stores.redis_clients import make_redis_client

GUARD = STORE_TIMEOUT * 4  # a read must fail well inside this, never hang
TEAM = ("all", "teams", "team:5000")


# --- batched reads: a real redis-server behind a relay that can stall or cut ------------


@pytest.fixture
async def store(relayed: Redis, redis_prefix: str) -> AsyncIterator[RedisStore[bytes]]:
    made: RedisStore[bytes] = RedisStore(relayed, prefix=redis_prefix, encode=bytes, decode=bytes)
    yield made
    await made.close()


KEYS = [f"/finesse/api/Team/{n}" for n in range(12)]


async def fill(store: RedisStore[bytes], keys: list[str] = KEYS) -> None:
    for key in keys:
        found = await store.get(key, TEAM)
        stored = await store.put(
            key,
            key.encode(),
            keep=60,
            label="TeamResource",
            counters=TEAM,
            generation=found.generation,
        )
        assert stored


def own(result: Found[bytes] | BaseException, key: str) -> bool:
    """A reader's result is its own key's value."""
    return isinstance(result, Found) and result.value == key.encode()


async def values(store: RedisStore[bytes], keys: list[str]) -> list[bytes | None]:
    found = await asyncio.gather(*(store.get(key, TEAM) for key in keys))
    return [f.value for f in found]


async def batch_sent(relay: StallRelay, before: int) -> None:
    """Wait until the next batch has reached Redis and its reply is held in the relay."""
    await eventually(lambda: relay.sent > before and relay.held > 0)


async def test_a_stalled_batch_fails_each_reader_in_time_and_no_late_reply_is_misread(
    store: RedisStore[bytes], relay: StallRelay
) -> None:
    """Redis answers a batch late (after the store's timeout): every reader gets
    StoreUnavailable within the timeout, and the late replies, once they arrive, are
    never taken as the answers to later reads."""
    await fill(store)
    relay.stall()
    before = relay.sent
    async with asyncio.timeout(GUARD):
        reads = asyncio.gather(*(store.get(key, TEAM) for key in KEYS[:6]), return_exceptions=True)
        await batch_sent(relay, before)
        failed = await reads
    assert all(isinstance(result, StoreUnavailable) for result in failed)
    relay.resume()
    async with asyncio.timeout(GUARD):
        for _ in range(3):
            assert await values(store, KEYS[6:]) == [key.encode() for key in KEYS[6:]]
            assert await values(store, KEYS[:6]) == [key.encode() for key in KEYS[:6]]


async def test_readers_cancelled_while_their_batch_is_out_leave_the_others_theirs(
    store: RedisStore[bytes], relay: StallRelay
) -> None:
    await fill(store)
    relay.stall()
    before = relay.sent
    tasks = [asyncio.ensure_future(store.get(key, TEAM)) for key in KEYS]
    await batch_sent(relay, before)
    for task in tasks[::2]:
        task.cancel()
    relay.resume()
    async with asyncio.timeout(GUARD):
        done = await asyncio.gather(*tasks, return_exceptions=True)
    for key, task, result in zip(KEYS, tasks, done, strict=True):
        if task in tasks[::2]:
            assert isinstance(result, asyncio.CancelledError)
        else:
            assert own(result, key)
    async with asyncio.timeout(GUARD):
        assert await values(store, KEYS) == [key.encode() for key in KEYS]


async def test_every_reader_of_a_batch_cancelled_then_the_next_batch_is_right(
    store: RedisStore[bytes], relay: StallRelay
) -> None:
    await fill(store)
    relay.stall()
    before = relay.sent
    tasks = [asyncio.ensure_future(store.get(key, TEAM)) for key in KEYS[:4]]
    await batch_sent(relay, before)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    relay.resume()
    async with asyncio.timeout(GUARD):
        assert await values(store, KEYS[4:]) == [key.encode() for key in KEYS[4:]]


async def test_connections_cut_mid_batch_give_each_reader_its_own_value_or_an_error(
    store: RedisStore[bytes], relay: StallRelay
) -> None:
    """The batch reached Redis, its replies were lost with the connection: a retry on a
    new connection, or StoreUnavailable; never another reader's value, never a hang."""
    await fill(store)
    relay.stall()
    before = relay.sent
    async with asyncio.timeout(GUARD):
        reads = asyncio.gather(*(store.get(key, TEAM) for key in KEYS), return_exceptions=True)
        await batch_sent(relay, before)
        relay.cut()
        relay.resume()
        done = await reads
    for key, result in zip(KEYS, done, strict=True):
        assert isinstance(result, StoreUnavailable) or own(result, key), result
    async with asyncio.timeout(GUARD):
        assert await values(store, KEYS) == [key.encode() for key in KEYS]


async def test_redis_stopped_mid_batch_answers_every_reader_promptly(
    store: RedisStore[bytes], relay: StallRelay, redis_server: RedisServer
) -> None:
    """Redis stops while a batch's replies are on their way: each reader gets its own
    value (Redis had answered) or StoreUnavailable, promptly; after a restart, reads work."""
    await fill(store)
    relay.stall()
    before = relay.sent
    try:
        async with asyncio.timeout(GUARD):
            reads = asyncio.gather(*(store.get(key, TEAM) for key in KEYS), return_exceptions=True)
            await batch_sent(relay, before)
            redis_server.stop()
            relay.resume()
            done = await reads
        for key, result in zip(KEYS, done, strict=True):
            assert isinstance(result, StoreUnavailable) or own(result, key), result
        async with asyncio.timeout(GUARD):
            after = await asyncio.gather(
                *(store.get(key, TEAM) for key in KEYS), return_exceptions=True
            )
        assert all(isinstance(result, StoreUnavailable) for result in after)
    finally:
        if not redis_server.running:
            redis_server.start()
    async with asyncio.timeout(GUARD * 2):
        while True:  # the first reads after a restart may still find the old connections
            found = await asyncio.gather(
                *(store.get(key, TEAM) for key in KEYS[:1]), return_exceptions=True
            )
            if not isinstance(found[0], StoreUnavailable):
                break
    assert await values(store, KEYS) == [None] * len(KEYS)  # a restart without saving: empty


async def test_close_waits_for_a_batch_out_and_its_readers_get_their_values(
    store: RedisStore[bytes], relay: StallRelay
) -> None:
    await fill(store)
    relay.stall()
    before = relay.sent
    tasks = [asyncio.ensure_future(store.get(key, TEAM)) for key in KEYS[:3]]
    await batch_sent(relay, before)
    closing = asyncio.ensure_future(store.close())
    await asyncio.sleep(0)  # (one turn: close is waiting on the batch)
    assert not closing.done()
    relay.resume()
    async with asyncio.timeout(GUARD):
        await closing
        assert all(task.done() for task in tasks)
    assert [task.result().value for task in tasks] == [key.encode() for key in KEYS[:3]]


async def test_close_right_after_a_read_was_asked_still_answers_it(
    store: RedisStore[bytes], relayed: Redis
) -> None:
    """A read asked in the same turn as `close` (not yet sent): close returns, the
    client is closed (as the app's cleanup does next), and the read gets its value or a
    clean StoreUnavailable, never a hang."""
    await fill(store, KEYS[:1])
    task = asyncio.ensure_future(store.get(KEYS[0], TEAM))
    await asyncio.sleep(0)  # (the task has asked: its batch waits for the end of the turn)
    await store.close()
    await relayed.aclose()
    async with asyncio.timeout(GUARD):
        done = await asyncio.gather(task, return_exceptions=True)
    assert isinstance(done[0], StoreUnavailable) or own(done[0], KEYS[0])


@pytest.fixture
async def limited(redis_client: Redis, redis_url: str, redis_prefix: str) -> AsyncIterator[Redis]:
    """A client of a Redis user that may touch only keys under `redis_prefix`."""
    user, password = f"wptest-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    await redis_client.acl_setuser(
        user,
        enabled=True,
        passwords=[f"+{password}"],
        keys=[f"{redis_prefix}:*"],
        commands=["+@all"],
        reset=True,
    )
    url = redis_url.replace("redis://", f"redis://{user}:{password}@")
    client = make_redis_client(url, timeout=STORE_TIMEOUT)
    yield client
    await client.aclose()
    await redis_client.acl_deluser(user)


async def test_an_error_for_one_command_of_a_batch_goes_to_its_reader_alone(
    limited: Redis, redis_prefix: str
) -> None:
    """One pipeline, three MGETs; Redis refuses the middle one (NOPERM: keys outside the
    user's pattern). Its reader alone gets StoreUnavailable."""
    allowed: RedisStore[bytes] = RedisStore(
        limited, prefix=redis_prefix, encode=bytes, decode=bytes
    )
    refused: RedisStore[bytes] = RedisStore(
        limited, prefix=f"other{redis_prefix}", encode=bytes, decode=bytes
    )
    await fill(allowed, KEYS[:2])
    async with asyncio.timeout(GUARD):
        done = await asyncio.gather(
            allowed.get(KEYS[0], TEAM),
            refused.get(KEYS[0], TEAM),
            allowed.get(KEYS[1], TEAM),
            return_exceptions=True,
        )
    first, middle, last = done
    assert isinstance(middle, StoreUnavailable)
    assert own(first, KEYS[0]) and own(last, KEYS[1])


async def test_one_turn_of_mixed_reads_gives_each_caller_its_own_reply(
    relayed: Redis, redis_client: Redis, redis_prefix: str
) -> None:
    """Key lists of different lengths, repeated keys and absent ones, one caller
    cancelled before the batch leaves, a caller asking again from its reply."""
    names = [f"{redis_prefix}:k{i}" for i in range(8)]
    for i, name in enumerate(names[:6]):
        await redis_client.set(name, f"v{i}".encode())
    reads = BatchedReads(relayed)
    asked = [names[i : i + 1 + i % 4] for i in range(8)] + [[names[0]] * 3, [names[7]]]
    tasks = [asyncio.ensure_future(reads.mget(keys)) for keys in asked]
    tasks[3].cancel()

    async def twice() -> list[object]:
        first = await reads.mget([names[1]])
        return first + await reads.mget([names[2], names[6]])

    again = asyncio.ensure_future(twice())
    async with asyncio.timeout(GUARD):
        done = await asyncio.gather(*tasks, again, return_exceptions=True)
    expected = [
        [f"v{names.index(n)}".encode() if names.index(n) < 6 else None for n in keys]
        for keys in asked
    ]
    for i, (want, got) in enumerate(zip(expected, done, strict=False)):
        assert isinstance(got, asyncio.CancelledError) if i == 3 else got == want
    assert done[-1] == [b"v1", b"v2", None]
    await reads.close()
