"""Responses the proxy makes itself: the one place an upstream failure becomes a status."""

from __future__ import annotations

import logging
from typing import Final

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.payload import BytesPayload
from multidict import CIMultiDict

from webproxy.errors import ClientGone, RequestIncomplete, UpstreamError, UpstreamTimeout
from webproxy.forward import Fetched
from webproxy.logs import loggable_target, throttled

log = logging.getLogger("webproxy.upstream")


def upstream_failure(request: web.BaseRequest, exc: UpstreamError) -> web.Response:
    """504 when the upstream was too slow, 502 when it refused or dropped the connection."""
    status = 504 if isinstance(exc, UpstreamTimeout) else 502
    target = loggable_target(request.raw_path)
    throttled.warning(log, "%s %s -> %d: %s", request.method, target, status, exc)
    text = "upstream timed out" if status == 504 else "upstream unavailable"
    return web.Response(status=status, text=f"webproxy: {text}\n")


async def incomplete(request: web.BaseRequest, exc: RequestIncomplete) -> web.StreamResponse:
    """A request whose body did not arrive whole: 413 or 408, sent, and the connection
    closed at once (what is left of the body is never read: aiohttp would otherwise keep
    reading it for its lingering time), or, for a client that went away, nothing."""
    if isinstance(exc, ClientGone):
        return client_gone()
    log.info("%s %s -> %d: %s", request.method, loggable_target(request.raw_path), exc.status, exc)
    response = refuse(exc.status, str(exc))
    response.force_close()
    try:
        await response.prepare(request)
        await response.write_eof()
    except ConnectionError:
        return client_gone()
    request.protocol.force_close()  # the answer is in the transport, which sends it first
    return response


def client_gone() -> web.Response:
    """What a handler returns for a client that went away: counted as nginx's 499, never
    sent (aiohttp finds the connection closed and lets it go quietly)."""
    return web.Response(status=ClientGone.status, text="webproxy: client went away\n")


def refuse(status: int, reason: str) -> web.Response:
    """A 4xx of the proxy's own, for a request no upstream should see."""
    return web.Response(status=status, text=f"webproxy: {reason}\n")


def answer_fetched(fetched: Fetched, cache_status: str | None = None) -> web.Response:
    """A buffered upstream answer, as it came (Content-Length recomputed)."""
    headers = CIMultiDict(fetched.headers)
    headers.popall("Content-Length", None)
    if cache_status is not None:
        headers["Cache-Status"] = cache_status
    return web.Response(
        status=fetched.status,
        reason=fetched.reason or None,
        body=paced(fetched.body),
        headers=headers,
    )


#: Bodies larger than this are written a slice at a time (see `PacedBytes`).
PACE: Final = 64 * 1024


class PacedBytes(BytesPayload):
    """A large body written `PACE` bytes at a time, each once the last has drained: a
    client that reads slowly holds one slice in the proxy's send buffer, not a copy of the
    whole answer (asyncio copies what the socket does not take at once), and
    `server.send_timeout` runs on every slice."""

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        view = memoryview(self._value)
        if content_length is not None:
            view = view[:content_length]
        for start in range(0, len(view), PACE):
            await writer.write(view[start : start + PACE])

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)


def paced(body: bytes) -> bytes | PacedBytes:
    """`body` as an answer's body: as is when small (the hot path), paced when large."""
    return body if len(body) <= PACE else PacedBytes(body, content_type=None)
