"""Concurrent misses for one entry share one upstream fetch, and only with those allowed it."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import Proxy, ProxyFactory, Sim, basic, settings_for
from tests.functional.finesse import eventually, sign_in, upstream_gets
from webproxy.sim import Fault, FaultKind

PATH = "/finesse/api/TeamResource/5000/Workflows"
MEMBERS = ("10000", "10001", "10002", "10003")


@pytest.fixture
async def signed_in(sim: Sim, start_proxy: ProxyFactory, store_section: dict[str, object]) -> Proxy:
    proxy = await start_proxy(settings_for(sim.url, store=store_section))
    for member in MEMBERS:
        await sign_in(proxy, member)
    return proxy


async def test_concurrent_misses_reach_finesse_once(signed_in: Proxy, sim: Sim) -> None:
    sim.sim.inject(Fault(PATH, FaultKind.LATENCY, seconds=1.0))
    responses = await asyncio.gather(
        *(signed_in.client.get(PATH, headers=basic(member)) for member in MEMBERS * 5)
    )
    bodies = {await response.read() for response in responses}
    assert [r.status for r in responses] == [200] * 20
    assert len(bodies) == 1
    assert upstream_gets(sim, PATH) == 1
    statuses = [r.headers["Cache-Status"] for r in responses]
    assert statuses.count("webproxy; fwd=miss; fwd-status=200; stored") == 1
    assert statuses.count("webproxy; fwd=miss; fwd-status=200; detail=collapsed") == 19


async def test_waiters_never_get_the_leaders_error(signed_in: Proxy, sim: Sim) -> None:
    sim.sim.latency = 1.0  # every answer, the leader's 500 included, takes a while
    sim.sim.inject(Fault(PATH, FaultKind.STATUS, status=500, count=1))
    responses = await asyncio.gather(
        *(signed_in.client.get(PATH, headers=basic(member)) for member in MEMBERS)
    )
    statuses = sorted(r.status for r in responses)
    assert statuses == [200, 200, 200, 500]  # the leader's 500 was its own


async def test_a_client_that_leaves_does_not_cancel_the_shared_fetch(
    signed_in: Proxy, sim: Sim
) -> None:
    sim.sim.inject(Fault(PATH, FaultKind.LATENCY, seconds=1.0))
    leader = asyncio.create_task(signed_in.client.get(PATH, headers=basic("10001")))
    await eventually(lambda: upstream_gets(sim, PATH) == 1)
    waiter = asyncio.create_task(signed_in.client.get(PATH, headers=basic("10002")))
    leader.cancel()
    response = await waiter
    assert response.status == 200
    assert upstream_gets(sim, PATH) == 1
    sim.sim.clear_faults()
    again = await signed_in.client.get(PATH, headers=basic("10003"))
    assert again.headers["Cache-Status"].startswith("webproxy; hit")
