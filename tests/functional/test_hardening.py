"""Abuse cases: hop-by-hop tricks, cookies on sign-in, refused and stuck upgrades, full pools."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from tests.conftest import AGENT, ProxyFactory, Sim, basic, settings_for
from webproxy.appkeys import services_key
from webproxy.cache.access import Identity
from webproxy.cache.rules import Resource, Scope

USER_10001 = (
    "<User><uri>/finesse/api/User/10001</uri><loginId>10001</loginId><roles><role>Agent</role>"
    "</roles><teamId>5000</teamId></User>"
)


async def url_of(aiohttp_server: AiohttpServer, app: web.Application) -> str:
    return str((await aiohttp_server(app)).make_url("")).rstrip("/")


async def test_connection_cannot_hide_a_keyed_header_from_finesse(
    aiohttp_server: AiohttpServer, start_proxy: ProxyFactory
) -> None:
    async def chat_config(request: web.Request) -> web.Response:
        return web.Response(text=f"accept={request.headers.get('Accept', '-')}")

    app = web.Application()
    app.router.add_get("/finesse/api/ChatConfig", chat_config)
    proxy = await start_proxy(settings_for(await url_of(aiohttp_server, app)))
    sneaky = {**AGENT, "Accept": "application/json", "Connection": "keep-alive, Accept"}
    first = await proxy.client.get("/finesse/api/ChatConfig", headers=sneaky)
    assert await first.text() == "accept=application/json"  # what the key says is what went


async def test_a_session_cookie_cannot_vouch_for_a_made_up_credential_at_sign_in(
    aiohttp_server: AiohttpServer, start_proxy: ProxyFactory
) -> None:
    real = basic("10001")["Authorization"]

    async def user(request: web.Request) -> web.Response:
        # like Tomcat with a cached session principal: a valid session is enough
        if "JSESSIONID=admin-session" in request.headers.get("Cookie", ""):
            return web.Response(text=USER_10001, content_type="application/xml")
        if request.headers.get("Authorization") == real:
            return web.Response(text=USER_10001, content_type="application/xml")
        return web.Response(status=401, text="<ApiErrors/>")

    async def codes(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != real:
            return web.Response(status=401, text="<ApiErrors/>")
        return web.Response(text="<ReasonCodes>team 5000</ReasonCodes>")

    app = web.Application()
    app.router.add_get("/finesse/api/User/10001", user)
    app.router.add_get("/finesse/api/TeamResource/5000/ReasonCodes", codes)
    proxy = await start_proxy(settings_for(await url_of(aiohttp_server, app)))
    codes_path = "/finesse/api/TeamResource/5000/ReasonCodes"
    await proxy.client.get("/finesse/api/User/10001", headers=AGENT)
    assert (await proxy.client.get(codes_path, headers=AGENT)).status == 200  # cached now
    fake = {**basic("10001", "made-up"), "Cookie": "JSESSIONID=admin-session"}
    signed = await proxy.client.get("/finesse/api/User/10001", headers=fake)
    assert signed.status == 401  # Finesse judged the credential, not the cookie
    answer = await proxy.client.get(codes_path, headers=basic("10001", "made-up"))
    assert answer.status == 401


async def test_a_refused_upgrade_passes_on_finesses_status_and_forgets_the_credential(
    aiohttp_server: AiohttpServer, start_proxy: ProxyFactory
) -> None:
    async def refuse(request: web.Request) -> web.Response:
        return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="Finesse"'})

    app = web.Application()
    app.router.add_get("/ws/", refuse)
    proxy = await start_proxy(settings_for(await url_of(aiohttp_server, app)))
    identities = proxy.app[services_key].identities
    agent = Identity("10001", frozenset({"Agent"}), "5000")
    identities.bind(AGENT["Authorization"], agent, asked_at=identities.now())
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await proxy.client.ws_connect("/ws/", headers=AGENT)
    assert refused.value.status == 401
    assert refused.value.headers is not None
    assert refused.value.headers["WWW-Authenticate"] == 'Basic realm="Finesse"'
    assert identities.grants(AGENT["Authorization"], Scope(Resource.CHAT_CONFIG)) is None


@pytest.fixture
async def silent_upstream() -> AsyncIterator[str]:
    """Accepts connections, reads, never answers."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the proxy gives up and closes
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.close()
    await server.wait_closed()


async def test_an_upgrade_to_a_silent_upstream_gives_504_within_the_timeouts(
    silent_upstream: str, start_proxy: ProxyFactory
) -> None:
    upstream = {"connect_timeout": 0.3, "read_timeout": 0.3}
    proxy = await start_proxy(settings_for(silent_upstream, upstream=upstream))
    started = time.monotonic()
    with pytest.raises(aiohttp.WSServerHandshakeError) as failed:
        async with asyncio.timeout(10):
            await proxy.client.ws_connect("/ws/")
    assert failed.value.status == 504
    assert time.monotonic() - started < 5


async def test_open_websockets_never_starve_rest_requests_of_connections(
    sim: Sim, start_proxy: ProxyFactory
) -> None:
    proxy = await start_proxy(settings_for(sim.url, upstream={"max_connections": 2}))
    sockets = [await proxy.client.ws_connect("/ws/") for _ in range(4)]
    try:
        async with asyncio.timeout(5):
            response = await proxy.client.get("/finesse/api/User/10001", headers=AGENT)
        assert response.status == 200
    finally:
        for socket in sockets:
            await socket.close()


async def test_a_malformed_client_handshake_gets_400_and_opens_nothing_upstream(
    sim: Sim, start_proxy: ProxyFactory
) -> None:
    proxy = await start_proxy(settings_for(sim.url))
    headers = {"Upgrade": "websocket", "Connection": "Upgrade"}  # no key, no version
    response = await proxy.client.get("/ws/", headers=headers)
    assert response.status == 400
    assert sim.sim.stats().get("GET /ws/", 0) == 0
