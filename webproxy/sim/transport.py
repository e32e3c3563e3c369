"""Notification transports and the echo endpoints: /ws/, /http-bind/ and /sim/echo.

`/ws/` speaks XMPP over WebSocket (`sim.xmpp_ws`) to a client that offers the `xmpp`
subprotocol; any other WebSocket client gets the echo the proxy's relay tests use.
`/http-bind/` is BOSH (`sim.bosh`).
"""

from __future__ import annotations

import hashlib
import json
from typing import Final
from urllib.parse import quote

from aiohttp import WSMsgType, web

from webproxy.sim.bosh import BoshManager
from webproxy.sim.lifetime import Lifetime
from webproxy.sim.pubsub import NotificationHub
from webproxy.sim.xmpp_ws import serve_xmpp, wants_xmpp

PATTERN: Final = bytes(range(256)) * 256
NO_BODY: Final = frozenset({204, 304})
PRINTABLE: Final = "".join(map(chr, range(0x21, 0x7F)))


class TransportRoutes:
    """XMPP over WebSocket (or the echo), BOSH and the HTTP echo of one simulator."""

    def __init__(self, lifetime: Lifetime, hub: NotificationHub, bosh: BoshManager) -> None:
        self.lifetime = lifetime
        self.hub = hub
        self.bosh = bosh

    def add_to(self, router: web.UrlDispatcher) -> None:
        for path in ("/ws", "/ws/"):
            router.add_get(path, self.websocket)
        for path in ("/http-bind", "/http-bind/"):
            router.add_post(path, self.http_bind)
        router.add_route("*", "/sim/echo", echo)
        router.add_route("*", "/sim/echo/{tail:.*}", echo)

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        """XMPP if the client offers `xmpp`; otherwise echo text and binary frames, the
        text `close:<code>` closing with that code."""
        if wants_xmpp(request):
            return await serve_xmpp(request, self.hub, self.lifetime)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.lifetime.sockets.add(ws)
        async for message in ws:
            if message.type is WSMsgType.BINARY:
                await ws.send_bytes(message.data)
            elif message.type is WSMsgType.TEXT:
                code = close_code(message.data)
                if code is None:
                    await ws.send_str(message.data)
                else:
                    await ws.close(code=code)
        self.lifetime.sockets.discard(ws)
        return ws

    async def http_bind(self, request: web.Request) -> web.Response:
        """BOSH: one request of a session (or the request that creates one)."""
        return await self.bosh.handle(await request.read())


def close_code(text: str) -> int | None:
    prefix, _, number = text.partition(":")
    if prefix != "close" or not number.strip().isdigit():
        return None
    return int(number)


def echo_headers(request: web.Request, digest: str) -> list[tuple[str, str]]:
    """X-Echo-* headers: request headers in order (bytes read as Latin-1); the raw path
    with anything but printable ASCII percent-encoded."""
    pairs = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.raw_headers]
    return [
        ("X-Echo-Method", request.method),
        ("X-Echo-Path", quote(request.raw_path, safe=PRINTABLE, errors="surrogateescape")),
        ("X-Echo-Headers", json.dumps(pairs)),
        ("X-Echo-Body-Sha256", digest),
    ]


def query_values(request: web.Request) -> tuple[int, int | None, list[tuple[str, str]]]:
    """(status, size, extra headers) from ?status=N&size=N&header=Name:Value; ValueError."""
    status = int(request.query.get("status", "200"))
    size = int(request.query["size"]) if "size" in request.query else None
    extra: list[tuple[str, str]] = []
    for item in request.query.getall("header", []):
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"header={item}: expected Name:Value")
        extra.append((name.strip(), value.strip()))
    if not 200 <= status <= 599 or (size is not None and size < 0):
        raise ValueError("status must be 200..599 and size >= 0")
    return status, size, extra


async def echo(request: web.Request) -> web.StreamResponse:
    """The request body back, with ?status=N, ?size=N (chunked pattern) and ?header=N:V."""
    try:
        status, size, extra = query_values(request)
    except ValueError as exc:
        return web.Response(status=400, text=str(exc))
    chunks: list[bytes] = []
    digest = hashlib.sha256()
    async for chunk in request.content.iter_any():
        chunks.append(chunk)
        digest.update(chunk)
    headers = echo_headers(request, digest.hexdigest())
    if size is not None:
        headers.append(("Content-Type", "application/octet-stream"))
    elif "Content-Type" in request.headers:
        headers.append(("Content-Type", request.headers["Content-Type"]))
    replaced = {name.lower() for name, _ in extra}
    headers = [(n, v) for n, v in headers if n.lower() not in replaced] + extra
    response = web.StreamResponse(status=status, headers=headers)
    if status in NO_BODY or request.method == "HEAD":
        await response.prepare(request)
    elif size is not None:
        response.enable_chunked_encoding()
        await response.prepare(request)
        await write_pattern(response, size)
    else:
        response.content_length = sum(len(c) for c in chunks)
        await response.prepare(request)
        for chunk in chunks:
            await response.write(chunk)
    await response.write_eof()
    return response


async def write_pattern(response: web.StreamResponse, size: int) -> None:
    """`size` bytes where byte k is k % 256, in 64 KiB chunks."""
    sent = 0
    while sent < size:
        block = PATTERN[: min(len(PATTERN), size - sent)]
        await response.write(block)
        sent += len(block)
