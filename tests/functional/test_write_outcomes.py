"""Writes whose outcome comes late: purged at once and again after `cache.repurge_after`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from tests.conftest import ADMIN, AGENT, Proxy, ProxyFactory, settings_for
from tests.functional.finesse import eventually
from webproxy.appkeys import services_key

CODES = "/finesse/api/TeamResource/5000/ReasonCodes"
WRITE = "/finesse/api/Team/5000/ReasonCodes"
USER = "<User><loginId>10001</loginId><roles><role>Agent</role></roles><teamId>5000</teamId></User>"


@dataclass
class LateFinesse:
    """Applies a write only when the test says: after the proxy gave up on it, or (as a
    secondary that replicates late) after it has answered."""

    url: str = ""
    version: int = 0
    apply: asyncio.Event = field(default_factory=asyncio.Event)
    answer_first: bool = False  # answer 200 at once, apply on `apply`
    applying: set[asyncio.Task[None]] = field(default_factory=set)

    async def applied(self) -> None:
        await self.apply.wait()
        self.version += 1


LATE = web.AppKey("late", LateFinesse)


async def user(request: web.Request) -> web.Response:
    return web.Response(text=USER, content_type="application/xml")


async def codes(request: web.Request) -> web.Response:
    return web.Response(text=f"<ReasonCodes version='{request.app[LATE].version}'/>")


async def write(request: web.Request) -> web.Response:
    """Like Finesse, applies what arrived whole even if the caller stops waiting."""
    late = request.app[LATE]
    await request.read()
    applying = asyncio.create_task(late.applied())
    late.applying.add(applying)
    if not late.answer_first:
        await asyncio.shield(applying)
    return web.Response(status=200)


@pytest.fixture
async def late(aiohttp_server: AiohttpServer) -> LateFinesse:
    state = LateFinesse()
    app = web.Application()
    app[LATE] = state
    app.router.add_get("/finesse/api/User/10001", user)
    app.router.add_get(CODES, codes)
    app.router.add_put(WRITE, write)
    server = await aiohttp_server(app)
    state.url = str(server.make_url("")).rstrip("/")
    return state


async def body_of(proxy: Proxy) -> tuple[str, str]:
    response = await proxy.client.get(CODES, headers=AGENT)
    assert response.status == 200
    return response.headers["Cache-Status"], await response.text()


async def settled(proxy: Proxy, version: int) -> bool:
    _, text = await body_of(proxy)
    return f"version='{version}'" in text


async def test_a_write_applied_after_its_timeout_is_purged_again(
    late: LateFinesse, start_proxy: ProxyFactory
) -> None:
    settings = settings_for(late.url, upstream={"read_timeout": 0.3}, cache={"repurge_after": 2.0})
    proxy = await start_proxy(settings)
    await proxy.client.get("/finesse/api/User/10001", headers=AGENT)
    await body_of(proxy)
    timed_out = await proxy.client.put(WRITE, data=b"<ReasonCodes/>", headers=ADMIN)
    assert timed_out.status == 504  # sent whole, no answer: purged now, and again later
    status, text = await body_of(proxy)
    assert "fwd=miss" in status and "version='0'" in text  # Finesse has not applied it yet
    status, _ = await body_of(proxy)
    assert status.startswith("webproxy; hit")  # the pre-write body is stored again...
    assert len(proxy.app[services_key].repurges) == 1
    late.apply.set()  # ...then Finesse applies the write
    # ...and the second purge, cache.repurge_after later, ends the stale body
    await eventually(lambda: len(proxy.app[services_key].repurges) == 0)
    status, text = await body_of(proxy)
    assert "fwd=miss" in status and "version='1'" in text


async def test_every_write_is_purged_again_when_configured_for_a_late_secondary(
    late: LateFinesse, start_proxy: ProxyFactory
) -> None:
    late.answer_first = True
    settings = settings_for(late.url, cache={"repurge_after": 1.5, "repurge_every_write": True})
    proxy = await start_proxy(settings)
    await proxy.client.get("/finesse/api/User/10001", headers=AGENT)
    answered = await proxy.client.put(WRITE, data=b"<ReasonCodes/>", headers=ADMIN)
    assert answered.status == 200
    _, text = await body_of(proxy)
    assert "version='0'" in text  # the secondary has not caught up: stored again
    assert (await body_of(proxy))[0].startswith("webproxy; hit")
    late.apply.set()
    await eventually(lambda: len(proxy.app[services_key].repurges) == 0)
    status, text = await body_of(proxy)
    assert "fwd=miss" in status and "version='1'" in text


async def test_an_answered_write_is_not_purged_again_by_default(
    late: LateFinesse, start_proxy: ProxyFactory
) -> None:
    late.apply.set()
    proxy = await start_proxy(settings_for(late.url))
    await proxy.client.get("/finesse/api/User/10001", headers=AGENT)
    assert (await proxy.client.put(WRITE, data=b"<x/>", headers=ADMIN)).status == 200
    assert len(proxy.app[services_key].repurges) == 0
