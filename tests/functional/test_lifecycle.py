"""Life cycle of `webproxy serve`: SIGTERM drains, SIGHUP and /admin/reload reload."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from tests.conftest import AGENT, Sim, basic
from tests.functional.finesse import eventually
from tests.functional.serving import serving

CHUNKS = 20
CHUNK = b"x" * 65536


ARRIVED = web.AppKey("arrived", asyncio.Semaphore)
RELEASE = web.AppKey("release", asyncio.Event)


async def drip(request: web.Request) -> web.StreamResponse:
    """A large download, half sent at once, the rest once the test releases it."""
    request.app[ARRIVED].release()
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    response.content_length = CHUNKS * len(CHUNK)
    await response.prepare(request)
    for sent in range(CHUNKS):
        if sent == CHUNKS // 2:
            await request.app[RELEASE].wait()
        await response.write(CHUNK)
    return response


async def long_poll(request: web.Request) -> web.Response:
    """A BOSH hold, answered once the test releases it."""
    request.app[ARRIVED].release()
    await request.app[RELEASE].wait()
    return web.Response(text="<body xmlns='http://jabber.org/protocol/httpbind'/>")


@dataclass
class SlowUpstream:
    url: str
    arrived: asyncio.Semaphore  # released as each request reaches it
    release: asyncio.Event  # set: the held answers go on


@pytest.fixture
async def slow_upstream(aiohttp_server: AiohttpServer) -> SlowUpstream:
    upstream = SlowUpstream("", asyncio.Semaphore(0), asyncio.Event())
    app = web.Application()
    app[ARRIVED] = upstream.arrived
    app[RELEASE] = upstream.release
    app.router.add_get("/download", drip)
    app.router.add_post("/http-bind/", long_poll)
    server = await aiohttp_server(app)
    upstream.url = str(server.make_url("")).rstrip("/")
    return upstream


async def refuses_connections(url: str) -> bool:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    try:
        _, writer = await asyncio.open_connection(host, int(port))
    except ConnectionRefusedError:
        return True
    writer.close()
    return False


async def test_sigterm_lets_a_download_and_a_long_poll_finish_then_exits_0(
    slow_upstream: SlowUpstream,
) -> None:
    args = ["--upstream", slow_upstream.url]
    async with serving(args) as served, aiohttp.ClientSession() as client:
        download = asyncio.create_task(_read(client, "GET", f"{served.proxy}/download"))
        poll = asyncio.create_task(_read(client, "POST", f"{served.proxy}/http-bind/"))
        async with asyncio.timeout(10):
            await slow_upstream.arrived.acquire()
            await slow_upstream.arrived.acquire()  # both exchanges are under way
        served.signal(signal.SIGTERM)
        for _ in range(1000):  # polling the listener, for 10 s at most
            if await refuses_connections(served.proxy):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("new connections were still accepted while draining")
        assert not download.done() and not poll.done()  # still in flight while draining
        slow_upstream.release.set()
        assert await download == (200, CHUNKS * len(CHUNK))
        status, _ = await poll
        assert status == 200
        assert await served.exit_code() == 0


async def _read(client: aiohttp.ClientSession, method: str, url: str) -> tuple[int, int]:
    async with client.request(method, url, data=b"<body/>" if method == "POST" else None) as r:
        return r.status, len(await r.read())


async def test_sigterm_closes_relayed_websockets_with_going_away(
    aiohttp_server: AiohttpServer,
) -> None:
    from webproxy.sim import FinesseSimulator

    sim = await aiohttp_server(FinesseSimulator().app)
    upstream = str(sim.make_url("")).rstrip("/")
    async with serving(["--upstream", upstream]) as served, aiohttp.ClientSession() as client:
        async with client.ws_connect(f"{served.proxy}/ws/") as ws:
            await ws.send_str("ping")
            assert (await ws.receive(timeout=5)).data == "ping"
            served.signal(signal.SIGTERM)
            closing = await ws.receive(timeout=10)
            assert closing.type == aiohttp.WSMsgType.CLOSE
            assert closing.data == 1001
        assert await served.exit_code() == 0


async def test_sighup_applies_new_ttls_and_names_what_needs_a_restart(
    sim: Sim, tmp_path: Path
) -> None:
    upstream = sim.url
    config = tmp_path / "webproxy.toml"
    config.write_text(f'[upstream]\nurl = "{upstream}"\n[cache.ttl]\nChatConfig = 300\n')
    async with serving(["--config", str(config)]) as served, aiohttp.ClientSession() as client:
        await client.get(f"{served.proxy}/finesse/api/User/10001", headers=AGENT)
        config.write_text(
            f'[upstream]\nurl = "{upstream}"\nread_timeout = 9\n[cache.ttl]\nChatConfig = 42\n'
        )
        served.signal(signal.SIGHUP)
        await eventually(lambda: any("reloaded" in line for line in served.stderr))
        reloaded = next(line for line in served.stderr if "reloaded" in line)
        assert "cache.ttl" in reloaded and "upstream.read_timeout" in reloaded
        async with client.get(f"{served.proxy}/finesse/api/ChatConfig", headers=AGENT) as r:
            assert r.headers["Cache-Status"].endswith("stored")
        async with client.get(f"{served.proxy}/finesse/api/ChatConfig", headers=AGENT) as r:
            assert r.headers["Cache-Status"] == "webproxy; hit; ttl=42"
        served.signal(signal.SIGTERM)
        assert await served.exit_code() == 0


async def test_admin_reload_reports_and_refuses_a_broken_file(sim: Sim, tmp_path: Path) -> None:
    upstream = sim.url
    config = tmp_path / "webproxy.toml"
    config.write_text(f'[upstream]\nurl = "{upstream}"\n')
    async with serving(["--config", str(config)]) as served, aiohttp.ClientSession() as client:
        config.write_text(f'[upstream]\nurl = "{upstream}"\n[admin]\ntoken = "fresh-token"\n')
        async with client.post(f"{served.admin}/admin/reload") as r:
            assert r.status == 200
            assert await r.json() == {"applied": ["admin.token"], "needs_restart": []}
        async with client.post(f"{served.admin}/admin/cache/clear") as r:
            assert r.status == 401  # the new token is in force
        config.write_text("[upstream]\nread_timeout = -1\n")
        bearer = {"Authorization": "Bearer fresh-token"}
        async with client.post(f"{served.admin}/admin/reload", headers=bearer) as r:
            assert r.status == 400
            assert (await r.json())["problems"] == [
                "upstream.read_timeout: must be a positive number, got -1"
            ]
        async with client.get(
            f"{served.proxy}/finesse/api/User/10002", headers=basic("10002")
        ) as r:
            assert r.status == 200  # still serving with the old configuration
        served.signal(signal.SIGTERM)
        assert await served.exit_code() == 0


async def test_sigterm_ends_within_the_grace_with_a_long_poll_held_and_says_so(
    slow_upstream: SlowUpstream,
) -> None:
    grace = 2.0
    env = {"WEBPROXY_SERVER_SHUTDOWN_GRACE": str(grace)}
    async with serving(["--upstream", slow_upstream.url], env) as served:
        async with aiohttp.ClientSession() as client:
            poll = asyncio.create_task(_read(client, "POST", f"{served.proxy}/http-bind/"))
            async with asyncio.timeout(10):
                await slow_upstream.arrived.acquire()  # held upstream until the test ends
            served.signal(signal.SIGTERM)
            # aiohttp's own shutdown waits the grace twice; ours, the grace and a second
            assert await served.exit_code(within=grace + 1.5) == 0
            with contextlib.suppress(aiohttp.ClientError):
                await poll  # cut at the grace
        slow_upstream.release.set()
    draining = [line for line in served.stderr if "draining: waiting" in line]
    assert len(draining) == 1
    assert "1 requests in flight (1 long polls)" in draining[0]
