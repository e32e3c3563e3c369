"""RedisStore's own promises: round trips, atomic puts, outages, owed clears, bad data, prefixes."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import pytest
from redis.asyncio import Redis

from tests.redisfixture import RedisServer
from tests.stores.conftest import STORE_TIMEOUT, identity
from webproxy.errors import StoreUnavailable
from webproxy.stores.base import ALL, Found
from webproxy.stores.redis import RedisStore
from webproxy.stores.redis_clients import make_redis_client

TEAM = (ALL, "teams", "team:5000")
GUARD = STORE_TIMEOUT * 3  # an operation must fail well inside this, never hang


class MakeStore(Protocol):
    async def __call__(self, *, url: str = ..., prefix: str = ...) -> RedisStore[bytes]: ...


@dataclass(frozen=True, slots=True)
class Note:
    """A tiny value type whose codec can fail, as a real entry codec can."""

    text: str


def encode_note(note: Note) -> bytes:
    return note.text.encode()


def decode_note(raw: bytes) -> Note:
    return Note(raw.decode())  # UnicodeDecodeError is a ValueError


@pytest.fixture
async def make_store(redis_url: str, redis_prefix: str) -> AsyncIterator[MakeStore]:
    """Build RedisStores (default: this test's prefix and URL); closes them and their clients."""
    clients: list[Redis] = []

    async def make(*, url: str = redis_url, prefix: str = redis_prefix) -> RedisStore[bytes]:
        client = make_redis_client(url, timeout=STORE_TIMEOUT)
        clients.append(client)
        return RedisStore(client, prefix=prefix, encode=identity, decode=identity)

    yield make
    for client in clients:
        await client.aclose()


def entry_key(prefix: str, key: str) -> str:
    return f"{prefix}:entry:{hashlib.sha256(key.encode()).hexdigest()}"


async def put_fresh(store: RedisStore[bytes], key: str, value: bytes) -> bool:
    found = await store.get(key, TEAM)
    return await store.put(
        key, value, keep=60, label="TeamResource", counters=TEAM, generation=found.generation
    )


async def command_counts(client: Redis) -> dict[str, int]:
    info = await client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(stat["calls"]) for name, stat in info.items()}


async def commands_during(client: Redis, action: Awaitable[object]) -> dict[str, int]:
    """The commands Redis ran while `action` ran (INFO itself left out)."""
    before = await command_counts(client)
    await action
    after = await command_counts(client)
    moved = {name: calls - before.get(name, 0) for name, calls in after.items()}
    return {name: calls for name, calls in moved.items() if calls and name != "info"}


async def test_get_is_one_mget(make_store: MakeStore, redis_client: Redis) -> None:
    store = await make_store()
    assert await put_fresh(store, "/a", b"alpha")
    assert await commands_during(redis_client, store.get("/a", TEAM)) == {"mget": 1}
    assert await commands_during(redis_client, store.get("/none", TEAM)) == {"mget": 1}


async def test_put_is_one_script_call(make_store: MakeStore, redis_client: Redis) -> None:
    store = await make_store()
    assert await put_fresh(store, "/warm", b"loads the script")
    found = await store.get("/a", TEAM)
    put = store.put("/a", b"v", keep=60, label="x", counters=TEAM, generation=found.generation)
    ran = await commands_during(redis_client, put)
    assert ran.pop("evalsha") == 1
    assert set(ran) <= {"get", "set"}  # the script's own calls


async def test_a_put_racing_a_purge_never_outlives_it(make_store: MakeStore) -> None:
    writer, purger = await make_store(), await make_store()
    for round_ in range(30):
        key = f"/race/{round_}"
        found = await writer.get(key, TEAM)
        put = writer.put(
            key, b"old", keep=60, label="x", counters=TEAM, generation=found.generation
        )
        await asyncio.gather(put, purger.purge("team:5000"))
        assert (await writer.get(key, TEAM)).value is None


