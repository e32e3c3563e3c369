"""One behaviour suite run against every cache store (memory and redis)."""

from __future__ import annotations

import hashlib

import pytest
from redis.asyncio import Redis

from tests.conftest import ManualClock
from tests.stores.conftest import value_length
from webproxy.stores.base import ALL, CacheStore, Found, LabelStats
from webproxy.stores.memory import MemoryStore

TEAM_5000 = (ALL, "teams", "team:5000")
TEAM_6000 = (ALL, "teams", "team:6000")
CHAT = (ALL, "global:ChatConfig")


async def put(
    store: CacheStore[bytes],
    key: str,
    value: bytes,
    counters: tuple[str, ...] = TEAM_5000,
    *,
    keep: float = 60.0,
    label: str = "TeamResource",
) -> bool:
    """Read the generation, then store under it: what the proxy does around a fetch."""
    found = await store.get(key, counters)
    return await store.put(
        key, value, keep=keep, label=label, counters=counters, generation=found.generation
    )


async def test_a_missing_key_reads_as_none_with_zero_generation(store: CacheStore[bytes]) -> None:
    assert await store.get("/nothing", TEAM_5000) == Found(None, (0, 0, 0))


async def test_a_stored_value_reads_back(store: CacheStore[bytes]) -> None:
    assert await put(store, "/a", b"alpha")
    assert await store.get("/a", TEAM_5000) == Found(b"alpha", (0, 0, 0))


async def test_a_second_put_overwrites_the_first(store: CacheStore[bytes]) -> None:
    assert await put(store, "/a", b"first")
    assert await put(store, "/a", b"second")
    assert (await store.get("/a", TEAM_5000)).value == b"second"


async def test_an_entry_is_kept_for_its_keep_time(
    store: CacheStore[bytes], clock: ManualClock, redis_client: Redis, redis_prefix: str
) -> None:
    assert await put(store, "/a", b"alpha", keep=30.0)
    if isinstance(store, MemoryStore):
        clock.advance(29.9)
        assert (await store.get("/a", TEAM_5000)).value == b"alpha"
        clock.advance(0.2)
        assert (await store.get("/a", TEAM_5000)).value is None
    else:
        digest = hashlib.sha256(b"/a").hexdigest()
        assert 29_000 < await redis_client.pttl(f"{redis_prefix}:entry:{digest}") <= 30_000


async def test_purge_invalidates_only_entries_that_list_the_counter(
    store: CacheStore[bytes],
) -> None:
    assert await put(store, "/team/5000", b"five", TEAM_5000)
    assert await put(store, "/team/6000", b"six", TEAM_6000)
    assert await put(store, "/chat", b"chat", CHAT)
    await store.purge("team:5000")
    assert await store.get("/team/5000", TEAM_5000) == Found(None, (0, 0, 1))
    assert await store.get("/team/6000", TEAM_6000) == Found(b"six", (0, 0, 0))
    assert (await store.get("/chat", CHAT)).value == b"chat"
    await store.purge("teams")
    assert (await store.get("/team/6000", TEAM_6000)).value is None
    assert (await store.get("/chat", CHAT)).value == b"chat"


async def test_a_put_with_a_generation_read_before_a_purge_is_refused(
    store: CacheStore[bytes],
) -> None:
    before = await store.get("/a", TEAM_5000)
    await store.purge("team:5000")
    refused = await store.put(
        "/a",
        b"old",
        keep=60,
        label="TeamResource",
        counters=TEAM_5000,
        generation=before.generation,
    )
    assert refused is False
    assert (await store.get("/a", TEAM_5000)).value is None
    assert await put(store, "/a", b"fresh")
    assert (await store.get("/a", TEAM_5000)).value == b"fresh"


async def test_clear_invalidates_everything(store: CacheStore[bytes]) -> None:
    assert await put(store, "/team/5000", b"five", TEAM_5000)
    assert await put(store, "/chat", b"chat", CHAT)
    await store.clear()
    assert await store.get("/team/5000", TEAM_5000) == Found(None, (1, 0, 0))
    assert await store.get("/chat", CHAT) == Found(None, (1, 0))
    assert (await store.stats()).entries == 0


