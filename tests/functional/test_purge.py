"""A write that went through the proxy is never followed by a stale read."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from tests.conftest import ADMIN, Proxy, ProxyFactory, Sim, basic, settings_for
from tests.functional.finesse import sign_in

XML = {"Content-Type": "application/xml"}
CODES = "/finesse/api/TeamResource/{team}/ReasonCodes?category=ALL"
NEW_CODE = (
    "<ReasonCode><category>NOT_READY</category><code>777</code>"
    "<label>Webproxy drill</label><forAll>true</forAll></ReasonCode>"
)


@pytest.fixture
async def warm(sim: Sim, start_proxy: ProxyFactory, store_section: dict[str, object]) -> Proxy:
    """Team 5000's and 5001's reason codes and ChatConfig, cached."""
    proxy = await start_proxy(settings_for(sim.url, store=store_section))
    for agent, team in (("10001", "5000"), ("11001", "5001")):
        await sign_in(proxy, agent)
        response = await proxy.client.get(CODES.format(team=team), headers=basic(agent))
        assert response.headers["Cache-Status"].endswith("stored")
    await proxy.client.get("/finesse/api/ChatConfig", headers=basic("10001"))
    return proxy


async def direct(sim: Sim, path: str, user: str) -> bytes:
    """What Finesse itself answers now."""
    async with aiohttp.ClientSession() as session:
        async with session.get(sim.url + path, headers=basic(user)) as response:
            assert response.status == 200
            return await response.read()


async def read(proxy: Proxy, path: str, user: str) -> tuple[str, bytes]:
    response = await proxy.client.get(path, headers=basic(user))
    assert response.status == 200
    return response.headers["Cache-Status"], await response.read()


async def test_a_write_to_a_teams_reason_codes_purges_only_that_team(warm: Proxy, sim: Sim) -> None:
    write = await warm.client.put(
        "/finesse/api/Team/5000/ReasonCodes?category=NOT_READY",
        data="<ReasonCodes></ReasonCodes>",
        headers={**ADMIN, **XML},
    )
    assert write.status == 200
    status_a, body_a = await read(warm, CODES.format(team="5000"), "10001")
    assert status_a.startswith("webproxy; fwd=miss")
    assert body_a == await direct(sim, CODES.format(team="5000"), "10001")
    status_b, _ = await read(warm, CODES.format(team="5001"), "11001")
    assert status_b.startswith("webproxy; hit")


async def test_a_new_global_reason_code_shows_in_every_teams_next_read(
    warm: Proxy, sim: Sim
) -> None:
    write = await warm.client.post(
        "/finesse/api/ReasonCode", data=NEW_CODE, headers={**ADMIN, **XML}
    )
    assert write.status == 200
    for agent, team in (("10001", "5000"), ("11001", "5001")):
        status, body = await read(warm, CODES.format(team=team), agent)
        assert status.startswith("webproxy; fwd=miss")
        assert b"Webproxy drill" in body


async def test_a_refused_write_purges_nothing(warm: Proxy) -> None:
    write = await warm.client.post(
        "/finesse/api/ReasonCode", data=NEW_CODE, headers={**basic("10001"), **XML}
    )
    assert write.status == 401  # agents may not write config (and 10001 is forgotten)
    await sign_in(warm, "10002")
    status, _ = await read(warm, CODES.format(team="5000"), "10002")
    assert status.startswith("webproxy; hit")


async def test_a_chat_config_write_purges_chat_config(warm: Proxy, sim: Sim) -> None:
    body = (
        "<ChatConfig><primaryNode><host>chat-a.example</host></primaryNode>"
        "<secondaryNode><host>chat-b.example</host></secondaryNode></ChatConfig>"
    )
    write = await warm.client.put("/finesse/api/ChatConfig", data=body, headers={**ADMIN, **XML})
    assert write.status == 200
    status, fresh = await read(warm, "/finesse/api/ChatConfig", "10001")
    assert status.startswith("webproxy; fwd=miss")
    assert fresh == await direct(sim, "/finesse/api/ChatConfig", "10001")
    codes, _ = await read(warm, CODES.format(team="5000"), "10001")
    assert codes.startswith("webproxy; hit")


USER_10001 = (
    "<User><uri>/finesse/api/User/10001</uri><loginId>10001</loginId><loginName>agent10001"
    "</loginName><roles><role>Agent</role></roles><teamId>5000</teamId></User>"
)


@dataclass
class Versioned:
    """An upstream whose reason codes are a version number; each write bumps it."""

    version: int = 1
    read_arrived: asyncio.Event = field(default_factory=asyncio.Event)
    release_read: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/finesse/api/User/10001", self.user)
        app.router.add_get("/finesse/api/TeamResource/5000/ReasonCodes", self.codes)
        app.router.add_post("/finesse/api/ReasonCode", self.write)
        return app

    async def user(self, request: web.Request) -> web.Response:
        return web.Response(text=USER_10001, content_type="application/xml")

    async def codes(self, request: web.Request) -> web.Response:
        body = f"<ReasonCodes>v{self.version}</ReasonCodes>"  # computed on arrival ...
        if self.version == 1:
            self.read_arrived.set()
            await self.release_read.wait()  # ... sent after the write has landed
        return web.Response(text=body, content_type="application/xml")

    async def write(self, request: web.Request) -> web.Response:
        self.version += 1
        return web.Response(status=200)


async def test_a_read_in_flight_across_a_write_is_not_stored(
    aiohttp_server: AiohttpServer, start_proxy: ProxyFactory, store_section: dict[str, object]
) -> None:
    finesse = Versioned()
    server = await aiohttp_server(finesse.app())
    proxy = await start_proxy(
        settings_for(str(server.make_url("")).rstrip("/"), store=store_section)
    )
    await sign_in(proxy, "10001")
    path = CODES.format(team="5000")
    in_flight = asyncio.create_task(proxy.client.get(path, headers=basic("10001")))
    async with asyncio.timeout(5):
        await finesse.read_arrived.wait()
    write = await proxy.client.post("/finesse/api/ReasonCode", data=NEW_CODE, headers=ADMIN)
    assert write.status == 200
    finesse.release_read.set()
    old = await in_flight
    assert await old.text() == "<ReasonCodes>v1</ReasonCodes>"
    assert old.headers["Cache-Status"] == "webproxy; fwd=miss; fwd-status=200"  # not stored
    status, body = await read(proxy, path, "10001")
    assert body == b"<ReasonCodes>v2</ReasonCodes>", status
