"""Replicas sharing one real redis-server, and Redis going away under load."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio

from tests.conftest import ADMIN, AGENT, Proxy, ProxyFactory, Sim, settings_for
from tests.functional.finesse import eventually, sign_in, upstream_gets
from tests.functional.fleetchecks import (
    CODES,
    NEW_CODE,
    XML,
    a_write_through_one_is_fresh_through_the_other,
    misses_at_both_share_one_fetch,
)
from tests.redisfixture import RedisServer
from webproxy.appkeys import services_key
from webproxy.cache.rules import Resource, Scope
from webproxy.config import Secret
from webproxy.sim.faults import Fault, FaultKind

CHAT = "/finesse/api/ChatConfig"
CHAT_SCOPE = Scope(Resource.CHAT_CONFIG)


def on_redis(redis_url: str, redis_prefix: str, **store: object) -> dict[str, object]:
    """The `[store]` section of replicas sharing the test's redis-server."""
    return {
        "backend": "redis",
        "redis_url": Secret(redis_url),
        "key_prefix": redis_prefix,
        "timeout": 2.0,
        **store,
    }


async def two_replicas(
    sim: Sim, start_proxy: ProxyFactory, redis_url: str, redis_prefix: str, **store: object
) -> tuple[Proxy, Proxy]:
    settings = settings_for(sim.url, store=on_redis(redis_url, redis_prefix, **store))
    first, second = await start_proxy(settings), await start_proxy(settings)
    for proxy in (first, second):
        await sign_in(proxy, "10001")
    return first, second


@pytest.fixture
async def replicas(
    sim: Sim, start_proxy: ProxyFactory, redis_url: str, redis_prefix: str
) -> tuple[Proxy, Proxy]:
    return await two_replicas(sim, start_proxy, redis_url, redis_prefix)


async def test_replicas_share_entries(replicas: tuple[Proxy, Proxy], sim: Sim) -> None:
    first, second = replicas
    stored = await first.client.get(CODES, headers=AGENT)
    assert stored.headers["Cache-Status"].endswith("stored")
    hit = await second.client.get(CODES, headers=AGENT)
    assert hit.headers["Cache-Status"].startswith("webproxy; hit")
    assert await hit.read() == await stored.read()


async def test_a_write_through_one_replica_is_seen_fresh_through_the_other(
    replicas: tuple[Proxy, Proxy],
) -> None:
    first, second = replicas
    await second.client.get(CODES, headers=AGENT)
    await a_write_through_one_is_fresh_through_the_other(first, second)


async def test_requests_succeed_through_finesse_while_redis_is_down(
    replicas: tuple[Proxy, Proxy], sim: Sim, redis_server: RedisServer
) -> None:
    first, _ = replicas
    await first.client.get(CODES, headers=AGENT)
    redis_server.stop()
    before = upstream_gets(sim, "/finesse/api/TeamResource/5000/ReasonCodes")
    for _ in range(3):
        response = await first.client.get(CODES, headers=AGENT)
        assert response.status == 200
        assert response.headers["Cache-Status"].startswith("webproxy; fwd=uri-miss")
    after = upstream_gets(sim, "/finesse/api/TeamResource/5000/ReasonCodes")
    assert after == before + 3
    ready = await first.admin.get("/readyz")
    assert ready.status == 503
    assert "store" in await ready.json()


async def test_a_purging_write_is_refused_before_finesse_while_redis_is_away(
    replicas: tuple[Proxy, Proxy], sim: Sim, redis_server: RedisServer
) -> None:
    first, _ = replicas
    await first.client.get(CODES, headers=AGENT)
    redis_server.stop()
    try:
        write = await first.client.post(
            "/finesse/api/ReasonCode", data=NEW_CODE, headers={**ADMIN, **XML}
        )
        assert write.status == 503
        assert write.headers.get("Connection") == "close"
        assert "POST /finesse/api/ReasonCode" not in sim.sim.stats()  # never reached Finesse
        state = await first.client.put(  # a write that purges nothing still goes through
            "/finesse/api/User/10001",
            data="<User><state>READY</state></User>",
            headers={**AGENT, **XML},
        )
        assert state.status == 202
    finally:
        redis_server.start()


