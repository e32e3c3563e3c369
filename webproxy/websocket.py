"""WebSocket pass-through: Finesse notifications at `/ws/`, relayed frame by frame.

Each side's handshake is its own (keys, extensions); messages, pings, pongs and close
codes cross unchanged. A connection quiet in both directions for the idle timeout is
closed with 1001 (going away).
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import suppress
from typing import Final

import aiohttp
from aiohttp import WSMsgType, web

from webproxy.appkeys import metrics_key, websockets_key
from webproxy.forward import Upstream, upstream_errors, upstream_headers

log = logging.getLogger("webproxy.upstream")

#: The handshake fields each hop makes for itself.
HANDSHAKE_FIELDS: Final = frozenset(
    {
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "sec-websocket-accept",
    }
)
GOING_AWAY: Final = 1001

Socket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse


def is_websocket_upgrade(request: web.BaseRequest) -> bool:
    connection = request.headers.get("Connection", "").lower()
    return (
        request.method == "GET"
        and request.headers.get("Upgrade", "").lower() == "websocket"
        and "upgrade" in connection
    )


async def relay_websocket(request: web.Request, upstream: Upstream) -> web.StreamResponse:
    """Open the upstream socket first, so a refused handshake reaches the client as is."""
    headers = upstream_headers(request)
    for name in HANDSHAKE_FIELDS:
        headers.popall(name, None)
    protocols = [
        p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()
    ]
    try:
        with upstream_errors():
            remote = await upstream.session.ws_connect(
                upstream.url(request.raw_path),
                headers=headers,
                protocols=protocols,
                autoping=False,
                autoclose=False,
                max_msg_size=0,
                timeout=aiohttp.ClientWSTimeout(ws_close=upstream.read_timeout),
            )
    except aiohttp.WSServerHandshakeError as exc:
        return web.Response(status=exc.status or 502, text=f"upstream refused the upgrade: {exc}")
    local = web.WebSocketResponse(
        protocols=[remote.protocol] if remote.protocol else (),
        autoping=False,
        autoclose=False,
        max_msg_size=0,
    )
    await local.prepare(request)
    request.app[websockets_key].add(local)
    with request.app[metrics_key].open_connections.labels("websocket").track_inprogress():
        await _pump_both(local, remote, upstream.idle_timeout)
    return local


async def _pump_both(local: web.WebSocketResponse, remote: Socket, idle: float) -> None:
    last_seen = [time.monotonic()]
    pumps = [
        asyncio.create_task(_pump(local, remote, idle, last_seen)),
        asyncio.create_task(_pump(remote, local, idle, last_seen)),
    ]
    try:
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pump in pumps:
            pump.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await pump
        for socket in (local, remote):
            with suppress(Exception):
                await socket.close(code=GOING_AWAY)


async def _pump(source: Socket, sink: Socket, idle: float, last_seen: list[float]) -> None:
    """Copy frames from source to sink until either closes or both sides idle too long."""
    while True:
        try:
            message = await source.receive(timeout=idle)
        except TimeoutError:
            if time.monotonic() - last_seen[0] >= idle:
                log.info("websocket idle for %.0fs, closing", idle)
                return
            continue
        last_seen[0] = time.monotonic()
        match message.type:
            case WSMsgType.TEXT:
                await sink.send_str(message.data)
            case WSMsgType.BINARY:
                await sink.send_bytes(message.data)
            case WSMsgType.PING:
                await sink.ping(message.data)
            case WSMsgType.PONG:
                await sink.pong(message.data)
            case WSMsgType.CLOSE:
                code = message.data if isinstance(message.data, int) else GOING_AWAY
                await sink.close(code=code, message=(message.extra or "").encode())
                await source.close(code=code)
                return
            case _:  # CLOSING, CLOSED, ERROR: the source is gone
                return
