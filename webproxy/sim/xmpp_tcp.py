"""The plain XMPP listener: RFC 6120 client streams over TCP, without TLS, so that a real
XMPP client library can check the simulator (`webproxy sim --xmpp-port N`; 0 picks a
free port). Finesse's own 5222 is the same protocol; 5223 (TLS) is not modelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import xml.etree.ElementTree as ET
from typing import Final
from xml.sax.saxutils import quoteattr

from webproxy.sim.pubsub import NotificationHub
from webproxy.sim.xmlstream import Child, Closed, Opened, StreamParser, XmlRefused, split, to_text
from webproxy.sim.xmpp import NS_CLIENT, NS_STREAM, XmppSession

READ_SIZE: Final = 65536
DECLARATION: Final = "<?xml version='1.0'?>"
CLOSE_SECONDS: Final = 5.0


class TcpLink:
    """Writes a session's stream to its socket: the header at each (re)start, then stanzas."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.started = False
        self.ended = False

    def start(self, domain: str, stream_id: str) -> None:
        self.started = True
        self.write(
            f"{DECLARATION}<stream:stream from={quoteattr(domain)} id={quoteattr(stream_id)}"
            f" version='1.0' xml:lang='en' xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAM}'>"
        )

    def send(self, element: ET.Element) -> None:
        self.write(to_text(element))

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            self.write("</stream:stream>")
            self.writer.close()

    def write(self, text: str) -> None:
        if not self.ended or text == "</stream:stream>":
            self.writer.write(text.encode("utf-8"))


class XmppListener:
    """An asyncio TCP server whose connections are XMPP sessions on one hub."""

    def __init__(self, hub: NotificationHub, host: str, port: int) -> None:
        self.hub = hub
        self.host = host
        self.port = port
        self.server: asyncio.Server | None = None
        self.sessions: set[XmppSession] = set()

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) listened on; the port is the real one when 0 was asked for."""
        assert self.server is not None, "the listener has not started"
        host, port = self.server.sockets[0].getsockname()[:2]
        return host, port

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.serve, self.host, self.port)

    async def close(self) -> None:
        """Stop listening; every open stream ends (`system-shutdown`)."""
        if self.server is None:
            return
        self.server.close()
        for session in list(self.sessions):
            with contextlib.suppress(OSError):
                session.fail("system-shutdown")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_SECONDS):
                await self.server.wait_closed()
        self.server = None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = TcpLink(writer)
        session = XmppSession(self.hub, link)
        self.sessions.add(session)
        try:
            await self.read(reader, session, link)
        except (ConnectionError, OSError):
            pass
        finally:
            session.close()
            self.sessions.discard(session)
            writer.close()

    async def read(self, reader: asyncio.StreamReader, session: XmppSession, link: TcpLink) -> None:
        parser = StreamParser()
        while not session.ended and (data := await reader.read(READ_SIZE)):
            try:
                events = parser.feed(data)
            except XmlRefused as refused:
                if not link.started:
                    session.open(None)
                session.fail(refused.condition)
                return
            for event in events:
                match event:
                    case Opened(header):
                        if split(header.tag) != (NS_STREAM, "stream"):
                            session.open(None)
                            session.fail("invalid-namespace")
                        else:
                            session.open(header.get("to"))
                    case Child(element):
                        session.receive(element)
                        if session.restarting:  # SASL success: the next bytes are a new stream
                            parser = StreamParser()
                            break
                    case Closed():
                        session.finish()
            await link.writer.drain()