async def test_with_forward_a_purge_during_an_outage_is_honoured_when_redis_returns(
    sim: Sim,
    start_proxy: ProxyFactory,
    redis_server: RedisServer,
    redis_url: str,
    redis_prefix: str,
) -> None:
    first, second = await two_replicas(
        sim, start_proxy, redis_url, redis_prefix, on_purge_failure="forward"
    )
    await first.client.get(CODES, headers=AGENT)
    saved = await dump_keys(redis_server.url, redis_prefix)
    redis_server.stop()
    write = await first.client.post(
        "/finesse/api/ReasonCode", data=NEW_CODE, headers={**ADMIN, **XML}
    )
    assert write.status == 200  # the write itself went through; its purge is owed
    redis_server.start()
    await restore_keys(redis_server.url, saved)  # as if Redis had persisted the old entry
    for proxy in (first, second):
        response = await proxy.client.get(CODES, headers=AGENT)
        assert response.status == 200
        assert b"Shared drill" in await response.read()


async def dump_keys(url: str, prefix: str) -> dict[bytes, bytes]:
    client = redis.asyncio.Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        assert keys, "nothing was stored"
        dumped = {key: await client.dump(key) for key in keys}
        return {key: value for key, value in dumped.items() if value is not None}
    finally:
        await client.aclose()


async def restore_keys(url: str, saved: dict[bytes, bytes]) -> None:
    client = redis.asyncio.Redis.from_url(url)
    try:
        for key, value in saved.items():
            await client.restore(key, 0, value, replace=True)
    finally:
        await client.aclose()


async def fleet(
    sim: Sim, start_proxy: ProxyFactory, redis_url: str, redis_prefix: str, **cache: object
) -> tuple[Proxy, Proxy]:
    """Two replicas on one Redis, agent 10001 signed in and ChatConfig a hit on both."""
    settings = settings_for(sim.url, store=on_redis(redis_url, redis_prefix), cache=cache)
    replicas = await start_proxy(settings), await start_proxy(settings)
    for proxy in replicas:
        await sign_in(proxy, "10001")
        await proxy.client.get(CHAT, headers=AGENT)
        hit = await proxy.client.get(CHAT, headers=AGENT)
        assert hit.headers["Cache-Status"].startswith("webproxy; hit")
    return replicas


async def test_a_credential_refused_through_one_replica_gets_nothing_cached_from_another(
    sim: Sim, start_proxy: ProxyFactory, redis_url: str, redis_prefix: str
) -> None:
    first, second = await fleet(
        sim, start_proxy, redis_url, redis_prefix, fleet_key=Secret("shared-fleet-secret")
    )
    sim.sim.inject(Fault("/finesse/api/User/10001/Dialogs", FaultKind.STATUS, status=401))
    refused = await first.client.get("/finesse/api/User/10001/Dialogs", headers=AGENT)
    assert refused.status == 401  # a changed password, seen by the first replica

    await eventually(
        lambda: (
            second.app[services_key].identities.grants(AGENT["Authorization"], CHAT_SCOPE) is None
        )
    )
    answer = await second.client.get(CHAT, headers=AGENT)
    assert "detail=unauthorized" in answer.headers["Cache-Status"]  # Finesse asked again


async def test_an_admin_clear_through_one_replica_forgets_identities_in_every_replica(
    sim: Sim, start_proxy: ProxyFactory, redis_url: str, redis_prefix: str
) -> None:
    first, second = await fleet(sim, start_proxy, redis_url, redis_prefix)
    assert (await first.admin.post("/admin/cache/clear")).status == 200
    await eventually(lambda: len(second.app[services_key].identities) == 0)


async def test_a_replica_that_lost_its_subscription_forgets_what_it_learned(
    sim: Sim,
    start_proxy: ProxyFactory,
    redis_server: RedisServer,
    redis_url: str,
    redis_prefix: str,
) -> None:
    _, second = await fleet(sim, start_proxy, redis_url, redis_prefix)
    assert len(second.app[services_key].identities) == 1
    redis_server.stop()  # whatever replicas said meanwhile is lost to it
    try:
        await eventually(lambda: len(second.app[services_key].identities) == 0)
    finally:
        redis_server.start()


async def test_misses_of_one_key_at_two_replicas_share_one_upstream_fetch(
    sim: Sim, replicas: tuple[Proxy, Proxy]
) -> None:
    await misses_at_both_share_one_fetch(sim, replicas)


async def test_a_replica_waiting_on_a_failed_fill_fetches_for_itself(
    sim: Sim, replicas: tuple[Proxy, Proxy]
) -> None:
    first, second = replicas
    # the first request to arrive (through either replica) is slow and fails
    sim.sim.inject(
        Fault("/finesse/api/TeamResource", FaultKind.STATUS, status=503, seconds=0.0, count=1)
    )
    sim.sim.inject(Fault("/finesse/api/TeamResource", FaultKind.LATENCY, seconds=0.3))
    answers = await asyncio.gather(
        first.client.get(CODES, headers=AGENT), second.client.get(CODES, headers=AGENT)
    )
    assert sorted(answer.status for answer in answers) == [200, 503]
