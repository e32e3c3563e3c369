"""Finesse notifications through the proxy: WebSocket relay and BOSH long polls."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from aiohttp import WSMsgType

from tests.conftest import Proxy, ProxyFactory, Sim, settings_for


@pytest.fixture
async def patient(sim: Sim, start_proxy: ProxyFactory) -> Proxy:
    """Short read timeout, longer idle timeout: what long-lived exchanges are for."""
    settings = settings_for(sim.url, upstream={"read_timeout": 0.3, "idle_timeout": 2.0})
    return await start_proxy(settings)


async def test_websocket_messages_cross_both_ways(patient: Proxy) -> None:
    async with patient.client.ws_connect("/ws/", autoping=False) as ws:
        await ws.send_str("<presence/>")
        text = await ws.receive(timeout=5)
        assert (text.type, text.data) == (WSMsgType.TEXT, "<presence/>")
        await ws.send_bytes(b"\x00\xffbinary")
        binary = await ws.receive(timeout=5)
        assert (binary.type, binary.data) == (WSMsgType.BINARY, b"\x00\xffbinary")
        await ws.ping(b"are-you-there")
        pong = await ws.receive(timeout=5)
        assert (pong.type, pong.data) == (WSMsgType.PONG, b"are-you-there")


async def test_websocket_close_codes_pass_through(patient: Proxy) -> None:
    async with patient.client.ws_connect("/ws/") as ws:
        await ws.send_str("close:4001")
        closing = await ws.receive(timeout=5)
        assert closing.type == WSMsgType.CLOSE
        assert closing.data == 4001


async def test_a_websocket_quiet_past_the_idle_timeout_is_closed(
    sim: Sim, start_proxy: ProxyFactory
) -> None:
    proxy = await start_proxy(settings_for(sim.url, upstream={"idle_timeout": 0.3}))
    async with proxy.client.ws_connect("/ws/") as ws:
        started = time.monotonic()
        closing = await ws.receive(timeout=5)
        assert closing.type == WSMsgType.CLOSE
        assert closing.data == 1001
        assert time.monotonic() - started < 5


async def test_a_long_poll_outlives_the_read_timeout(patient: Proxy) -> None:
    body = "<body rid='1' sid='s' wait='0.8' xmlns='http://jabber.org/protocol/httpbind'/>"
    response = await patient.client.post(
        "/http-bind/", data=body, headers={"Content-Type": "text/xml"}
    )
    assert response.status == 200
    assert "httpbind" in await response.text()


async def test_an_ordinary_request_that_slow_gives_504(patient: Proxy, sim: Sim) -> None:
    sim.sim.latency = 0.8
    async with asyncio.timeout(5):
        response = await patient.client.get("/finesse/api/SystemInfo")
    assert response.status == 504


async def test_a_websocket_to_a_stopped_upstream_gives_502(start_proxy: ProxyFactory) -> None:
    from tests.functional.test_forwarding import socket_nobody_listens_on

    with socket_nobody_listens_on() as port:
        proxy = await start_proxy(settings_for(f"http://127.0.0.1:{port}"))
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await proxy.client.ws_connect("/ws/")
    assert refused.value.status == 502