async def test_stats_count_live_entries_and_bytes_by_label(store: CacheStore[bytes]) -> None:
    assert await put(store, "/team/5000", b"x" * 100, TEAM_5000)
    assert await put(store, "/team/6000", b"y" * 200, TEAM_6000)
    assert await put(store, "/chat", b"z" * 50, CHAT, label="ChatConfig")
    stats = await store.stats()
    assert stats.entries == 3
    assert set(stats.by_label) == {"TeamResource", "ChatConfig"}
    teams, chat = stats.by_label["TeamResource"], stats.by_label["ChatConfig"]
    assert teams.entries == 2
    assert chat.entries == 1
    assert teams.bytes >= 300
    assert chat.bytes >= 50
    assert stats.bytes == teams.bytes + chat.bytes
    await store.purge("team:6000")
    after = await store.stats()
    assert after.entries == 2
    assert after.by_label["TeamResource"] == LabelStats(1, after.bytes - chat.bytes)


async def test_counters_move_independently(store: CacheStore[bytes]) -> None:
    await store.purge("team:5000")
    await store.purge("team:5000")
    await store.purge("teams")
    assert (await store.get("/a", TEAM_5000)).generation == (0, 1, 2)
    assert (await store.get("/a", TEAM_6000)).generation == (0, 1, 0)
    assert (await store.get("/a", CHAT)).generation == (0, 0)


async def test_get_reports_the_current_generation_on_a_miss(store: CacheStore[bytes]) -> None:
    assert await put(store, "/a", b"alpha")
    await store.purge("teams")
    assert await store.get("/a", TEAM_5000) == Found(None, (0, 1, 0))
    assert await put(store, "/a", b"again")
    assert await store.get("/a", TEAM_5000) == Found(b"again", (0, 1, 0))


async def test_an_entry_reads_as_missing_under_other_counters(store: CacheStore[bytes]) -> None:
    assert await put(store, "/a", b"alpha", TEAM_5000)
    assert await store.get("/a", TEAM_6000) == Found(None, (0, 0, 0))


@pytest.mark.parametrize(
    ("keep", "counters", "generation"),
    [
        (0.0, TEAM_5000, (0, 0, 0)),
        (-1.0, TEAM_5000, (0, 0, 0)),
        (60.0, ("teams", "team:5000"), (0, 0)),
        (60.0, TEAM_5000, (0, 0)),
    ],
    ids=["zero-keep", "negative-keep", "without-all", "short-generation"],
)
async def test_a_put_breaking_the_interface_raises_value_error(
    store: CacheStore[bytes], keep: float, counters: tuple[str, ...], generation: tuple[int, ...]
) -> None:
    with pytest.raises(ValueError):
        await store.put("/a", b"v", keep=keep, label="x", counters=counters, generation=generation)
    assert (await store.get("/a", counters)).value is None


async def test_a_serving_store_answers_ping(store: CacheStore[bytes]) -> None:
    await store.ping()


# MemoryStore's byte budget (Redis bounds itself through its own maxmemory).


async def test_the_memory_store_evicts_the_least_recently_used_to_stay_in_budget(
    clock: ManualClock,
) -> None:
    store: MemoryStore[bytes] = MemoryStore(250, value_length, timer=clock)
    assert await put(store, "/a", b"a" * 100)
    assert await put(store, "/b", b"b" * 100)
    assert (await store.get("/a", TEAM_5000)).value is not None
    assert await put(store, "/c", b"c" * 100)
    assert (await store.get("/b", TEAM_5000)).value is None
    assert (await store.get("/a", TEAM_5000)).value == b"a" * 100
    assert (await store.stats()).bytes == 200


async def test_the_memory_store_skips_a_value_over_budget_and_drops_the_older_one(
    clock: ManualClock,
) -> None:
    store: MemoryStore[bytes] = MemoryStore(250, value_length, timer=clock)
    assert await put(store, "/a", b"small")
    assert not await put(store, "/a", b"x" * 251)
    assert await store.get("/a", TEAM_5000) == Found(None, (0, 0, 0))
    assert (await store.stats()).entries == 0
