"""The simulator's XMPP server on its plain TCP port, checked with a real client: slixmpp."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
import slixmpp
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpServer
from slixmpp.plugins.xep_0060 import XEP_0060
from slixmpp.plugins.xep_0199 import XEP_0199

from tests.xmppclient import DOMAIN, notification
from webproxy.sim import FinesseSimulator

SIGN_IN = "<User><state>LOGIN</state><extension>1001</extension></User>"
PUBSUB = f"pubsub.{DOMAIN}"


@dataclass
class Running:
    sim: FinesseSimulator
    server: TestServer
    clients: list[slixmpp.ClientXMPP] = field(default_factory=list)

    async def call(self, method: str, path: str, body: str, user: str, request_id: str = "") -> int:
        """A REST write over HTTP, as `user`; the status."""
        headers = {
            "Authorization": aiohttp.encode_basic_auth(user, "finesse"),
            "Content-Type": "application/xml",
            "requestId": request_id,
        }
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.server.make_url(path), data=body, headers=headers) as r,
        ):
            return r.status


@dataclass
class Client:
    """A slixmpp client, its pubsub events queued as (node, <Update>)."""

    xmpp: slixmpp.ClientXMPP
    events: asyncio.Queue[tuple[str, ET.Element]]

    async def next_event(self) -> tuple[str, ET.Element]:
        async with asyncio.timeout(5):
            return await self.events.get()


Connect = Callable[..., Awaitable[Client]]


@pytest.fixture
async def running(aiohttp_server: AiohttpServer) -> AsyncIterator[Running]:
    sim = FinesseSimulator(xmpp_port=0)
    running = Running(sim, await aiohttp_server(sim.app))
    yield running
    for client in running.clients:
        await client.disconnect(wait=1.0)


def slixmpp_client(jid: str, password: str) -> slixmpp.ClientXMPP:
    """Plain TCP with SASL PLAIN: no TLS offered, so allow PLAIN unencrypted."""
    client = slixmpp.ClientXMPP(jid, password)
    client.enable_starttls = False
    client.enable_direct_tls = False
    client.enable_plaintext = True
    client.plugin["feature_mechanisms"].unencrypted_plain = True
    client.register_plugin("xep_0060")
    client.register_plugin("xep_0199")
    return client


@pytest.fixture
def connect(running: Running) -> Connect:
    async def start(user: str, password: str = "finesse") -> Client:
        xmpp = slixmpp_client(f"{user}@{DOMAIN}/desk", password)
        running.clients.append(xmpp)
        outcome: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        events: asyncio.Queue[tuple[str, ET.Element]] = asyncio.Queue()

        def settle(value: bool) -> None:
            if not outcome.done():
                outcome.set_result(value)

        def on_message(message: slixmpp.Message) -> None:
            found = notification(message.xml)
            if found is not None:
                events.put_nowait(found)

        xmpp.add_event_handler("session_start", lambda _: settle(True))
        xmpp.add_event_handler("failed_auth", lambda _: settle(False))
        xmpp.add_event_handler("pubsub_publish", on_message)  # XEP-0060 parsed it
        host, port = running.sim.xmpp_address
        xmpp.connect(host, port)
        async with asyncio.timeout(5):
            assert await outcome, f"{user} was refused"
        xmpp.send_presence()
        return Client(xmpp, events)

    return start


async def test_slixmpp_signs_in_and_hears_the_user_update_after_a_put(
    running: Running, connect: Connect
) -> None:
    agent = await connect("10001")
    ping: XEP_0199 = agent.xmpp.plugin["xep_0199"]
    assert await ping.ping(jid=slixmpp.JID(DOMAIN), timeout=5) >= 0
    status = await running.call("PUT", "/finesse/api/User/10001", SIGN_IN, "10001", "req-7")
    assert status == 202
    node, update = await agent.next_event()
    assert node == "/finesse/api/User/10001"
    assert update.tag == "Update"
    assert update.findtext("event") == "PUT"
    assert update.findtext("requestId") == "req-7"
    assert update.findtext("source") == "/finesse/api/User/10001"
    assert update.findtext("data/user/state") == "NOT_READY"
    assert update.findtext("data/user/extension") == "1001"


async def test_slixmpp_with_a_wrong_password_is_refused(connect: Connect) -> None:
    with pytest.raises(AssertionError, match="10001 was refused"):
        await connect("10001", "wrong")


async def test_an_agent_hears_only_its_own_updates(running: Running, connect: Connect) -> None:
    first, second = await connect("10001"), await connect("10002")
    await running.call("PUT", "/finesse/api/User/10001", SIGN_IN, "10001")
    await running.call("PUT", "/finesse/api/User/10002", SIGN_IN, "10002")
    assert (await first.next_event())[0] == "/finesse/api/User/10001"
    assert (await second.next_event())[0] == "/finesse/api/User/10002"


async def test_a_supervisor_subscribes_to_its_team_and_hears_its_agents(
    running: Running, connect: Connect
) -> None:
    supervisor, agent = await connect("10000"), await connect("10001")
    node = "/finesse/api/Team/5000/Users"
    sup_pubsub: XEP_0060 = supervisor.xmpp.plugin["xep_0060"]
    await sup_pubsub.subscribe(PUBSUB, node, timeout=5)  # type: ignore[no-untyped-call]
    agent_pubsub: XEP_0060 = agent.xmpp.plugin["xep_0060"]
    with pytest.raises(slixmpp.exceptions.IqError) as refused:
        await agent_pubsub.subscribe(PUBSUB, node, timeout=5)  # type: ignore[no-untyped-call]
    assert refused.value.condition == "forbidden"
    ready = "<User><state>READY</state></User>"
    assert await running.call("PUT", "/finesse/api/User/10001", ready, "10000") == 202
    heard, update = await supervisor.next_event()
    assert heard == node
    assert update.findtext("data/user/loginId") == "10001"
    assert update.findtext("data/user/state") == "READY"


async def test_a_call_made_answered_and_dropped_is_published_on_the_dialogs_node(
    running: Running, connect: Connect
) -> None:
    agent = await connect("10001")
    await running.call("PUT", "/finesse/api/User/10001", SIGN_IN, "10001")
    await agent.next_event()
    call = (
        "<Dialog><requestedAction>MAKE_CALL</requestedAction>"
        "<fromAddress>1001</fromAddress><toAddress>9000</toAddress></Dialog>"
    )
    assert await running.call("POST", "/finesse/api/User/10001/Dialogs", call, "10001") == 202
    node, made = await agent.next_event()
    assert node == "/finesse/api/User/10001/Dialogs"
    assert made.findtext("event") == "POST"
    dialog_id = made.findtext("data/dialogs/Dialog/id")
    assert made.findtext("data/dialogs/Dialog/toAddress") == "9000"
    answer = "<Dialog><requestedAction>ANSWER</requestedAction></Dialog>"
    assert await running.call("PUT", f"/finesse/api/Dialog/{dialog_id}", answer, "10001") == 202
    _, answered = await agent.next_event()
    assert answered.findtext("event") == "PUT"
    assert answered.findtext("data/dialogs/Dialog/state") == "ACTIVE"
    drop = "<Dialog><requestedAction>DROP</requestedAction></Dialog>"
    assert await running.call("PUT", f"/finesse/api/Dialog/{dialog_id}", drop, "10001") == 202
    last = (await agent.next_event())[1], (await agent.next_event())[1]
    assert [u.findtext("event") for u in last] == ["PUT", "DELETE"]
    assert [u.findtext("data/dialogs/Dialog/state") for u in last] == ["DROPPED", "DROPPED"]
    assert last[1].findtext("source") == f"/finesse/api/Dialog/{dialog_id}"


async def raw_exchange(running: Running, *chunks: bytes) -> bytes:
    """Send `chunks` on a bare TCP connection; everything the server sends until it closes."""
    host, port = running.sim.xmpp_address
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for chunk in chunks:
            writer.write(chunk)
        async with asyncio.timeout(5):
            return await reader.read(-1)
    finally:
        writer.close()


HEADER = (
    b"<?xml version='1.0'?><stream:stream to='finesse.example.com' version='1.0'"
    b" xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
)


@pytest.mark.parametrize(
    ("chunks", "condition"),
    [
        ((HEADER, b"<iq type='get'><ping xmlns='urn:xmpp:ping'></iq>"), b"not-well-formed"),
        ((b"<!DOCTYPE x [<!ENTITY a 'aaaa'>]>", HEADER), b"restricted-xml"),
        ((HEADER, b"<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>"), b"not-authorized"),
    ],
    ids=["unclosed-tag", "doctype", "stanza-before-auth"],
)
async def test_bad_input_on_tcp_gets_a_stream_error_and_the_server_carries_on(
    running: Running, connect: Connect, chunks: tuple[bytes, ...], condition: bytes
) -> None:
    answer = await raw_exchange(running, *chunks)
    assert b"<stream:error" in answer
    assert condition in answer
    assert answer.endswith(b"</stream:stream>")
    await connect("10001")  # still serving
