"""Replicas of the proxy sharing a real three-master Redis Cluster."""

from __future__ import annotations

import pytest

from tests.conftest import AGENT, Proxy, ProxyFactory, Sim, settings_for
from tests.functional.finesse import sign_in
from tests.functional.fleetchecks import (
    CODES,
    a_write_through_one_is_fresh_through_the_other,
    misses_at_both_share_one_fetch,
)
from tests.redisfixture import free_port
from tests.redisfleet import ClusterFleet
from webproxy.appkeys import services_key
from webproxy.config import Secret
from webproxy.stores.redis import RedisStore


@pytest.fixture
async def replicas(
    sim: Sim, start_proxy: ProxyFactory, redis_cluster: ClusterFleet, redis_prefix: str
) -> tuple[Proxy, Proxy]:
    store = {
        "backend": "redis",
        "redis_url": Secret(redis_cluster.url),
        "redis_cluster": True,
        "key_prefix": redis_prefix,
        "timeout": 2.0,
    }
    settings = settings_for(sim.url, store=store)
    first, second = await start_proxy(settings), await start_proxy(settings)
    for proxy in (first, second):
        await sign_in(proxy, "10001")
    return first, second


async def test_replicas_on_a_cluster_store_then_hit(replicas: tuple[Proxy, Proxy]) -> None:
    first, second = replicas
    shared = first.app[services_key].store
    assert isinstance(shared, RedisStore) and shared.cluster
    stored = await first.client.get(CODES, headers=AGENT)
    assert stored.headers["Cache-Status"].endswith("stored")
    for proxy in (first, second):
        hit = await proxy.client.get(CODES, headers=AGENT)
        assert hit.headers["Cache-Status"].startswith("webproxy; hit")
        assert await hit.read() == await stored.read()


async def test_a_team_write_through_one_replica_purges_for_the_other_on_a_cluster(
    replicas: tuple[Proxy, Proxy],
) -> None:
    first, second = replicas
    await second.client.get(CODES, headers=AGENT)
    hit = await second.client.get(CODES, headers=AGENT)
    assert hit.headers["Cache-Status"].startswith("webproxy; hit")
    await a_write_through_one_is_fresh_through_the_other(first, second)


async def test_misses_at_two_replicas_share_one_upstream_fetch_on_a_cluster(
    sim: Sim, replicas: tuple[Proxy, Proxy]
) -> None:
    await misses_at_both_share_one_fetch(sim, replicas)


async def test_a_proxy_on_an_unreachable_cluster_answers_through_finesse(
    sim: Sim, start_proxy: ProxyFactory, redis_prefix: str
) -> None:
    store = {
        "backend": "redis",
        "redis_url": Secret(f"redis://127.0.0.1:{free_port()}/0"),  # nothing listens there
        "redis_cluster": True,
        "key_prefix": redis_prefix,
        "timeout": 0.5,
    }
    proxy = await start_proxy(settings_for(sim.url, store=store))
    for _ in range(2):
        response = await proxy.client.get(CODES, headers=AGENT)
        assert response.status == 200
        assert response.headers["Cache-Status"].startswith("webproxy; fwd=uri-miss")
    assert (await proxy.admin.get("/readyz")).status == 503
