"""Static files as Finesse's Tomcat serves them: validators, conditional GETs, gzip variants.

Each `StaticFile` answers with a strong `ETag` (a digest of the bytes sent, so the gzip
variant has its own), `Last-Modified`, its own `Cache-Control` (or none) and, when it has
a gzip variant, `Vary: Accept-Encoding` on both variants. A request naming gzip in
`Accept-Encoding` (with a q-value above 0) gets the gzip bytes and `Content-Encoding:
gzip`, as Finesse's compressed third-party gadget files are served. `If-None-Match`
(weak comparison, `*`, lists) and, without it, `If-Modified-Since` are answered 304.

Files can be replaced while serving (`StaticFiles.replace`, or `PUT /sim/files/<path>`
for tests): the new bytes get a new `ETag` and a `Last-Modified` at least a second later,
so a cache revalidating its copy gets a 200 with the new content.
"""

from __future__ import annotations

import gzip
import hashlib
import time
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from typing import Final

from aiohttp import web

#: Response fields a 304 repeats (RFC 9110 15.4.5).
_NOT_MODIFIED_FIELDS: Final = ("ETag", "Last-Modified", "Cache-Control", "Vary", "Expires")


@dataclass(frozen=True, slots=True)
class Variant:
    """One representation of a file: its bytes and validators."""

    body: bytes
    etag: str
    encoding: str | None  # "gzip" or None (identity)


@dataclass(slots=True)
class StaticFile:
    """A file's current content and how it is served."""

    content_type: str
    content: bytes
    cache_control: str | None = None
    gzip: bool = False  # offer a gzip variant (and Vary: Accept-Encoding)
    modified: float = field(default_factory=lambda: float(int(time.time())))
    variants: dict[str | None, Variant] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._render()

    def _render(self) -> None:
        plain = Variant(self.content, _etag(self.content), None)
        self.variants = {None: plain}
        if self.gzip:
            packed = gzip.compress(self.content, mtime=0)
            self.variants["gzip"] = Variant(packed, _etag(packed), "gzip")

    def replace(self, content: bytes) -> None:
        """New bytes: new validators, `Last-Modified` strictly later than before."""
        self.content = content
        self.modified = max(float(int(time.time())), self.modified + 1.0)
        self._render()

    def answer(self, request: web.Request) -> web.Response:
        variant = self.variants[_encoding(request, self.gzip)]
        headers = {
            "ETag": variant.etag,
            "Last-Modified": formatdate(self.modified, usegmt=True),
        }
        if self.cache_control is not None:
            headers["Cache-Control"] = self.cache_control
        if self.gzip:
            headers["Vary"] = "Accept-Encoding"
        if _not_modified(request, variant.etag, self.modified):
            kept = {name: value for name, value in headers.items() if name in _NOT_MODIFIED_FIELDS}
            return web.Response(status=304, headers=kept)
        headers["Content-Type"] = self.content_type
        if variant.encoding is not None:
            headers["Content-Encoding"] = variant.encoding
        return web.Response(body=variant.body, headers=headers)


class StaticFiles:
    """Files by path; `add_to` serves them (GET and HEAD) and `PUT /sim/files/<path>`."""

    def __init__(self) -> None:
        self.files: dict[str, StaticFile] = {}

    def add(self, path: str, file: StaticFile) -> None:
        self.files[path] = file

    def replace(self, path: str, content: bytes) -> None:
        """KeyError for a path that is not served."""
        self.files[path].replace(content)

    def add_to(self, router: web.UrlDispatcher) -> None:
        for path in self.files:
            router.add_get(path, self.serve)
        router.add_put("/sim/files/{path:.+}", self.put_file)

    async def serve(self, request: web.Request) -> web.Response:
        return self.files[request.path].answer(request)

    async def put_file(self, request: web.Request) -> web.Response:
        """Replace a served file's bytes (not counted in /sim/stats): 204, or 404."""
        path = "/" + request.match_info["path"]
        if path not in self.files:
            return web.json_response({"error": f"no such file: {path}"}, status=404)
        self.replace(path, await request.read())
        return web.Response(status=204)


def _etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=8).hexdigest() + '"'


def _encoding(request: web.Request, offered: bool) -> str | None:
    """ "gzip" when offered and the request accepts it with q above 0."""
    if not offered:
        return None
    for item in request.headers.get("Accept-Encoding", "").split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() not in ("gzip", "x-gzip"):
            continue
        name, _, value = params.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return "gzip" if float(value) > 0 else None
            except ValueError:
                return None
        return "gzip"
    return None


def _not_modified(request: web.Request, etag: str, modified: float) -> bool:
    """RFC 9110 13.2.2: If-None-Match (weak comparison) first, else If-Modified-Since."""
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        tags = [tag.strip() for tag in if_none_match.split(",")]
        return "*" in tags or etag in (tag.removeprefix("W/") for tag in tags)
    since = request.headers.get("If-Modified-Since")
    if since is None:
        return False
    try:
        return int(modified) <= parsedate_to_datetime(since).timestamp()
    except (TypeError, ValueError):
        return False
