"""The local tier in front of a real Redis: hits without a round trip, kept coherent by events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest
from redis.asyncio import Redis

from tests.conftest import ManualClock
from tests.stores.conftest import STORE_TIMEOUT, identity, value_length
from webproxy.fleet import Event, EventKind
from webproxy.stores.base import ALL, CacheStore, Found
from webproxy.stores.local import LocalTier, purged_event
from webproxy.stores.redis import RedisStore
from webproxy.stores.redis_clients import make_redis_client

TEAM_5000 = (ALL, "teams", "team:5000")
TEAM_6000 = (ALL, "teams", "team:6000")
KEY = "/finesse/api/Team/5000/ReasonCodes"
OTHER = "/finesse/api/Team/6000/ReasonCodes"
TTL = 5.0


@pytest.fixture
async def shared(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisStore[bytes]]:
    client = make_redis_client(redis_url, timeout=STORE_TIMEOUT)
    yield RedisStore(client, prefix=redis_prefix, encode=identity, decode=identity)
    await client.aclose()


def make_tier(
    shared: CacheStore[bytes], clock: ManualClock, max_bytes: int = 10_000
) -> LocalTier[bytes]:
    tier = LocalTier(shared, max_bytes=max_bytes, ttl=TTL, sizeof=value_length, timer=clock)
    tier.trust()
    return tier


@pytest.fixture
def tier(shared: RedisStore[bytes], clock: ManualClock) -> LocalTier[bytes]:
    return make_tier(shared, clock)


async def fill(store: CacheStore[bytes], key: str, value: bytes, counters: Sequence[str]) -> bool:
    found = await store.get(key, counters)
    return await store.put(
        key, value, keep=60.0, label="TeamResource", counters=counters, generation=found.generation
    )


async def test_a_hit_is_answered_here_until_the_ttl(
    tier: LocalTier[bytes], shared: RedisStore[bytes], clock: ManualClock, redis_client: Redis
) -> None:
    assert await fill(tier, KEY, b"old", TEAM_5000)
    await redis_client.flushdb()  # Redis forgets it: only the copy here can answer
    assert await tier.get(KEY, TEAM_5000) == Found(b"old", (0, 0, 0))
    clock.advance(TTL + 0.1)
    assert (await tier.get(KEY, TEAM_5000)).value is None


async def test_a_read_from_redis_is_copied(
    tier: LocalTier[bytes], shared: RedisStore[bytes], redis_client: Redis
) -> None:
    assert await fill(shared, KEY, b"from another replica", TEAM_5000)
    assert (await tier.get(KEY, TEAM_5000)).value == b"from another replica"
    await redis_client.flushdb()
    assert (await tier.get(KEY, TEAM_5000)).value == b"from another replica"


async def test_a_purge_here_drops_the_copy_and_reaches_redis(
    tier: LocalTier[bytes], shared: RedisStore[bytes]
) -> None:
    told: list[Event] = []
    tier.publish = told.append
    assert await fill(tier, KEY, b"old", TEAM_5000)
    assert await fill(tier, OTHER, b"other team", TEAM_6000)
    await tier.purge("team:5000")
    assert (await tier.get(KEY, TEAM_5000)).value is None
    assert (await shared.get(KEY, TEAM_5000)).value is None
    assert (await tier.get(OTHER, TEAM_6000)).value == b"other team"
    assert told == [Event(EventKind.PURGED, b"team:5000")]


async def test_another_replicas_purge_event_drops_the_copy(
    shared: RedisStore[bytes], clock: ManualClock
) -> None:
    here, there = make_tier(shared, clock), make_tier(shared, clock)
    there.publish = here.receive  # the event stream, delivered as Redis pub/sub would
    assert await fill(here, KEY, b"old", TEAM_5000)
    assert await fill(here, OTHER, b"other team", TEAM_6000)
    await there.purge("team:5000")
    assert (await here.get(KEY, TEAM_5000)).value is None
    assert (await here.get(OTHER, TEAM_6000)).value == b"other team"


async def test_a_clear_event_drops_every_copy(tier: LocalTier[bytes], redis_client: Redis) -> None:
    assert await fill(tier, KEY, b"old", TEAM_5000)
    await redis_client.flushdb()
    tier.receive(purged_event(ALL))
    assert (await tier.get(KEY, TEAM_5000)).value is None


async def test_an_unreadable_purge_event_drops_every_copy(
    tier: LocalTier[bytes], redis_client: Redis
) -> None:
    assert await fill(tier, KEY, b"old", TEAM_5000)
    await redis_client.flushdb()
    tier.receive(Event(EventKind.PURGED, b"\xff\xfe"))
    assert (await tier.get(KEY, TEAM_5000)).value is None


class PurgedWhileRead:
    """A shared store whose every read is overtaken by another replica's purge event."""

    def __init__(self, shared: RedisStore[bytes]) -> None:
        self.shared = shared
        self.tier: LocalTier[bytes] | None = None

    async def get(self, key: str, counters: Sequence[str]) -> Found[bytes]:
        found = await self.shared.get(key, counters)  # read before the purge reached Redis
        assert self.tier is not None
        self.tier.receive(purged_event("team:5000"))
        return found

    def __getattr__(self, name: str) -> object:
        return getattr(self.shared, name)


