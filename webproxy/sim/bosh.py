"""BOSH (XEP-0124) carrying XMPP (XEP-0206) at `/http-bind/`.

A `<body>` without `sid` creates a session: the answer carries `sid`, the `wait` (at most
120 s; fractions are accepted, for tests), `hold` (at most 1), `requests`, `inactivity`
and the stream features. Each later request carries the next `rid`; its stanzas are read,
and it is answered at once when the session has something to send, else held up to
`wait` seconds and answered as soon as a stanza (a pubsub event, say) arrives. A new
request beyond `hold` releases the oldest held one. `xmpp:restart='true'` restarts the
stream after SASL; `type='terminate'` ends the session. A repeated `rid` gets its first
answer again. Unparseable XML gets 400 and an unknown `sid` 404, each with a terminate
body; other errors end the session with a terminate body and 200. Sessions idle longer
than `inactivity` are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
import time
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from aiohttp import web

from webproxy.sim.pubsub import NotificationHub
from webproxy.sim.xmlstream import MAX_STANZA, XmlRefused, make, parse_document, split, to_text
from webproxy.sim.xmpp import NS_STREAM, XmppSession

NS_HTTPBIND: Final = "http://jabber.org/protocol/httpbind"
NS_XBOSH: Final = "urn:xmpp:xbosh"
MAX_WAIT: Final = 120.0
MAX_HOLD: Final = 1
INACTIVITY: Final = 60
POLLING: Final = 2
CACHED: Final = 4


class BoshLink:
    """What a session sends waits here until a request takes it."""

    def __init__(self) -> None:
        self.pending: list[ET.Element] = []
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.domain = ""
        self.stream_id = ""
        self.ended = False
        self.stream_error = False

    def start(self, domain: str, stream_id: str) -> None:
        self.domain, self.stream_id = domain, stream_id

    def send(self, element: ET.Element) -> None:
        self.stream_error |= element.tag == "stream:error"
        self.pending.append(element)
        self.wake_oldest()

    def end(self) -> None:
        self.ended = True
        while self.waiters:
            self.wake_oldest()

    def wake_oldest(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def take(self) -> list[ET.Element]:
        taken, self.pending = self.pending, []
        return taken


@dataclass(eq=False)
class BoshSession:
    sid: str
    rid: int
    wait: float
    hold: int
    xmpp: XmppSession
    link: BoshLink
    last_seen: float
    busy: int = 0
    turn: asyncio.Condition = field(default_factory=asyncio.Condition)
    answers: dict[int, str] = field(default_factory=dict)


class BoshManager:
    """The BOSH sessions of one simulator."""

    def __init__(self, hub: NotificationHub, clock: Callable[[], float] = time.monotonic) -> None:
        self.hub = hub
        self.clock = clock
        self.sessions: dict[str, BoshSession] = {}

    async def handle(self, raw: bytes) -> web.Response:
        if len(raw) > MAX_STANZA:
            return terminate("policy-violation", 403)
        try:
            body = parse_document(raw)
        except XmlRefused:
            return terminate("bad-request", 400)
        if split(body.tag) != (NS_HTTPBIND, "body"):
            return terminate("bad-request", 400)
        self.sweep()
        sid = body.get("sid")
        if sid is None:
            return self.create(body)
        session = self.sessions.get(sid)
        if session is None:
            return terminate("item-not-found", 404)
        session.busy += 1
        try:
            return await self.request(session, body)
        finally:
            session.busy -= 1
            session.last_seen = self.clock()

    def create(self, body: ET.Element) -> web.Response:
        try:
            rid, wait, hold = (
                int(body.get("rid", "")),
                seconds(body.get("wait", "60")),
                int(body.get("hold", "1")),
            )
        except ValueError:
            return terminate("bad-request", 400)
        if hold < 0:
            return terminate("bad-request", 400)
        link = BoshLink()
        sid = secrets.token_hex(16)
        xmpp = XmppSession(self.hub, link)
        session = BoshSession(
            sid, rid, min(wait, MAX_WAIT), min(hold, MAX_HOLD), xmpp, link, self.clock()
        )
        self.sessions[sid] = session
        xmpp.open(body.get("to"))
        attrs = {
            "sid": sid,
            "wait": number(session.wait),
            "hold": str(session.hold),
            "requests": str(session.hold + 1),
            "inactivity": str(INACTIVITY),
            "polling": str(POLLING),
            "ver": "1.6",
            "from": link.domain,
            "authid": link.stream_id,
            "xmpp:version": "1.0",
            "xmpp:restartlogic": "true",
            "xmlns:xmpp": NS_XBOSH,
            "xmlns:stream": NS_STREAM,
        }
        return self.answer(session, rid, attrs)

    async def request(self, session: BoshSession, body: ET.Element) -> web.Response:
        try:
            rid = int(body.get("rid", ""))
        except ValueError:
            self.drop(session)
            return terminate("bad-request")
        if rid <= session.rid and rid in session.answers:
            return reply(session.answers[rid])
        if rid <= session.rid or rid > session.rid + session.hold + 1:
            self.drop(session)
            return terminate("item-not-found")
        try:
            async with asyncio.timeout(max(session.wait, 1.0)), session.turn:
                await session.turn.wait_for(lambda: session.rid >= rid - 1 or session.link.ended)
                session.rid = max(session.rid, rid)
                session.turn.notify_all()
        except TimeoutError:  # an earlier rid never came
            self.drop(session)
            return terminate("item-not-found")
        return await self.act(session, rid, body)

    async def act(self, session: BoshSession, rid: int, body: ET.Element) -> web.Response:
        restart = body.get(f"{{{NS_XBOSH}}}restart") == "true"
        if restart:
            session.xmpp.open(body.get("to"))
        else:
            for child in body:
                session.xmpp.receive(child)
        if body.get("type") == "terminate":
            self.drop(session)
            return self.answer(session, rid, {"type": "terminate"})
        if not restart and not session.link.pending and not session.link.ended:
            await self.hold(session)
        return self.answer(session, rid)

    async def hold(self, session: BoshSession) -> None:
        """Until something is to be sent, a newer request displaces this one, or `wait`."""
        if session.hold == 0:
            return
        link = session.link
        while len(link.waiters) >= session.hold:
            link.wake_oldest()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        link.waiters.append(waiter)
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(session.wait):
                    await waiter
        finally:
            with contextlib.suppress(ValueError):
                link.waiters.remove(waiter)

    def answer(
        self, session: BoshSession, rid: int, attrs: dict[str, str] | None = None
    ) -> web.Response:
        attrs = dict(attrs or {})
        children = session.link.take()
        if session.link.ended:
            attrs["type"] = "terminate"
            if session.link.stream_error:
                attrs["condition"] = "remote-stream-error"
            self.drop(session)
        text = to_text(body_of(attrs, children))
        session.answers[rid] = text
        for old in [r for r in session.answers if r <= rid - CACHED]:
            del session.answers[old]
        return reply(text)

    def drop(self, session: BoshSession) -> None:
        self.sessions.pop(session.sid, None)
        session.xmpp.close()
        session.link.end()

    def sweep(self) -> None:
        """Drop sessions nobody has asked anything of for `inactivity` seconds."""
        now = self.clock()
        for session in list(self.sessions.values()):
            if session.busy == 0 and now - session.last_seen > INACTIVITY:
                self.drop(session)

    async def stop(self, app: web.Application) -> None:
        """on_shutdown: every session ends (`system-shutdown`); held requests are answered."""
        for session in list(self.sessions.values()):
            session.xmpp.fail("system-shutdown")
            self.drop(session)


def seconds(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"wait={text}")
    return value


def number(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


def body_of(attrs: dict[str, str], children: list[ET.Element]) -> ET.Element:
    body = make("body", NS_HTTPBIND, attrs)
    body.extend(children)
    return body


def reply(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/xml", charset="utf-8")


def terminate(condition: str, status: int = 200) -> web.Response:
    """A terminal binding condition (XEP-0124 §17); 400/403/404 also as HTTP statuses."""
    return reply(to_text(body_of({"type": "terminate", "condition": condition}, [])), status)
