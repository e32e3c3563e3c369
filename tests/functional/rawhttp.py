"""Raw HTTP/1.1 over a socket to a proxy under test: one read is the test's, one answer
is read whole. The fast lane's tests (`test_fast_lane*.py`) speak through these."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp.test_utils import TestServer

from tests.conftest import AGENT, Proxy
from webproxy.fastlane import FastLane
from webproxy.listener import ClientServer

CODES = "/finesse/api/TeamResource/5000/ReasonCodes?category=NOT_READY"
CHAT = "/finesse/api/ChatConfig"
AUTH = AGENT["Authorization"]
LANE: dict[str, object] = {"fast_lane": True}
SLOW: dict[str, object] = {"fast_lane": False}

#: `start_twin`'s (tests/functional/conftest.py): a proxy with these `[server]` settings.
Start = Callable[..., Awaitable[Proxy]]
#: `start_on_redis`'s: a proxy on Redis alone, the lane on or off (and `[server]` fields).
RedisStart = Callable[..., Awaitable[Proxy]]


def request(
    target: str = CODES,
    *,
    auth: str = AUTH,
    extra: str = "",
    version: str = "1.1",
    line: str | None = None,
    host: str = "Host: finesse\r\n",
) -> bytes:
    """A GET of `target` with the agent's credential and `Accept: */*` (keyed: what the
    warming client sends), `extra` fields before the blank line; `line` replaces the
    request line."""
    start = line if line is not None else f"GET {target} HTTP/{version}"
    return (f"{start}\r\n{host}Authorization: {auth}\r\nAccept: */*\r\n{extra}\r\n").encode()


def manager_of(proxy: Proxy) -> ClientServer:
    server = proxy.client.server
    assert isinstance(server, TestServer) and server.runner is not None
    manager = server.runner.server
    assert isinstance(manager, ClientServer)
    return manager


def lane_of(proxy: Proxy) -> FastLane:
    lane = manager_of(proxy).fast_lane
    assert lane is not None
    return lane


def hits_of(proxy: Proxy) -> int:
    lane = manager_of(proxy).fast_lane
    return 0 if lane is None else lane.hits


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def without_date(answer: bytes) -> bytes:
    return b"\r\n".join(line for line in answer.split(b"\r\n") if not line.startswith(b"Date: "))


@dataclass
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self) -> bytes:
        """One whole answer (its head and its Content-Length of body), or b"" at EOF."""
        try:
            head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 5)
        except asyncio.IncompleteReadError as exc:
            return exc.partial
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        body = await asyncio.wait_for(self.reader.readexactly(length), 5)
        return head + body

    async def closed(self, within: float = 5) -> bool:
        with contextlib.suppress(ConnectionError):
            while await asyncio.wait_for(self.reader.read(65536), within):
                pass
        return True


Connect = Callable[[Proxy], Awaitable[Connection]]


async def open_connection(proxy: Proxy) -> Connection:
    server = proxy.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    return Connection(reader, writer)


async def both(fast: Proxy, slow: Proxy, connect: Connect, data: bytes) -> tuple[bytes, bytes]:
    """`data` sent as one write to each twin on a kept-alive connection; each one's answer."""
    one, other = await connect(fast), await connect(slow)
    before = hits_of(fast)
    for conn in (one, other):  # first a plain hit: the lane's connection is kept alive, idle
        await conn.send(request())
        assert b"webproxy; hit" in await conn.answer()
    assert hits_of(fast) == before + 1
    await one.send(data)
    await other.send(data)
    return await one.answer(), await other.answer()
