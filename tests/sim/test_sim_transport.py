"""/ws/ WebSocket echo (clients that do not ask for `xmpp`) and the /sim/echo endpoint.

XMPP at /ws/ and BOSH at /http-bind/ are tested in test_sim_websocket_xmpp and test_sim_bosh.
"""

from __future__ import annotations

import asyncio
import hashlib
import json

import aiohttp
import pytest
from pytest_aiohttp import AiohttpServer

from tests.sim.conftest import SimClient
from webproxy.sim import FinesseSimulator


async def test_websocket_echoes_text_and_binary(client: SimClient) -> None:
    async with client.ws_connect("/ws/") as ws:
        await ws.send_str("<presence/>")
        assert await ws.receive_str() == "<presence/>"
        await ws.send_bytes(b"\x00\x01\xff")
        assert await ws.receive_bytes() == b"\x00\x01\xff"


async def test_websocket_closes_with_the_code_asked_for(client: SimClient) -> None:
    async with client.ws_connect("/ws/") as ws:
        await ws.send_str("close:4001")
        message = await ws.receive()
        assert message.type is aiohttp.WSMsgType.CLOSE
        assert ws.close_code == 4001


async def test_websocket_is_closed_when_the_server_shuts_down(
    aiohttp_server: AiohttpServer,
) -> None:
    server = await aiohttp_server(FinesseSimulator().app)
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(server.make_url("/ws/")) as ws,
    ):
        async with asyncio.timeout(5):
            await server.close()
            message = await ws.receive()
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_echo_returns_body_and_describes_the_request(client: SimClient) -> None:
    body = b"<Dialog>\xe2\x98\x8e</Dialog>" * 1000
    headers = [("Content-Type", "application/xml"), ("X-Dup", "a"), ("X-Dup", "b")]
    response = await client.put(
        "/sim/echo/finesse/api/Dialog/7?x=1&x=2", data=body, headers=headers
    )
    assert response.status == 200
    assert await response.read() == body
    assert response.headers["Content-Type"] == "application/xml"
    assert response.headers["X-Echo-Method"] == "PUT"
    assert response.headers["X-Echo-Path"] == "/sim/echo/finesse/api/Dialog/7?x=1&x=2"
    assert response.headers["X-Echo-Body-Sha256"] == hashlib.sha256(body).hexdigest()
    sent = json.loads(response.headers["X-Echo-Headers"])
    assert [pair for pair in sent if pair[0] == "X-Dup"] == [["X-Dup", "a"], ["X-Dup", "b"]]


@pytest.mark.parametrize("status", [204, 304], ids=str)
async def test_echo_status_without_body(client: SimClient, status: int) -> None:
    response = await client.post(f"/sim/echo?status={status}", data=b"ignored")
    assert response.status == status
    assert await response.read() == b""


async def test_echo_status_and_extra_headers(client: SimClient) -> None:
    query = "status=503&header=Retry-After:5&header=X-Multi:1&header=X-Multi:2"
    response = await client.post(f"/sim/echo?{query}", data=b"down")
    assert response.status == 503
    assert await response.read() == b"down"
    assert response.headers["Retry-After"] == "5"
    assert response.headers.getall("X-Multi") == ["1", "2"]


async def test_echo_size_streams_deterministic_bytes_chunked(client: SimClient) -> None:
    size = 200_000
    response = await client.get(f"/sim/echo?size={size}")
    assert response.headers["Transfer-Encoding"] == "chunked"
    data = await response.read()
    assert len(data) == size
    assert data == bytes(k % 256 for k in range(size))


async def test_echo_refuses_bad_parameters(client: SimClient) -> None:
    assert (await client.get("/sim/echo?status=abc")).status == 400
    assert (await client.get("/sim/echo?header=NoColon")).status == 400
