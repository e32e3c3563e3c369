"""BOSH (XEP-0124/0206) at /http-bind/: sessions, held polls, rids, errors."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET

import aiohttp
import pytest
from pytest_aiohttp import AiohttpServer

from tests.sim.conftest import SimClient
from tests.xmppclient import HTTPBIND, SASL, STREAM, BoshClient, plain_auth
from webproxy.sim import FinesseSimulator


def bosh(client: SimClient, wait: float = 10) -> BoshClient:
    return BoshClient(client.session, client.make_url("/http-bind/"), wait=wait)


async def held(sim: FinesseSimulator, poll: asyncio.Task[ET.Element]) -> None:
    """Return once the simulator has the poll in hand."""
    async with asyncio.timeout(5):
        await sim.wait_for_requests(1)
    assert not poll.done()


async def test_a_session_is_created_with_its_limits_and_the_sasl_features(
    client: SimClient,
) -> None:
    created = await bosh(client, wait=30).create()
    assert len(created.get("sid", "")) >= 16
    limits = [created.get(name) for name in ("wait", "hold", "requests", "ver", "from")]
    assert limits == ["30", "1", "2", "1.6", "finesse.example.com"]
    mechanism = created.findtext(f"{{{STREAM}}}features/{{{SASL}}}mechanisms/{{{SASL}}}mechanism")
    assert mechanism == "PLAIN"


async def test_an_empty_poll_is_held_for_wait_then_answered_empty(client: SimClient) -> None:
    session = bosh(client, wait=0.3)
    await session.sign_in("10001")
    loop = asyncio.get_running_loop()
    started = loop.time()
    answer = await session.request()
    assert loop.time() - started >= 0.3
    assert (answer.tag, len(answer), answer.get("type")) == (f"{{{HTTPBIND}}}body", 0, None)


async def test_a_new_request_releases_the_held_one_and_terminate_ends_the_session(
    sim: FinesseSimulator, client: SimClient
) -> None:
    session = bosh(client)
    await session.sign_in("10001")
    sim.reset_stats()
    first = asyncio.create_task(session.request())
    await held(sim, first)
    second = asyncio.create_task(session.request())
    async with asyncio.timeout(5):
        assert len(await first) == 0
    ended = await session.request(type="terminate")
    async with asyncio.timeout(5):
        assert (await second).get("type") == "terminate"
    assert ended.get("type") == "terminate"
    status, gone = await session.post(f"<body rid='1' sid='{session.sid}' xmlns='{HTTPBIND}'/>")
    assert (status, gone.get("condition")) == (404, "item-not-found")


async def test_a_repeated_rid_gets_the_first_answer_again(client: SimClient) -> None:
    session = bosh(client)
    await session.create()
    rid = next(session.rids)
    auth = plain_auth("10001", "finesse")
    body = f"<body rid='{rid}' sid='{session.sid}' xmlns='{HTTPBIND}'>{auth}</body>"
    first, again = await session.post(body), await session.post(body)
    assert first[0] == again[0] == 200
    assert ET.tostring(first[1]) == ET.tostring(again[1])
    assert first[1].find(f"{{{SASL}}}success") is not None


async def test_a_wrong_password_gets_a_sasl_failure(client: SimClient) -> None:
    session = bosh(client)
    await session.create()
    answer = await session.request(plain_auth("10001", "wrong"))
    assert answer.find(f"{{{SASL}}}failure/{{{SASL}}}not-authorized") is not None


@pytest.mark.parametrize(
    "body",
    [
        b"<body rid='1' xmlns='http://jabber.org/protocol/httpbind'>",
        b"<!DOCTYPE body [<!ENTITY x 'x'>]><body rid='1' xmlns='http://jabber.org/protocol/httpbind'/>",
        b"<body rid='one' xmlns='http://jabber.org/protocol/httpbind'/>",
    ],
    ids=["unclosed", "doctype", "bad-rid"],
)
async def test_a_malformed_body_gets_400_and_the_server_carries_on(
    client: SimClient, body: bytes
) -> None:
    response = await client.post("/http-bind/", data=body)
    assert response.status == 400
    answer = ET.fromstring(await response.read())
    assert (answer.get("type"), answer.get("condition")) == ("terminate", "bad-request")
    assert (await bosh(client).sign_in("10001")).startswith("10001@finesse.example.com/")


async def test_a_held_poll_ends_when_the_server_shuts_down(aiohttp_server: AiohttpServer) -> None:
    sim = FinesseSimulator()
    server = await aiohttp_server(sim.app)
    async with aiohttp.ClientSession() as http:
        session = BoshClient(http, server.make_url("/http-bind/"), wait=100)
        await session.sign_in("10001")
        sim.reset_stats()
        poll = asyncio.create_task(session.request())
        await held(sim, poll)
        async with asyncio.timeout(5):
            await server.close()
            answer = await poll
    assert (answer.get("type"), answer.get("condition")) == ("terminate", "remote-stream-error")
