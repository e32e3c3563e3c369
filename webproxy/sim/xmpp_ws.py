"""XMPP over WebSocket (RFC 7395) at `/ws/`, for clients that ask for the `xmpp`
subprotocol as Strophe.js does: one XML document per text message, `<open/>` and
`<close/>` (urn:ietf:params:xml:ns:xmpp-framing) in place of the stream's own tags, a new
`<open/>` after SASL success. A malformed message gets a stream error, `<close/>` and the
WebSocket's close.
"""

from __future__ import annotations

import asyncio
import contextlib
import xml.etree.ElementTree as ET
from typing import Final

from aiohttp import WSMsgType, web

from webproxy.sim.lifetime import Lifetime
from webproxy.sim.pubsub import NotificationHub
from webproxy.sim.xmlstream import MAX_STANZA, XmlRefused, make, parse_document, split, to_text
from webproxy.sim.xmpp import XmppSession

NS_FRAMING: Final = "urn:ietf:params:xml:ns:xmpp-framing"
SUBPROTOCOL: Final = "xmpp"
CLOSE_SECONDS: Final = 5.0


class WsLink:
    """Sends a session's stream as WebSocket text messages, in order, from one task."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.started = False
        self.ended = False

    def start(self, domain: str, stream_id: str) -> None:
        self.started = True
        attrs = {"from": domain, "id": stream_id, "version": "1.0", "xml:lang": "en"}
        self.put(to_text(make("open", NS_FRAMING, attrs)))

    def send(self, element: ET.Element) -> None:
        self.put(to_text(element))

    def end(self) -> None:
        """`<close/>`, then the WebSocket closes (RFC 7395 §3.6)."""
        if not self.ended:
            self.put(to_text(make("close", NS_FRAMING)))
            self.ended = True
            self.queue.put_nowait(None)

    def put(self, text: str) -> None:
        if not self.ended:
            self.queue.put_nowait(text)

    async def pump(self) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            while (text := await self.queue.get()) is not None:
                await self.ws.send_str(text)
        await self.ws.close()


def wants_xmpp(request: web.Request) -> bool:
    """Does the WebSocket handshake offer the `xmpp` subprotocol?"""
    offered = request.headers.get("Sec-WebSocket-Protocol", "")
    return SUBPROTOCOL in (p.strip() for p in offered.split(","))


async def serve_xmpp(
    request: web.Request, hub: NotificationHub, lifetime: Lifetime
) -> web.WebSocketResponse:
    """One XMPP session for the life of the WebSocket."""
    ws = web.WebSocketResponse(protocols=(SUBPROTOCOL,), max_msg_size=MAX_STANZA)
    await ws.prepare(request)
    lifetime.sockets.add(ws)
    link = WsLink(ws)
    session = XmppSession(hub, link)
    pump = asyncio.create_task(link.pump())
    try:
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                read_frame(session, link, message.data)
            else:  # RFC 7395 §3.2: UTF-8 text messages only
                session.fail("unsupported-encoding")
            if session.ended:
                break
    finally:
        session.close()
        link.end()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_SECONDS):
                await pump
        lifetime.sockets.discard(ws)
    return ws


def read_frame(session: XmppSession, link: WsLink, text: str) -> None:
    if not text.strip():
        return  # whitespace between frames: nothing to read
    try:
        element = parse_document(text.encode("utf-8"))
    except XmlRefused as refused:
        if not link.started:
            session.open(None)
        session.fail(refused.condition)
        return
    framing = split(element.tag)
    if framing == (NS_FRAMING, "open"):
        session.open(element.get("to"))
    elif framing == (NS_FRAMING, "close"):
        session.finish()
    elif not link.started:
        session.open(None)
        session.fail("invalid-namespace")
    else:
        session.receive(element)
