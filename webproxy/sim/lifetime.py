"""Lifetime: the shutdown signal that long waits obey, and the WebSockets it closes."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from typing import Final

from aiohttp import WSCloseCode, web

POLL_SECONDS: Final = 0.1


class Lifetime:
    """Lets holds, hangs and latency end at once when the app shuts down.

    aiohttp waits for running handlers before it closes connections, so every long wait
    in the simulator goes through `pause` or `hang`, which return when `stop` runs.
    """

    def __init__(self) -> None:
        self.stopping = asyncio.Event()
        self.sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()

    async def start(self, app: web.Application) -> None:
        """on_startup: a fresh event for the running loop."""
        self.stopping = asyncio.Event()

    async def stop(self, app: web.Application) -> None:
        """on_shutdown: release every wait and close open WebSockets (1001)."""
        self.stopping.set()
        for ws in list(self.sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    async def pause(self, seconds: float) -> None:
        """Sleep `seconds`, or less if the app shuts down."""
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)

    async def hang(self, request: web.Request) -> web.StreamResponse:
        """Never answer: wait until the client goes away or the app shuts down."""
        while not self.stopping.is_set() and connected(request):
            await self.pause(POLL_SECONDS)
        return drop(request)


def connected(request: web.Request) -> bool:
    transport = request.transport
    return transport is not None and not transport.is_closing()


def drop(request: web.Request) -> web.StreamResponse:
    """Close the TCP connection without an answer; the client sees a disconnect.

    The returned response is never written: aiohttp fails to send it on the closed
    transport and treats that as the client having gone away.
    """
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=503)
