"""XMPP over WebSocket (RFC 7395) at /ws/ for clients that offer the `xmpp` subprotocol."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import aiohttp
import pytest

from tests.sim.conftest import SimClient
from tests.xmppclient import CLIENT, FRAMING, SASL, WsClient, plain_auth

SIGN_IN = "<User><state>LOGIN</state><extension>1001</extension></User>"


async def test_the_xmpp_subprotocol_gets_xmpp_and_the_user_update(client: SimClient) -> None:
    async with client.ws_connect("/ws/", protocols=("xmpp",)) as ws:
        assert ws.protocol == "xmpp"
        xmpp = WsClient(ws)
        jid = await xmpp.sign_in("agent10001", resource="strophe")  # loginName works too
        assert jid == "10001@finesse.example.com/strophe"
        headers = {"Authorization": aiohttp.encode_basic_auth("10001", "finesse")}
        response = await client.put("/finesse/api/User/10001", data=SIGN_IN, headers=headers)
        assert response.status == 202
        node, update = await xmpp.next_event()
        assert node == "/finesse/api/User/10001"
        assert update.findtext("data/user/state") == "NOT_READY"


async def test_ping_and_close_are_answered(client: SimClient) -> None:
    async with client.ws_connect("/ws/", protocols=("xmpp",)) as ws:
        xmpp = WsClient(ws)
        await xmpp.sign_in("10001")
        await xmpp.send(
            f'<iq type="get" id="p1" to="finesse.example.com" xmlns="{CLIENT}">'
            '<ping xmlns="urn:xmpp:ping"/></iq>'
        )
        pong = await xmpp.receive()
        assert (pong.get("type"), pong.get("id")) == ("result", "p1")
        await xmpp.send(f'<close xmlns="{FRAMING}"/>')
        assert (await xmpp.receive()).tag == f"{{{FRAMING}}}close"
        assert (await ws.receive(timeout=5)).type is aiohttp.WSMsgType.CLOSE


async def test_a_wrong_password_gets_a_sasl_failure(client: SimClient) -> None:
    async with client.ws_connect("/ws/", protocols=("xmpp",)) as ws:
        xmpp = WsClient(ws)
        await xmpp.open()
        await xmpp.send(plain_auth("10001", "nope"))
        failure = await xmpp.receive()
        assert failure.find(f"{{{SASL}}}not-authorized") is not None


@pytest.mark.parametrize(
    "frame",
    ["<iq type='get'><ping xmlns='urn:xmpp:ping'></iq>", "<!DOCTYPE a [<!ENTITY b 'c'>]><a/>"],
    ids=["unclosed", "doctype"],
)
async def test_a_malformed_frame_gets_a_stream_error_and_a_close(
    client: SimClient, frame: str
) -> None:
    async with client.ws_connect("/ws/", protocols=("xmpp",)) as ws:
        xmpp = WsClient(ws)
        await xmpp.open()
        await xmpp.send(frame)
        error = await xmpp.receive()
        assert error.tag == "{http://etherx.jabber.org/streams}error"
        assert len(error) == 1 and error[0].tag.endswith(("not-well-formed", "restricted-xml"))
        assert (await xmpp.receive()).tag == f"{{{FRAMING}}}close"
        assert (await ws.receive(timeout=5)).type is aiohttp.WSMsgType.CLOSE
    async with client.ws_connect("/ws/", protocols=("xmpp",)) as ws:
        assert (await WsClient(ws).sign_in("10001")).startswith("10001@")


async def test_stanzas_before_authentication_are_refused(client: SimClient) -> None:
    async with client.ws_connect("/ws/", protocols=("xmpp",)) as ws:
        xmpp = WsClient(ws)
        await xmpp.open()
        await xmpp.send(f'<presence xmlns="{CLIENT}"/>')
        error = await xmpp.receive()
        assert ET.tostring(error).count(b"not-authorized") == 1
