"""Replicas with the local tier in front of one real Redis: hits without Redis, purges heard."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable

import redis.asyncio

from tests.conftest import ADMIN, AGENT, Proxy, ProxyFactory, Sim
from tests.functional.finesse import eventually, upstream_gets
from tests.functional.fleetchecks import CODES, NEW_CODE, XML
from tests.functional.test_shared_redis import two_replicas
from tests.redisfixture import RedisServer
from webproxy.appkeys import services_key
from webproxy.stores.local import LocalTier

FOREVER = 3600.0  # a copy outlives every test: only an event can make it go
TIER = {"local_max_bytes": 4 * 1024 * 1024, "local_ttl": FOREVER}
CODES_PATH = "/finesse/api/TeamResource/5000/ReasonCodes"


async def subscribed(*proxies: Proxy, within: float = 5.0) -> None:
    """Wait until every replica's tier is in use (its event subscription is made)."""
    await eventually(lambda: all(_tier(proxy).trusted for proxy in proxies), within)


async def until(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    """Ask `check` again until it holds; fail after `within` seconds."""
    async with asyncio.timeout(within):
        for _ in itertools.count():
            if await check():
                return
            await asyncio.sleep(0.005)


async def body_of(proxy: Proxy) -> bytes:
    return await (await proxy.client.get(CODES, headers=AGENT)).read()


async def status_of(proxy: Proxy) -> str:
    return (await proxy.client.get(CODES, headers=AGENT)).headers["Cache-Status"]


async def _holds(answer: Awaitable[bytes], part: bytes) -> bool:
    return part in await answer


async def _lacks(answer: Awaitable[str], start: str) -> bool:
    return not (await answer).startswith(start)


def _tier(proxy: Proxy) -> LocalTier[object]:
    store = proxy.app[services_key].store
    assert isinstance(store, LocalTier)
    return store


async def test_a_hit_is_served_from_the_tier_without_redis(
    sim: Sim, start_proxy: ProxyFactory, redis_url: str, redis_prefix: str
) -> None:
    first, second = await two_replicas(sim, start_proxy, redis_url, redis_prefix, **TIER)
    await subscribed(first, second)
    stored = await first.client.get(CODES, headers=AGENT)
    assert stored.headers["Cache-Status"].endswith("stored")
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        await client.delete(*[key async for key in client.scan_iter(f"{redis_prefix}:entry:*")])
    finally:
        await client.aclose()
    hit = await first.client.get(CODES, headers=AGENT)  # Redis holds nothing: the tier does
    assert hit.headers["Cache-Status"].startswith("webproxy; hit")
    assert await hit.read() == await stored.read()
    miss = await second.client.get(CODES, headers=AGENT)  # the other replica never read it
    assert miss.headers["Cache-Status"].startswith("webproxy; fwd=miss")


async def test_a_write_through_one_replica_drops_the_others_copy(
    sim: Sim, start_proxy: ProxyFactory, redis_url: str, redis_prefix: str
) -> None:
    first, second = await two_replicas(sim, start_proxy, redis_url, redis_prefix, **TIER)
    await subscribed(first, second)
    await first.client.get(CODES, headers=AGENT)
    copied = await second.client.get(CODES, headers=AGENT)
    assert copied.headers["Cache-Status"].startswith("webproxy; hit")
    write = await first.client.post(
        "/finesse/api/ReasonCode", data=NEW_CODE, headers={**ADMIN, **XML}
    )
    assert write.status == 200
    fresh_here = await first.client.get(CODES, headers=AGENT)  # the writer's own: at once
    assert b"Shared drill" in await fresh_here.read()
    # the other's copy would live an hour: only the purge event can end it
    await until(lambda: _holds(body_of(second), b"Shared drill"))


async def test_an_admin_clear_at_one_replica_drops_every_copy(
    sim: Sim, start_proxy: ProxyFactory, redis_url: str, redis_prefix: str
) -> None:
    first, second = await two_replicas(sim, start_proxy, redis_url, redis_prefix, **TIER)
    await subscribed(first, second)
    await first.client.get(CODES, headers=AGENT)
    await second.client.get(CODES, headers=AGENT)
    before = upstream_gets(sim, CODES_PATH)
    cleared = await first.admin.post("/admin/cache/clear")
    assert cleared.status == 200
    await until(lambda: _lacks(status_of(second), "webproxy; hit"))
    assert upstream_gets(sim, CODES_PATH) > before


async def test_a_lost_subscription_drops_the_copies_until_subscribed_again(
    sim: Sim, start_proxy: ProxyFactory, redis_url: str, redis_prefix: str,
    redis_server: RedisServer,
) -> None:  # fmt: skip
    first, _ = await two_replicas(sim, start_proxy, redis_url, redis_prefix, **TIER)
    await subscribed(first)
    await first.client.get(CODES, headers=AGENT)
    hit = await first.client.get(CODES, headers=AGENT)
    assert hit.headers["Cache-Status"].startswith("webproxy; hit")
    redis_server.stop()
    try:
        await eventually(lambda: not _tier(first).trusted)  # the loss is noticed
        forwarded = await first.client.get(CODES, headers=AGENT)  # no copy is trusted now
        assert forwarded.status == 200
        assert not forwarded.headers["Cache-Status"].startswith("webproxy; hit")
    finally:
        redis_server.start()
    await subscribed(first, within=30.0)
