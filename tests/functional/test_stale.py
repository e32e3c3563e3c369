"""Stale-if-error: an expired entry may stand in for a failing Finesse; a purged one never."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import ADMIN, AGENT, ManualClock, Proxy, ProxyFactory, Sim, settings_for
from tests.functional.finesse import eventually, sign_in, upstream_gets
from webproxy.sim import Fault, FaultKind

PATH = "/finesse/api/ChatConfig"
TTL = 300.0
WINDOW = 60.0


@pytest.fixture
async def stored(
    sim: Sim, start_proxy: ProxyFactory, clock: ManualClock, store_section: dict[str, object]
) -> Proxy:
    settings = settings_for(sim.url, store=store_section, cache={"stale_if_error": WINDOW})
    proxy = await start_proxy(settings, clock)
    await sign_in(proxy, "10001")
    response = await proxy.client.get(PATH, headers=AGENT)
    assert response.headers["Cache-Status"].endswith("stored")
    return proxy


@pytest.mark.parametrize(
    ("fault", "fwd_status"),
    [
        pytest.param(Fault(PATH, FaultKind.STATUS, status=503), "; fwd-status=503", id="503"),
        pytest.param(Fault(PATH, FaultKind.DROP), "", id="dropped"),
    ],
)
async def test_an_expired_entry_answers_while_finesse_fails(
    stored: Proxy, sim: Sim, clock: ManualClock, fault: Fault, fwd_status: str
) -> None:
    clock.advance(TTL + 10)
    sim.sim.inject(fault)
    response = await stored.client.get(PATH, headers=AGENT)
    assert response.status == 200
    assert response.headers["Cache-Status"] == (
        f"webproxy; fwd=stale{fwd_status}; ttl=-10; detail=stale-if-error"
    )
    assert response.headers["Age"] == str(int(TTL + 10))


async def test_a_fresh_answer_replaces_an_expired_entry(stored: Proxy, clock: ManualClock) -> None:
    clock.advance(TTL + 10)
    response = await stored.client.get(PATH, headers=AGENT)
    assert response.headers["Cache-Status"] == "webproxy; fwd=miss; fwd-status=200; stored"


async def test_past_the_window_finesses_error_passes_through(
    stored: Proxy, sim: Sim, clock: ManualClock
) -> None:
    clock.advance(TTL + WINDOW + 1)
    sim.sim.inject(Fault(PATH, FaultKind.STATUS, status=503))
    response = await stored.client.get(PATH, headers=AGENT)
    assert response.status == 503


async def test_a_purged_entry_is_never_served_stale(
    stored: Proxy, sim: Sim, clock: ManualClock
) -> None:
    clock.advance(TTL + 10)
    write = await stored.client.put(
        PATH,
        data="<ChatConfig><primaryNode><host>x</host></primaryNode></ChatConfig>",
        headers={**ADMIN, "Content-Type": "application/xml"},
    )
    assert write.status == 200
    sim.sim.inject(Fault(PATH, FaultKind.STATUS, status=503))
    response = await stored.client.get(PATH, headers=AGENT)
    assert response.status == 503


async def test_an_unauthorised_request_never_gets_a_stale_body(
    stored: Proxy, sim: Sim, clock: ManualClock
) -> None:
    clock.advance(TTL + 10)
    sim.sim.inject(Fault(PATH, FaultKind.STATUS, status=503))
    response = await stored.client.get(PATH)
    assert response.status == 503


async def test_an_entry_purged_while_finesse_fails_is_not_served_stale(
    stored: Proxy, sim: Sim, clock: ManualClock
) -> None:
    clock.advance(TTL + 10)
    sim.sim.latency = 0.5  # the failing answer takes a while ...
    sim.sim.inject(Fault(PATH, FaultKind.STATUS, status=503))
    failing = asyncio.create_task(stored.client.get(PATH, headers=AGENT))
    await eventually(lambda: upstream_gets(sim, PATH) == 2)
    cleared = await stored.admin.post("/admin/cache/clear")  # ... and a purge lands meanwhile
    assert cleared.status == 200
    response = await failing
    assert response.status == 503
