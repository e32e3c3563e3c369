"""The stores' bounds hold against what an entry really costs: memory measured by
tracemalloc, Redis keys counted in Redis."""

from __future__ import annotations

import tracemalloc

from redis.asyncio import Redis

from webproxy.app import entry_cost
from webproxy.cache.entry import CachedResponse, encode_entry
from webproxy.cache.keys import build_key
from webproxy.cache.rules import TEAM_SLOTS, Purge, Resource, Scope
from webproxy.stores.memory import MemoryStore
from webproxy.stores.redis import RedisStore
from webproxy.stores.redis_clients import make_redis_client

BUDGET = 1024 * 1024
TEAM = Scope(Resource.TEAM_RESOURCE, "5000")


def entry(index: int) -> CachedResponse:
    """A small answer with the headers Finesse sends and a Vary value: overhead dominates."""
    headers = tuple((f"X-Header-{n}", f"value {index} {n}") for n in range(8))
    return CachedResponse(
        status=200,
        headers=(("Content-Type", "application/xml"), *headers),
        body=f"<ReasonCodes>{index}</ReasonCodes>".encode(),
        stored_at=0.0,
        ttl=300.0,
        scope=TEAM,
        vary=(("accept-language", (f"en-{index}",)),),
    )


def long_key(index: int) -> str:
    """One agent's reads with long distinct queries and Accept values."""
    path = "/finesse/api/TeamResource/5000/ReasonCodes"
    query = f"category=NOT_READY&pad={index:06d}{'q' * 400}"
    return build_key(path, query, {"Accept": f"application/xml; v={index}; {'a' * 200}"})


async def fill(store: MemoryStore[CachedResponse], count: int) -> None:
    for index in range(count):
        key = long_key(index)
        found = await store.get(key, TEAM.counters)
        await store.put(
            key,
            entry(index),
            keep=600.0,
            label=TEAM.label,
            counters=TEAM.counters,
            generation=found.generation,
        )


async def test_the_memory_store_holds_no_more_memory_than_its_budget() -> None:
    store: MemoryStore[CachedResponse] = MemoryStore(BUDGET, sizeof=entry_cost)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        await fill(store, 6_000)  # far more than fits: the budget must evict
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    stats = await store.stats()
    assert 0 < stats.entries < 6_000
    assert stats.bytes <= BUDGET
    # what the entries, keys and the store's own structures really take stays in budget
    # (a little over for the cache's dict tables, which grow in steps)
    assert held <= BUDGET * 1.15, (held, stats)


async def test_an_entry_over_max_entry_bytes_is_refused_by_the_memory_store() -> None:
    store: MemoryStore[CachedResponse] = MemoryStore(
        BUDGET, sizeof=entry_cost, max_entry_bytes=4096
    )
    big = CachedResponse(200, (), b"x" * 5000, 0.0, 300.0, TEAM)
    stored = await store.put(
        "/big", big, keep=60.0, label="TeamResource", counters=TEAM.counters, generation=(0, 0, 0)
    )
    assert not stored
    assert (await store.stats()).entries == 0


async def test_the_redis_store_refuses_an_entry_over_max_entry_bytes(
    redis_url: str, redis_prefix: str
) -> None:
    client = make_redis_client(redis_url, timeout=2.0)
    store = RedisStore[CachedResponse](
        client,
        prefix=redis_prefix,
        encode=encode_entry,
        decode=lambda data: CachedResponse(200, (), data, 0.0, 1.0, TEAM),
        max_entry_bytes=64 * 1024,
    )
    try:
        big = CachedResponse(200, (), b"x" * 100_000, 0.0, 300.0, TEAM)
        small = CachedResponse(200, (), b"x" * 1000, 0.0, 300.0, TEAM)
        for key, value, kept in (("/big", big, False), ("/small", small, True)):
            stored = await store.put(
                key, value, keep=60.0, label="TeamResource", counters=TEAM.counters,
                generation=(0, 0, 0),
            )  # fmt: skip
            assert stored is kept
        entries = [key async for key in client.scan_iter(match=f"{redis_prefix}:entry:*")]
        assert len(entries) == 1
    finally:
        await client.aclose()


async def test_purges_of_any_number_of_teams_leave_a_bounded_number_of_redis_counters(
    redis_prefix: str, redis_client: Redis
) -> None:
    store = RedisStore[bytes](redis_client, prefix=redis_prefix, encode=bytes, decode=bytes)
    for team in range(1, TEAM_SLOTS + 1000):
        await store.purge(Purge.team(str(team)).counter)
    counters = [key async for key in redis_client.scan_iter(match=f"{redis_prefix}:gen:*")]
    assert len(counters) <= TEAM_SLOTS
