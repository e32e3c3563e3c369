"""Build the proxy and admin applications around one set of shared objects."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from webproxy.admin import healthz, readyz
from webproxy.appkeys import settings_key, upstream_key
from webproxy.config import Settings
from webproxy.forward import make_session, make_upstream
from webproxy.handler import proxy
from webproxy.intake import refuse_bad_requests

log = logging.getLogger("webproxy.server")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def last_resort(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The one broad catch: log with a request id, answer 500, keep serving."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:
        request_id = uuid.uuid4().hex[:12]
        log.exception(
            "unhandled error on %s %s (request %s)", request.method, request.path, request_id
        )
        return web.Response(status=500, text=f"webproxy: internal error (request {request_id})\n")


def make_proxy_app(settings: Settings) -> web.Application:
    """The public listener: every path goes to `proxy`."""
    app = web.Application(
        middlewares=[last_resort, refuse_bad_requests],
        client_max_size=settings.server.max_body_bytes,
    )
    app[settings_key] = settings
    app.cleanup_ctx.append(_upstream_ctx)
    app.router.add_route("*", "/{tail:.*}", proxy)
    return app


def make_admin_app(settings: Settings, proxy_app: web.Application) -> web.Application:
    """The admin listener (loopback by default): health, readiness."""
    app = web.Application(middlewares=[last_resort])
    app[settings_key] = settings
    app.on_startup.append(_share_from(proxy_app))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def _upstream_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[settings_key]
    session = make_session(settings.upstream)
    app[upstream_key] = make_upstream(session, settings.upstream)
    yield
    await session.close()


def _share_from(proxy_app: web.Application) -> Callable[[web.Application], Awaitable[None]]:
    async def share(app: web.Application) -> None:
        app[upstream_key] = proxy_app[upstream_key]

    return share