async def test_a_stale_put_neither_writes_nor_clobbers_a_fresher_entry(
    make_store: MakeStore, redis_client: Redis, redis_prefix: str
) -> None:
    store = await make_store()
    stale = (await store.get("/a", TEAM)).generation
    await redis_client.incr(f"{redis_prefix}:gen:teams")
    assert not await store.put("/a", b"old", keep=60, label="x", counters=TEAM, generation=stale)
    assert await redis_client.exists(entry_key(redis_prefix, "/a")) == 0
    assert await put_fresh(store, "/a", b"fresh")
    assert not await store.put("/a", b"old", keep=60, label="x", counters=TEAM, generation=stale)
    assert await store.get("/a", TEAM) == Found(b"fresh", (0, 1, 0))


async def test_a_stopped_redis_raises_store_unavailable_promptly(
    make_store: MakeStore, redis_server: RedisServer
) -> None:
    store = await make_store()
    assert await put_fresh(store, "/a", b"alpha")
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: store.get("/a", TEAM),
        lambda: put_fresh(store, "/b", b"beta"),
        lambda: store.stats(),
        store.ping,
    ]
    redis_server.stop()
    try:
        for call in calls:
            async with asyncio.timeout(GUARD):
                with pytest.raises(StoreUnavailable):
                    await call()
    finally:
        redis_server.start()


async def test_a_paused_redis_raises_store_unavailable_within_the_timeout(
    make_store: MakeStore, redis_url: str
) -> None:
    store = await make_store()
    await store.ping()
    admin = Redis.from_url(redis_url, socket_timeout=10)
    try:
        await admin.client_pause(int(STORE_TIMEOUT * 2000))
        async with asyncio.timeout(GUARD):
            with pytest.raises(StoreUnavailable):
                await store.get("/a", TEAM)
        assert await admin.ping()  # answers once the pause is over
    finally:
        await admin.aclose()


@dataclass(frozen=True, slots=True)
class RedisUser:
    """A Redis ACL user of this test's own, and the URL that logs in as it."""

    name: str
    url: str


@pytest.fixture
async def redis_user(
    redis_url: str, redis_prefix: str, redis_client: Redis
) -> AsyncIterator[RedisUser]:
    """A user who may do everything; tests take commands away to make Redis refuse them."""
    name = redis_prefix.replace(":", "-")
    await redis_client.acl_setuser(
        name, enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all"], reset=True
    )
    address = urlsplit(redis_url)
    yield RedisUser(name, f"redis://{name}:pw@{address.hostname}:{address.port}/0")
    await redis_client.acl_deluser(name)


async def test_a_failed_purge_is_paid_as_a_clear_before_anything_is_served(
    make_store: MakeStore, redis_user: RedisUser, redis_client: Redis, redis_prefix: str
) -> None:
    store = await make_store(url=redis_user.url)
    assert await put_fresh(store, "/a", b"alpha")
    await redis_client.acl_setuser(redis_user.name, commands=["-incr", "-incrby"])
    with pytest.raises(StoreUnavailable):
        await store.purge("team:5000")
    with pytest.raises(StoreUnavailable):  # nothing is served while the clear is owed
        await store.get("/a", TEAM)
    await redis_client.acl_setuser(redis_user.name, commands=["+incr", "+incrby"])
    assert await store.get("/a", TEAM) == Found(None, (1, 0, 0))
    assert await put_fresh(store, "/a", b"after")
    assert await redis_client.get(f"{redis_prefix}:gen:all") == b"1"  # paid once
    assert await redis_client.get(f"{redis_prefix}:gen:team:5000") is None  # the purge was lost


@pytest.mark.parametrize(
    "raw",
    [b"not ours at all", b"wp1:\x00\x00\x00\x05[1,2]payload", b"wp1:\xff\xff\xff\xff["],
    ids=["no-header", "bad-header", "truncated-header"],
)
async def test_an_unreadable_entry_reads_as_missing_and_is_deleted(
    make_store: MakeStore, redis_client: Redis, redis_prefix: str, raw: bytes
) -> None:
    store = await make_store()
    await redis_client.set(entry_key(redis_prefix, "/a"), raw)
    assert await store.get("/a", TEAM) == Found(None, (0, 0, 0))
    assert await redis_client.exists(entry_key(redis_prefix, "/a")) == 0


