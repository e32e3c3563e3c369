"""Checks on a request before it is proxied: what a reverse proxy refuses outright."""

from __future__ import annotations

import re
from typing import Final

from aiohttp import web

from webproxy.answers import refuse

#: `%` not followed by two hex digits.
BAD_PERCENT: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")


def refusal(request: web.BaseRequest, max_body_bytes: int) -> web.Response | None:
    """A 4xx answer for a request no upstream should see, or None to proxy it."""
    target = request.raw_path
    if request.method == "CONNECT":
        return refuse(405, "CONNECT is not supported by a reverse proxy")
    if not target.startswith("/"):
        # absolute-form (`GET http://host/`) or asterisk-form: we are not a forward proxy
        return refuse(400, "request target must be a path (origin-form)")
    if "#" in target:
        # never part of a request target (RFC 9112 3.2): a URL library would drop what
        # follows, so Finesse would answer another target than the one the proxy judged
        return refuse(400, "a request target has no fragment (#)")
    if "%" in target and BAD_PERCENT.search(target):
        return refuse(400, "invalid percent-encoding in the request target")
    credentials = request.headers.getall("Authorization", ())
    if len(credentials) > 1 or (credentials and "," in credentials[0]):
        # Basic and Bearer values hold no comma: two credentials, and an upstream that
        # reads the other one would authenticate someone the proxy did not judge
        return refuse(400, "one Authorization header with one credential, please")
    length = request.content_length
    if length is not None and length > max_body_bytes:
        return refuse(413, f"request body larger than {max_body_bytes} bytes")
    return None
