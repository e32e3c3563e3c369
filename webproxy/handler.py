"""The proxy route: refuse what must be refused, relay WebSockets, forward the rest."""

from __future__ import annotations

import logging

from aiohttp import web

from webproxy.appkeys import settings_key, upstream_key
from webproxy.errors import BodyTooLarge, UpstreamError, UpstreamTimeout
from webproxy.forward import open_exchange, relay, upstream_headers
from webproxy.intake import refuse
from webproxy.websocket import is_websocket_upgrade, relay_websocket

log = logging.getLogger("webproxy.upstream")


async def proxy(request: web.Request) -> web.StreamResponse:
    settings = request.app[settings_key]
    upstream = request.app[upstream_key]
    if is_websocket_upgrade(request):
        try:
            return await relay_websocket(request, upstream)
        except UpstreamError as exc:
            return upstream_failure(request, exc)
    try:
        response = await open_exchange(
            upstream, request, upstream_headers(request), settings.server.max_body_bytes
        )
    except UpstreamError as exc:
        return upstream_failure(request, exc)
    except BodyTooLarge as exc:
        return refuse(413, str(exc))
    return await relay(request, response)


def upstream_failure(request: web.BaseRequest, exc: UpstreamError) -> web.Response:
    """The one place an upstream failure becomes a status: 504 when slow, else 502."""
    status = 504 if isinstance(exc, UpstreamTimeout) else 502
    log.warning("%s %s -> %d: %s", request.method, request.path, status, exc)
    text = "upstream timed out" if status == 504 else "upstream unavailable"
    return web.Response(status=status, text=f"webproxy: {text}\n")