async def test_a_payload_that_fails_to_decode_reads_as_missing_and_is_deleted(
    redis_client: Redis, redis_prefix: str
) -> None:
    store = RedisStore(redis_client, prefix=redis_prefix, encode=encode_note, decode=decode_note)
    found = await store.get("/a", TEAM)
    assert await store.put(
        "/a", Note("caf\u00e9"), keep=60, label="x", counters=TEAM, generation=found.generation
    )
    assert (await store.get("/a", TEAM)).value == Note("caf\u00e9")
    key = entry_key(redis_prefix, "/a")
    blob = await redis_client.get(key)
    assert blob is not None
    await redis_client.set(key, blob[:-1])  # cut the two-byte "é" in half
    assert (await store.get("/a", TEAM)).value is None
    assert await redis_client.exists(key) == 0


async def test_the_same_stored_bytes_are_decoded_once_and_new_ones_again(
    redis_client: Redis, redis_prefix: str
) -> None:
    """Hits reading the same entry share one decoded value; another replica's put under
    the same key, and a purge, are seen at once (decoded values are kept by content)."""
    decoded: list[bytes] = []

    def counting(raw: bytes) -> Note:
        decoded.append(raw)
        return decode_note(raw)

    store = RedisStore(redis_client, prefix=redis_prefix, encode=encode_note, decode=counting)
    other = RedisStore(redis_client, prefix=redis_prefix, encode=encode_note, decode=decode_note)
    found = await store.get("/a", TEAM)
    assert await store.put(
        "/a", Note("1"), keep=60, label="x", counters=TEAM, generation=found.generation
    )
    first, again = await store.get("/a", TEAM), await store.get("/a", TEAM)
    assert first.value == Note("1") and again.value is first.value
    assert len(decoded) == 1
    await other.purge("teams")
    purged = await store.get("/a", TEAM)
    assert purged.value is None
    assert await other.put(
        "/a", Note("2"), keep=60, label="x", counters=TEAM, generation=purged.generation
    )
    assert (await store.get("/a", TEAM)).value == Note("2")
    assert len(decoded) == 2


async def test_stores_with_different_prefixes_share_nothing(
    make_store: MakeStore, redis_prefix: str
) -> None:
    ours, theirs = await make_store(), await make_store(prefix=f"{redis_prefix}-other")
    assert await put_fresh(ours, "/a", b"ours")
    assert await put_fresh(theirs, "/a", b"theirs")
    await theirs.purge("team:5000")
    await theirs.clear()
    assert await ours.get("/a", TEAM) == Found(b"ours", (0, 0, 0))
    assert (await theirs.get("/a", TEAM)).value is None
    assert (await ours.stats()).entries == 1
    assert (await theirs.stats()).entries == 0


async def test_a_replica_that_saw_redis_go_owes_a_clear_for_when_it_returns(
    make_store: MakeStore, redis_server: RedisServer, redis_prefix: str
) -> None:
    reader, writer = await make_store(), await make_store()  # two replicas, one Redis
    assert await put_fresh(reader, "/a", b"before the write")
    saved = await dump_prefix(redis_server.url, redis_prefix)
    redis_server.stop()
    try:
        with pytest.raises(StoreUnavailable):
            await reader.get("/a", TEAM)  # the reader sees Redis gone ...
        with pytest.raises(StoreUnavailable):
            await writer.purge("team:5000")  # ... while the writer's purge is lost
    finally:
        redis_server.start()
    await restore(redis_server.url, saved)  # Redis returns with its old data
    assert (await reader.get("/a", TEAM)).value is None  # the reader serves nothing older


async def dump_prefix(url: str, prefix: str) -> dict[bytes, bytes]:
    client = Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        dumped = {key: await client.dump(key) for key in keys}
        return {key: value for key, value in dumped.items() if value is not None}
    finally:
        await client.aclose()


async def restore(url: str, saved: dict[bytes, bytes]) -> None:
    client = Redis.from_url(url)
    try:
        for key, value in saved.items():
            await client.restore(key, 0, value, replace=True)
    finally:
        await client.aclose()
