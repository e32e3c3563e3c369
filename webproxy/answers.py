"""Responses the proxy makes itself: the one place an upstream failure becomes a status."""

from __future__ import annotations

import logging

from aiohttp import web
from multidict import CIMultiDict

from webproxy.errors import UpstreamError, UpstreamTimeout
from webproxy.forward import Fetched

log = logging.getLogger("webproxy.upstream")


def upstream_failure(request: web.BaseRequest, exc: UpstreamError) -> web.Response:
    """504 when the upstream was too slow, 502 when it refused or dropped the connection."""
    status = 504 if isinstance(exc, UpstreamTimeout) else 502
    log.warning("%s %s -> %d: %s", request.method, request.path, status, exc)
    text = "upstream timed out" if status == 504 else "upstream unavailable"
    return web.Response(status=status, text=f"webproxy: {text}\n")


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
        status=fetched.status, reason=fetched.reason or None, body=fetched.body, headers=headers
    )
