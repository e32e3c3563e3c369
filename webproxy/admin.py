"""Admin listener routes: liveness and readiness."""

from __future__ import annotations

from aiohttp import web

from webproxy.appkeys import upstream_key
from webproxy.errors import UpstreamError
from webproxy.forward import upstream_errors

READINESS_PATH = "/finesse/api/SystemInfo"


async def healthz(request: web.Request) -> web.Response:
    """200 while the process serves."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """200 when the upstream answers at all (any HTTP status); else 503 with the reason."""
    upstream = request.app[upstream_key]
    try:
        with upstream_errors():
            async with upstream.session.get(
                upstream.url(READINESS_PATH), timeout=upstream.timeout_for(READINESS_PATH)
            ) as response:
                await response.read()
    except UpstreamError as exc:
        return web.json_response({"status": "unready", "upstream": str(exc)}, status=503)
    return web.json_response({"status": "ready", "upstream": "ok"})
