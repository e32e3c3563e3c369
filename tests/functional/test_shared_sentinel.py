"""Replicas of the proxy on a Redis found through real Sentinels, and a failover under them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import aiohttp
import redis.asyncio
from aiohttp import ClientResponse

from tests.conftest import ADMIN, AGENT, Proxy, ProxyFactory, Sim, settings_for
from tests.functional.finesse import sign_in
from tests.functional.fleetchecks import (
    CODES,
    NEW_CODE,
    XML,
    a_write_through_one_is_fresh_through_the_other,
)
from tests.redisfleet import SentinelFleet
from webproxy.config import Secret

ANSWER_WITHIN = 5.0  # any one answer during a failover: never a hang
RESUME_WITHIN = 10.0


async def two_replicas(
    sim: Sim, start_proxy: ProxyFactory, fleet: SentinelFleet, prefix: str, **store: object
) -> tuple[Proxy, Proxy]:
    section = {
        "backend": "redis",
        "redis_url": Secret("redis://127.0.0.1:6379/0"),  # scheme and db; the host is unused
        "sentinels": fleet.sentinels,
        "key_prefix": prefix,
        "timeout": 0.5,
        **store,
    }
    settings = settings_for(sim.url, store=section)
    first, second = await start_proxy(settings), await start_proxy(settings)
    for proxy in (first, second):
        await sign_in(proxy, "10001")
    return first, second


async def answered(request: Awaitable[ClientResponse]) -> ClientResponse:
    async with asyncio.timeout(ANSWER_WITHIN):
        response = await request
        await response.read()
        return response


async def test_replicas_through_sentinels_cache_and_purge(
    sim: Sim, start_proxy: ProxyFactory, healthy_sentinels: SentinelFleet, redis_prefix: str
) -> None:
    first, second = await two_replicas(sim, start_proxy, healthy_sentinels, redis_prefix)
    stored = await first.client.get(CODES, headers=AGENT)
    assert stored.headers["Cache-Status"].endswith("stored")
    hit = await second.client.get(CODES, headers=AGENT)
    assert hit.headers["Cache-Status"].startswith("webproxy; hit")
    await a_write_through_one_is_fresh_through_the_other(first, second)


async def test_a_failover_is_ridden_out_and_a_purge_made_during_it_is_kept(
    sim: Sim, start_proxy: ProxyFactory, healthy_sentinels: SentinelFleet, redis_prefix: str
) -> None:
    first, second = await two_replicas(
        sim, start_proxy, healthy_sentinels, redis_prefix, on_purge_failure="forward"
    )
    for proxy in (first, second):  # both hold the old body, as does the replica
        await proxy.client.get(CODES, headers=AGENT)
        hit = await proxy.client.get(CODES, headers=AGENT)
        assert hit.headers["Cache-Status"].startswith("webproxy; hit")
        assert b"Shared drill" not in await hit.read()
    healthy_sentinels.wait_replicated(f"{redis_prefix}:entry:*")

    old = healthy_sentinels.kill_master()
    promoting = asyncio.create_task(asyncio.to_thread(healthy_sentinels.wait_for_new_master, old))
    write = await answered(
        first.client.post("/finesse/api/ReasonCode", data=NEW_CODE, headers={**ADMIN, **XML})
    )
    assert write.status == 200  # forwarded; its purge could not be recorded, so it is owed
    while not promoting.done():  # reads go on through Finesse, uncached
        for proxy in (first, second):
            response = await answered(proxy.client.get(CODES, headers=AGENT))
            assert response.status == 200
            assert b"Shared drill" in await response.read()
        await asyncio.sleep(0.05)  # pacing while the sentinels promote the replica
    await promoting

    for proxy in (first, second):  # the promoted replica holds the old entry: never served
        await resumes_caching(proxy)


async def resumes_caching(proxy: Proxy, path: str = CODES) -> None:
    """Poll until `proxy` answers a hit again (the same process, no restart), checking
    that every answer on the way carries the new body."""
    async with asyncio.timeout(RESUME_WITHIN):
        while True:
            response = await answered(proxy.client.get(path, headers=AGENT))
            assert response.status == 200
            assert b"Shared drill" in await response.read()
            if response.headers["Cache-Status"].startswith("webproxy; hit"):
                return
            await asyncio.sleep(0.05)  # poll interval, bounded by the timeout


UNREPLICATED_INCR = "redis.set_repl(redis.REPL_NONE) return redis.call('INCR', KEYS[1])"
NOT_READY_CODES = "/finesse/api/TeamResource/5000/ReasonCodes?category=NOT_READY"


async def test_a_purge_the_old_master_never_replicated_is_not_lost_in_a_failover(
    sim: Sim, start_proxy: ProxyFactory, healthy_sentinels: SentinelFleet, redis_prefix: str
) -> None:
    first, second = await two_replicas(sim, start_proxy, healthy_sentinels, redis_prefix)
    for proxy in (first, second):
        for path in (CODES, NOT_READY_CODES):
            await proxy.client.get(path, headers=AGENT)
            hit = await proxy.client.get(path, headers=AGENT)
            assert hit.headers["Cache-Status"].startswith("webproxy; hit")
    healthy_sentinels.wait_replicated(f"{redis_prefix}:entry:*")
    async with aiohttp.ClientSession() as finesse:  # a change made behind the proxies' back
        await finesse.post(
            f"{sim.url}/finesse/api/ReasonCode", data=NEW_CODE, headers={**ADMIN, **XML}
        )
    master = redis.asyncio.Redis(port=healthy_sentinels.master_port())
    try:  # a clear the master acknowledges and then dies before replicating
        await master.eval(UNREPLICATED_INCR, 1, f"{redis_prefix}:gen:all")
    finally:
        await master.aclose()

    old = healthy_sentinels.kill_master()
    await asyncio.to_thread(healthy_sentinels.wait_for_new_master, old)
    for proxy in (first, second):  # no request met the outage: only their events noticed
        relearn = await answered(proxy.client.get(CODES, headers=AGENT))  # Finesse asked
        assert b"Shared drill" in await relearn.read()
        await resumes_caching(proxy, NOT_READY_CODES)  # another key of the team, then
