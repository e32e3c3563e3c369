"""`GET /admin/log` and `PUT /admin/log`: the access-log level and log severity, live
(placeholder, being built)."""

from __future__ import annotations

from aiohttp import web


async def show_log(request: web.Request) -> web.Response:
    return web.json_response({"error": "not built yet"}, status=501)


async def set_log(request: web.Request) -> web.Response:
    return web.json_response({"error": "not built yet"}, status=501)
