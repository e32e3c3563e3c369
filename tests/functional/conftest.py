"""Fixtures of the fast lane's tests: twin proxies, the lane on (`fast`) and off (`slow`),
on one manual clock, so the slow path is the reference for every answer."""

from __future__ import annotations

import pytest

from tests.conftest import AGENT, ManualClock, Proxy, ProxyFactory, Sim, settings_for
from tests.functional.finesse import sign_in
from tests.functional.rawhttp import CHAT, CODES, LANE, SLOW, RedisStart, Start
from tests.functional.test_shared_redis import on_redis
from tests.redisrelay import StallRelay


@pytest.fixture
def start_twin(sim: Sim, start_proxy: ProxyFactory, clock: ManualClock) -> Start:
    """A proxy on the shared clock, signed in as 10001 and warmed with CODES and CHAT."""

    async def start_one(server: dict[str, object], **sections: object) -> Proxy:
        proxy = await start_proxy(settings_for(sim.url, server=server, **sections), clock)
        await sign_in(proxy, "10001")
        for target in (CODES, CHAT):
            response = await proxy.client.get(target, headers=AGENT)
            assert response.headers["Cache-Status"].endswith("stored")
        return proxy

    return start_one


@pytest.fixture
async def fast(start_twin: Start) -> Proxy:
    return await start_twin(LANE)


@pytest.fixture
async def slow(start_twin: Start) -> Proxy:
    return await start_twin(SLOW)


@pytest.fixture
def start_on_redis(
    sim: Sim,
    start_proxy: ProxyFactory,
    clock: ManualClock,
    relay: StallRelay,
    redis_prefix: str,
) -> RedisStart:
    """A proxy on Redis alone through the stall relay (the lane on or off, `server` fields
    replaced), on the shared clock, signed in as 10001 and warmed with CODES and CHAT. The
    store's timeout is long by default: a stalled read stays out until the test lets go."""

    async def start_one(lane: bool, *, store_timeout: float = 4.0, **server: object) -> Proxy:
        store = on_redis(f"redis://127.0.0.1:{relay.port}/0", redis_prefix, timeout=store_timeout)
        settings = settings_for(sim.url, store=store, server={"fast_lane": lane, **server})
        proxy = await start_proxy(settings, clock)
        await sign_in(proxy, "10001")
        for target in (CODES, CHAT):
            assert (await proxy.client.get(target, headers=AGENT)).status == 200
        return proxy

    return start_one