async def test_an_answer_read_before_a_purge_event_is_not_copied(
    shared: RedisStore[bytes], clock: ManualClock, redis_client: Redis
) -> None:
    racing = PurgedWhileRead(shared)
    tier = LocalTier(racing, max_bytes=10_000, ttl=TTL, sizeof=value_length, timer=clock)  # type: ignore[arg-type]
    racing.tier = tier
    tier.trust()
    assert await fill(shared, KEY, b"pre-purge", TEAM_5000)
    assert (await tier.get(KEY, TEAM_5000)).value == b"pre-purge"  # served: it raced
    await redis_client.flushdb()
    assert (await tier.get(KEY, TEAM_5000)).value is None  # but never kept


async def test_distrust_drops_copies_and_reads_redis_until_trusted(
    tier: LocalTier[bytes], shared: RedisStore[bytes], redis_client: Redis
) -> None:
    assert await fill(tier, KEY, b"old", TEAM_5000)
    tier.distrust()
    await redis_client.flushdb()
    assert (await tier.get(KEY, TEAM_5000)).value is None
    assert await fill(shared, KEY, b"new", TEAM_5000)
    assert (await tier.get(KEY, TEAM_5000)).value == b"new"
    await redis_client.flushdb()
    assert (await tier.get(KEY, TEAM_5000)).value is None  # no copy was made untrusted
    tier.trust()
    assert await fill(shared, KEY, b"newer", TEAM_5000)
    assert (await tier.get(KEY, TEAM_5000)).value == b"newer"
    await redis_client.flushdb()
    assert (await tier.get(KEY, TEAM_5000)).value == b"newer"


async def test_copies_stay_within_the_byte_budget(
    shared: RedisStore[bytes], clock: ManualClock
) -> None:
    tier = make_tier(shared, clock, max_bytes=2_000)
    for number in range(20):
        assert await fill(tier, f"{KEY}?{number}", b"x" * 300, TEAM_5000)
    held = await tier.local_stats()
    assert 0 < held.bytes <= 2_000
    assert held.entries < 20
    assert (await tier.stats()).entries == 20  # Redis holds them all


async def test_a_put_replaces_an_older_copy(tier: LocalTier[bytes], redis_client: Redis) -> None:
    assert await fill(tier, KEY, b"old", TEAM_5000)
    assert await fill(tier, KEY, b"refreshed", TEAM_5000)  # a bypassServerCache refresh
    await redis_client.flushdb()
    assert (await tier.get(KEY, TEAM_5000)).value == b"refreshed"


async def test_a_put_redis_refuses_is_not_copied(
    tier: LocalTier[bytes], shared: RedisStore[bytes], redis_client: Redis
) -> None:
    found = await tier.get(KEY, TEAM_5000)
    await shared.purge("team:5000")  # at another replica, before this one's put
    stored = await tier.put(
        KEY,
        b"pre-purge",
        keep=60.0,
        label="TeamResource",
        counters=TEAM_5000,
        generation=found.generation,
    )
    assert not stored
    assert (await tier.get(KEY, TEAM_5000)).value is None
