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
from multidict import CIMultiDict

from webproxy.answers import refuse
from webproxy.appkeys import services_of
from webproxy.errors import UpstreamError
from webproxy.forward import Upstream, upstream_errors, upstream_headers
from webproxy.headers import end_to_end

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
NORMAL: Final = 1000
GOING_AWAY: Final = 1001
#: Finesse's XMPP stanzas are small; a bound keeps a hostile frame (or a deflate bomb) out.
MAX_MESSAGE: Final = 4 * 1024 * 1024

Socket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse


def is_websocket_upgrade(request: web.BaseRequest) -> bool:
    connection = request.headers.get("Connection", "").lower()
    return (
        request.method == "GET"
        and request.headers.get("Upgrade", "").lower() == "websocket"
        and "upgrade" in connection
    )


async def relay_websocket(request: web.Request, upstream: Upstream) -> web.StreamResponse:
    """Open the upstream socket first, so a refused handshake reaches the client as is.

    The client's handshake is checked before anything is opened upstream; the upstream
    handshake is bounded by the connect and read timeouts; a refusal (401, 403, ...) is
    passed on with its status, and a 401 forgets the credential as anywhere else.
    """
    if not web.WebSocketResponse().can_prepare(request).ok:
        return refuse(400, "invalid WebSocket handshake")  # nothing opened upstream
    try:
        remote = await _connect(request, upstream)
    except aiohttp.WSServerHandshakeError as refused:
        return _refused(request, refused)
    try:
        local = web.WebSocketResponse(
            protocols=[remote.protocol] if remote.protocol else (),
            autoping=False,
            autoclose=False,
            max_msg_size=MAX_MESSAGE,
        )
        await local.prepare(request)
        services_of(request).websockets.add(local)
        with services_of(request).metrics.open_connections.labels("websocket").track_inprogress():
            await _pump_both(local, remote, upstream.idle_timeout)
    finally:
        await remote.close(code=GOING_AWAY)
    return local


async def _connect(request: web.Request, upstream: Upstream) -> aiohttp.ClientWebSocketResponse:
    headers = upstream_headers(request)
    for name in HANDSHAKE_FIELDS:
        headers.popall(name, None)
    protocols = [
        p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()
    ]
    try:
        with upstream_errors():
            async with asyncio.timeout(upstream.connect_timeout + upstream.read_timeout):
                return await upstream.long_session.ws_connect(
                    upstream.url(request.raw_path),
                    headers=headers,
                    protocols=protocols,
                    autoping=False,
                    autoclose=False,
                    max_msg_size=MAX_MESSAGE,
                    timeout=aiohttp.ClientWSTimeout(ws_close=upstream.read_timeout),
                )
    except UpstreamError as exc:
        if isinstance(exc.__cause__, aiohttp.WSServerHandshakeError):
            raise exc.__cause__ from None
        raise


def _refused(request: web.Request, refused: aiohttp.WSServerHandshakeError) -> web.Response:
    status = refused.status if 400 <= refused.status < 600 else 502
    services_of(request).identities.learn(request.headers.get("Authorization"), status)
    headers = end_to_end(CIMultiDict(refused.headers or {}))
    headers.popall("Content-Length", None)
    text = f"webproxy: upstream refused the upgrade ({status})\n"
    return web.Response(status=status, headers=headers, text=text)


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


def _sendable(code: object) -> bool:
    """A close code that may go on the wire (RFC 6455 7.4): 1000-1003, 1007-1014, 3000-4999."""
    if not isinstance(code, int):
        return False
    return code in range(1000, 1004) or code in range(1007, 1015) or 3000 <= code <= 4999


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
                code = message.data if _sendable(message.data) else NORMAL
                await sink.close(code=code, message=(message.extra or "").encode())
                await source.close(code=code)
                return
            case _:  # CLOSING, CLOSED, ERROR: the source is gone
                return
