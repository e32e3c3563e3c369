"""The simulator's HTTP answers: XML documents, ApiErrors, and Finesse's empty replies."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Final

from aiohttp import web

from webproxy.sim.errors import ApiError
from webproxy.sim.render import api_errors, to_bytes

XML_TYPE: Final = "application/xml"
CHALLENGE: Final = 'Basic realm="Cisco Finesse"'


def xml(
    element: ET.Element, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """An XML document answer (Content-Type application/xml)."""
    return web.Response(
        body=to_bytes(element), status=status, content_type=XML_TYPE, headers=headers
    )


def error(err: ApiError) -> web.Response:
    """<ApiErrors>; every 401 carries a Basic challenge, as RFC 9110 requires."""
    extra = dict(err.headers)
    if err.status == 401:
        extra["WWW-Authenticate"] = CHALLENGE
    return xml(api_errors(err), err.status, extra)


def accepted() -> web.Response:
    """202 with an empty body: desktop writes whose result comes by notification."""
    return web.Response(status=202)


def done() -> web.Response:
    """200 with an empty body: config updates and deletes."""
    return web.Response(status=200)


def created(request: web.Request, path: str) -> web.Response:
    """200 with an empty body and the new object's absolute URL in Location."""
    location = request.url.with_path(path).with_query(None)
    return web.Response(status=200, headers={"Location": str(location)})
