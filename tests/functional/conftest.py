"""Fixtures of the fast lane's tests: twin proxies, the lane on (`fast`) and off (`slow`),
on one manual clock, so the slow path is the reference for every answer."""

from __future__ import annotations

import pytest

from tests.conftest import AGENT, ManualClock, Proxy, ProxyFactory, Sim, settings_for
from tests.functional.finesse import sign_in
from tests.functional.rawhttp import CHAT, CODES, LANE, SLOW, Start


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
