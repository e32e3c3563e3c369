"""Finesse notifications through the proxy: WebSocket relay and BOSH long polls, and an
agent signing in over XMPP (RFC 7395 WebSocket, XEP-0206 BOSH) to hear its state change.

Clients that do not offer the `xmpp` subprotocol get the simulator's echo at /ws/.
"""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET

import aiohttp
import pytest
from aiohttp import WSMsgType

from tests.conftest import Proxy, ProxyFactory, Sim, basic, settings_for
from tests.xmppclient import HTTPBIND, BoshClient, WsClient


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
    bosh = BoshClient(patient.client.session, patient.client.make_url("/http-bind/"), wait=0.8)
    await bosh.sign_in("10001")
    started = time.monotonic()
    answer = await bosh.request()
    assert time.monotonic() - started >= 0.8
    assert (answer.tag, len(answer), answer.get("type")) == (f"{{{HTTPBIND}}}body", 0, None)


async def test_an_agent_signed_in_over_websocket_hears_its_state_change(
    proxy: Proxy, sim: Sim
) -> None:
    async with proxy.client.ws_connect("/ws/", protocols=("xmpp",)) as ws:
        assert ws.protocol == "xmpp"
        xmpp = WsClient(ws)
        assert await xmpp.sign_in("10001") == "10001@finesse.example.com/desk"
        await change_state(proxy, "10001", "ws-1")
        node, update = await xmpp.next_event(within=5)
    assert node == "/finesse/api/User/10001"
    assert_signed_in(update, "ws-1")
    assert sim.sim.hub.delivered == 1


async def test_an_agent_signed_in_over_bosh_hears_its_state_change_in_a_held_poll(
    proxy: Proxy, sim: Sim
) -> None:
    bosh = BoshClient(proxy.client.session, proxy.client.make_url("/http-bind/"), wait=30)
    assert await bosh.sign_in("10001") == "10001@finesse.example.com/desk"
    sim.sim.reset_stats()
    poll = asyncio.create_task(bosh.next_event())
    async with asyncio.timeout(5):
        await sim.sim.wait_for_requests(1)  # the poll is at the simulator
    started = time.monotonic()
    await change_state(proxy, "10001", "bosh-1")
    async with asyncio.timeout(5):
        node, update = await poll
    assert time.monotonic() - started < 5  # answered when the event came, not after `wait`
    assert node == "/finesse/api/User/10001"
    assert_signed_in(update, "bosh-1")


async def test_malformed_xml_over_websocket_ends_the_stream_not_the_server(proxy: Proxy) -> None:
    async with proxy.client.ws_connect("/ws/", protocols=("xmpp",)) as ws:
        xmpp = WsClient(ws)
        await xmpp.open()
        await xmpp.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>")
        error = await xmpp.receive()
        assert [child.tag.rpartition("}")[2] for child in error] == ["not-well-formed"]
        assert (await xmpp.receive()).tag == "{urn:ietf:params:xml:ns:xmpp-framing}close"
        assert (await ws.receive(timeout=5)).type is WSMsgType.CLOSE
    async with proxy.client.ws_connect("/ws/", protocols=("xmpp",)) as ws:
        assert await WsClient(ws).sign_in("10001")


async def test_malformed_xml_over_bosh_gets_bad_request_not_a_hang(proxy: Proxy) -> None:
    async with asyncio.timeout(5):
        response = await proxy.client.post("/http-bind/", data=b"<body rid='1' xmlns='x'><")
    assert response.status == 400
    assert "bad-request" in await response.text()
    bosh = BoshClient(proxy.client.session, proxy.client.make_url("/http-bind/"))
    assert await bosh.sign_in("10001")


async def change_state(proxy: Proxy, user: str, request_id: str) -> None:
    headers = {**basic(user), "Content-Type": "application/xml", "requestId": request_id}
    body = "<User><state>LOGIN</state><extension>1001</extension></User>"
    response = await proxy.client.put(f"/finesse/api/User/{user}", data=body, headers=headers)
    assert response.status == 202


def assert_signed_in(update: ET.Element, request_id: str) -> None:
    fields = ("event", "requestId", "source", "data/user/state", "data/user/extension")
    assert [update.findtext(name) for name in fields] == [
        "PUT",
        request_id,
        "/finesse/api/User/10001",
        "NOT_READY",
        "1001",
    ]


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
