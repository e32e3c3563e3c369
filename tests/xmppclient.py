"""Minimal XMPP clients for the tests, framed as Strophe.js frames them: RFC 7395 over an
aiohttp WebSocket, and XEP-0124/0206 BOSH as aiohttp POSTs. Each signs in with SASL
PLAIN, binds, opens the session and sends presence, then reads pubsub events.
"""

from __future__ import annotations

import base64
import itertools
import xml.etree.ElementTree as ET
from typing import Final

import aiohttp
from yarl import URL

FRAMING: Final = "urn:ietf:params:xml:ns:xmpp-framing"
HTTPBIND: Final = "http://jabber.org/protocol/httpbind"
XBOSH: Final = "urn:xmpp:xbosh"
SASL: Final = "urn:ietf:params:xml:ns:xmpp-sasl"
BIND: Final = "urn:ietf:params:xml:ns:xmpp-bind"
CLIENT: Final = "jabber:client"
STREAM: Final = "http://etherx.jabber.org/streams"
EVENT: Final = "http://jabber.org/protocol/pubsub#event"
PUBSUB: Final = "http://jabber.org/protocol/pubsub"
DOMAIN: Final = "finesse.example.com"


def plain_auth(user: str, password: str) -> str:
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    return f'<auth xmlns="{SASL}" mechanism="PLAIN">{token}</auth>'


def bind(resource: str) -> str:
    return (
        f'<iq type="set" id="_bind_auth_2" xmlns="{CLIENT}"><bind xmlns="{BIND}">'
        f"<resource>{resource}</resource></bind></iq>"
    )


SESSION: Final = (
    f'<iq type="set" id="_session_auth_2" xmlns="{CLIENT}">'
    '<session xmlns="urn:ietf:params:xml:ns:xmpp-session"/></iq>'
)
PRESENCE: Final = f'<presence xmlns="{CLIENT}"/>'


def notification(stanza: ET.Element) -> tuple[str, ET.Element] | None:
    """(node, the <Update> it carries) of a pubsub event message; None for anything else."""
    items = stanza.find(f"{{{EVENT}}}event/{{{EVENT}}}items")
    text = None if items is None else items.findtext(f"{{{EVENT}}}item/{{{PUBSUB}}}notification")
    if items is None or text is None:
        return None
    return items.get("node", ""), ET.fromstring(text)


class WsClient:
    """XMPP over WebSocket (RFC 7395): one document per text message."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def send(self, text: str) -> None:
        await self.ws.send_str(text)

    async def receive(self, within: float = 5.0) -> ET.Element:
        """The next message, parsed; fails after `within` seconds."""
        message = await self.ws.receive(timeout=within)
        assert message.type is aiohttp.WSMsgType.TEXT, message
        return ET.fromstring(message.data)

    async def open(self) -> ET.Element:
        """<open/>, then the server's <open/> and features."""
        await self.send(f'<open xmlns="{FRAMING}" to="{DOMAIN}" version="1.0"/>')
        opened = await self.receive()
        assert opened.tag == f"{{{FRAMING}}}open", ET.tostring(opened)
        return await self.receive()

    async def sign_in(self, user: str, password: str = "finesse", resource: str = "desk") -> str:
        """Through to available presence; the bound JID."""
        features = await self.open()
        assert features.find(f"{{{SASL}}}mechanisms") is not None
        await self.send(plain_auth(user, password))
        outcome = await self.receive()
        assert outcome.tag == f"{{{SASL}}}success", ET.tostring(outcome)
        await self.open()
        await self.send(bind(resource))
        jid = (await self.receive()).findtext(f"{{{BIND}}}bind/{{{BIND}}}jid")
        await self.send(SESSION)
        await self.receive()
        await self.send(PRESENCE)
        assert (await self.receive()).tag == f"{{{CLIENT}}}presence"
        assert jid is not None
        return jid

    async def next_event(self, within: float = 5.0) -> tuple[str, ET.Element]:
        while True:
            found = notification(await self.receive(within))
            if found is not None:
                return found


class BoshClient:
    """BOSH (XEP-0124/0206) as Strophe speaks it: one POSTed <body> per request."""

    def __init__(self, session: aiohttp.ClientSession, url: URL, wait: float = 30) -> None:
        self.session = session
        self.url = url
        self.wait = wait
        self.rids = itertools.count(4096)
        self.sid = ""
        self.received: list[ET.Element] = []

    async def post(self, body: str) -> tuple[int, ET.Element]:
        headers = {"Content-Type": "text/xml; charset=utf-8"}
        async with self.session.post(self.url, data=body, headers=headers) as response:
            return response.status, ET.fromstring(await response.read())

    async def request(self, *stanzas: str, **attrs: str) -> ET.Element:
        """One request in the session; its answer's <body>."""
        extra = "".join(f' {k.replace("_", ":")}="{v}"' for k, v in attrs.items())
        body = (
            f'<body rid="{next(self.rids)}" sid="{self.sid}" xmlns="{HTTPBIND}"'
            f' xmlns:xmpp="{XBOSH}"{extra}>{"".join(stanzas)}</body>'
        )
        status, answer = await self.post(body)
        assert status == 200, ET.tostring(answer)
        return answer

    async def create(self) -> ET.Element:
        body = (
            f'<body rid="{next(self.rids)}" xmlns="{HTTPBIND}" to="{DOMAIN}" xml:lang="en"'
            f' wait="{self.wait}" hold="1" content="text/xml; charset=utf-8" ver="1.6"'
            f' xmpp:version="1.0" xmlns:xmpp="{XBOSH}"/>'
        )
        status, answer = await self.post(body)
        assert status == 200, ET.tostring(answer)
        self.sid = answer.get("sid", "")
        return answer

    async def sign_in(self, user: str, password: str = "finesse", resource: str = "desk") -> str:
        created = await self.create()
        assert created.find(f"{{{STREAM}}}features/{{{SASL}}}mechanisms") is not None
        success = await self.request(plain_auth(user, password))
        assert success.find(f"{{{SASL}}}success") is not None, ET.tostring(success)
        restarted = await self.request(to=DOMAIN, xmpp_restart="true")
        assert restarted.find(f"{{{STREAM}}}features/{{{BIND}}}bind") is not None
        bound = await self.request(bind(resource))
        jid = bound.findtext(f"{{{CLIENT}}}iq/{{{BIND}}}bind/{{{BIND}}}jid")
        await self.request(SESSION)
        await self.request(PRESENCE)
        assert jid is not None
        return jid

    async def next_event(self) -> tuple[str, ET.Element]:
        """Long-poll (empty bodies) until a pubsub event arrives."""
        while True:
            while self.received:
                found = notification(self.received.pop(0))
                if found is not None:
                    return found
            answer = await self.request()
            assert answer.get("type") != "terminate", ET.tostring(answer)
            self.received.extend(answer)
