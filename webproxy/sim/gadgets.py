"""The simulator's Shindig: third-party gadget files, ifr, feature JS, concat, makeRequest, proxy.

Third-party gadget files (`static/3rdpartygadget/files/` in the package) are served by
`StaticFiles` at `/3rdpartygadget/files/<path>` with gzip variants, `ETag` and
`Last-Modified` and no `Cache-Control`, as Finesse's watcher compresses them.

The Shindig endpoints answer from the simulator alone; nothing is fetched from outside. A
`url` parameter is a simulator path or an http(s) URL whose path (and query) is taken:

- `GET /gadgets/ifr?url=<spec>`: the spec (read from the files, kept `SPEC_TTL` seconds,
  re-read on `nocache`) rendered as an HTML page loading `/gadgets/js/core:rpc.js` (plus
  the spec's `<Require>`d features) and its scripts and stylesheets through
  `/gadgets/concat`.
- `GET /gadgets/js/<feature>:<feature>.js`: the features' JavaScript, dependencies first.
- `GET /gadgets/concat?rewriteMime=..&gadget=..&fp=..&1=<url>&2=<url>` (or repeated `f=`):
  the files' bytes joined by newlines.
- `/gadgets/makeRequest` and `GET /gadgets/proxy`: a `/finesse/api/` URL is answered by
  the simulator's own handlers (a GET with the caller's `Authorization`, counted in
  /sim/stats like any request); makeRequest echoes other URLs, proxy serves any simulator
  path outside `/gadgets/`.

`nocache` (present and not `0`, as Shindig reads it) gives `Cache-Control: no-cache`; an
`st` security token on ifr gives `private, max-age=0`; otherwise `public, max-age=<refresh>`
(`refresh` seconds from the query, default 3600).
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib.resources import files as package_files
from importlib.resources.abc import Traversable
from typing import Final
from urllib.parse import parse_qsl, unquote, urlsplit

from aiohttp import web
from multidict import MultiMapping
from yarl import URL

from webproxy.sim.gadget_specs import (
    CONTAINER_FEATURES,
    FEATURES,
    Spec,
    SpecError,
    choose,
    parse_spec,
    resolve,
    rewrite,
)
from webproxy.sim.state import SimState
from webproxy.sim.static_files import StaticFile, StaticFiles

THIRD_PARTY: Final = "/3rdpartygadget/files/"
DEFAULT_REFRESH: Final = 3600
SPEC_TTL: Final = 300.0  # Shindig keeps a parsed spec five minutes
VERSIONED_JS: Final = "public, max-age=31536000"
PRIVATE: Final = "private, max-age=0"
NO_STORE: Final = "private, no-store"
UNPARSEABLE: Final = "throw 1; < don't be evil' >"
CONTENT_TYPES: Final = {
    ".xml": "application/xml",
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".json": "application/json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}
MIME: Final = re.compile(r"[a-z]+/[a-z0-9.+-]+")


@dataclass(frozen=True, slots=True)
class Fetched:
    """A simulator answer to an inside GET: status, headers (name -> values) and bytes."""

    status: int
    headers: dict[str, list[str]]
    body: bytes


class GadgetRoutes:
    """`/gadgets/ifr`, `/gadgets/js/`, `/gadgets/concat`, `/gadgets/makeRequest`,
    `/gadgets/proxy`; the third-party gadget files go into `files`."""

    def __init__(
        self, state: SimState, files: StaticFiles, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.state = state
        self.files = files
        self.clock = clock
        self.loaded = float(int(time.time()))
        static = package_files("webproxy.sim") / "static"
        for name, content in walk(static / "3rdpartygadget" / "files"):
            files.add(THIRD_PARTY + name, StaticFile(content_type(name), content, gzip=True))
        features = static / "gadgets" / "features"
        self.features = {name: (features / f"{name}.js").read_bytes() for name in FEATURES}
        self.specs: dict[str, tuple[float, Spec]] = {}
        self.scripts: dict[tuple[tuple[str, ...], str], StaticFile] = {}

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_get("/gadgets/ifr", self.ifr)
        router.add_get("/gadgets/js/{name}", self.js)
        router.add_get("/gadgets/concat", self.concat)
        router.add_get("/gadgets/makeRequest", self.make_request)
        router.add_post("/gadgets/makeRequest", self.make_request)
        router.add_get("/gadgets/proxy", self.proxy)

    async def ifr(self, request: web.Request) -> web.Response:
        query = request.query
        spec_url = query.get("url", "")
        if not spec_url:
            return text(400, "ifr needs a url")
        path = spec_path(spec_url)
        if path is None or path not in self.files.files:
            return text(404, f"no gadget spec at {spec_url!r}")
        nocache = ignore_cache(query)
        try:
            page = self.render(self.spec(path, nocache), spec_url, query, nocache)
        except SpecError as exc:
            return text(400, str(exc))
        if "st" in query:
            cache_control = PRIVATE
        elif nocache:
            cache_control = "no-cache"
        else:
            cache_control = f"public, max-age={refresh(query)}"
        return web.Response(
            text=page, content_type="text/html", headers={"Cache-Control": cache_control}
        )

    def spec(self, path: str, reread: bool) -> Spec:
        """The parsed spec at `path`, read again when asked or older than SPEC_TTL."""
        now = self.clock()
        kept = self.specs.get(path)
        if kept is None or reread or now - kept[0] >= SPEC_TTL:
            kept = (now, parse_spec(self.files.files[path].content))
            self.specs[path] = kept
        return kept[1]

    def render(self, spec: Spec, spec_url: str, query: Mapping[str, str], nocache: bool) -> str:
        features = resolve((*CONTAINER_FEATURES, *spec.required))
        script = self.script(features)
        version = hashlib.blake2b(script, digest_size=16).hexdigest()
        js_url = f"/gadgets/js/{':'.join(features)}.js?v={version}&c=1"
        body = rewrite(choose(spec, query.get("view", "default")), spec_url, spec, nocache)
        return (
            '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(spec.title)}</title>\n"
            f'<script src="{html.escape(js_url)}"></script>\n'
            f"</head>\n<body>\n{body}\n"
            "<script>gadgets.util.runOnLoadHandlers();</script>\n</body>\n</html>\n"
        )

    def script(self, features: tuple[str, ...]) -> bytes:
        return b"\n".join(self.features[name] for name in features)

    async def js(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            features = resolve(tuple(name.removesuffix(".js").split(":")))
        except SpecError:
            features = ()
        if not name.endswith(".js") or not features:
            return text(404, f"no such feature: {name}")
        if ignore_cache(request.query):
            cache_control = "no-cache"
        else:
            cache_control = VERSIONED_JS if request.query.get("v") else "public, max-age=3600"
        file = self.scripts.get((features, cache_control))
        if file is None:
            content = self.script(features)
            file = StaticFile("text/javascript", content, cache_control, True, self.loaded)
            self.scripts[(features, cache_control)] = file
        return file.answer(request)

    async def concat(self, request: web.Request) -> web.Response:
        query = request.query
        urls = concat_urls(query)
        mime = query.get("rewriteMime", "text/javascript")
        if not urls or MIME.fullmatch(mime) is None:
            return text(
                400, "concat needs files (1=, 2=, ... or f=) and a type/subtype rewriteMime"
            )
        parts: list[bytes] = []
        for url in urls:
            path = spec_path(url)
            file = None if path is None else self.files.files.get(path)
            if file is None:
                return text(404, f"no such file: {url!r}")
            parts.append(file.content)
        nocache = ignore_cache(query)
        cache_control = "no-cache" if nocache else f"public, max-age={refresh(query)}"
        headers = {"Content-Type": mime, "Cache-Control": cache_control}
        return web.Response(body=b"\n".join(parts), headers=headers)

    async def make_request(self, request: web.Request) -> web.Response:
        fields = dict(request.query)
        origin = request.clone()  # aiohttp clones no request whose body was read
        if request.method == "POST":
            posted = await request.post()
            fields.update((k, v) for k, v in posted.items() if isinstance(v, str))
        url = fields.get("url", "")
        if not url:
            return text(400, "makeRequest needs a url")
        method = fields.get("httpMethod", "GET").upper()
        target = inside_target(url)
        if target is None or not target.startswith("/finesse/api/"):
            fetched = echo(url, method, fields)
        elif method != "GET":
            fetched = Fetched(405, {}, b"the simulator's makeRequest only reads Finesse")
        else:
            fetched = await fetch_inside(origin, target, authorization(request, fields))
        answer = {
            url: {
                "rc": fetched.status,
                "body": fetched.body.decode("utf-8", "replace"),
                "headers": fetched.headers,
            }
        }
        headers = {"Cache-Control": NO_STORE, "Content-Disposition": "attachment;filename=p.txt"}
        return web.Response(
            text=UNPARSEABLE + json.dumps(answer), content_type="application/json", headers=headers
        )

    async def proxy(self, request: web.Request) -> web.Response:
        url = request.query.get("url", "")
        target = inside_target(url)
        if target is None or target.startswith("/gadgets/"):
            return text(400, f"the simulator proxies only its own paths, not {url!r}")
        fetched = await fetch_inside(request, target, request.headers.get("Authorization"))
        kind = fetched.headers.get("content-type", ["application/octet-stream"])[0]
        headers = {"Content-Type": kind, "Cache-Control": NO_STORE}
        return web.Response(status=fetched.status, body=fetched.body, headers=headers)


def walk(node: Traversable, prefix: str = "") -> Iterator[tuple[str, bytes]]:
    """(path under `node`, bytes) of every file below it, in name order."""
    for child in sorted(node.iterdir(), key=lambda item: item.name):
        if child.is_dir():
            yield from walk(child, f"{prefix}{child.name}/")
        else:
            yield prefix + child.name, child.read_bytes()


def content_type(name: str) -> str:
    suffix = name[name.rfind(".") :] if "." in name else ""
    return CONTENT_TYPES.get(suffix.lower(), "application/octet-stream")


def text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message + "\n")


def ignore_cache(query: Mapping[str, str]) -> bool:
    """Shindig's `nocache`: present with any value but `0`."""
    return "nocache" in query and query["nocache"] != "0"


def refresh(query: Mapping[str, str]) -> int:
    """Shindig's `refresh` seconds; missing or not a whole number: 3600."""
    value = query.get("refresh", "")
    return int(value) if value.isascii() and value.isdecimal() else DEFAULT_REFRESH


def inside_target(url: str) -> str | None:
    """The raw path and query a simulator path or http(s) URL names; None for others."""
    parts = urlsplit(url)
    if parts.scheme not in ("", "http", "https") or (parts.scheme and not parts.netloc):
        return None
    if not parts.path.startswith("/") or parts.path.startswith("//"):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def spec_path(url: str) -> str | None:
    """The decoded simulator path (no query) a file URL names, as `StaticFiles` keys it."""
    target = inside_target(url)
    return None if target is None else unquote(target.partition("?")[0])


def concat_urls(query: MultiMapping[str]) -> list[str]:
    """Numbered `1=, 2=, ...` in number order, then each `f=` in order."""
    numbered = sorted((int(key), value) for key, value in query.items() if key.isdecimal())
    return [value for _, value in numbered] + query.getall("f", [])


def authorization(request: web.Request, fields: Mapping[str, str]) -> str | None:
    """The caller's `Authorization`, else one in makeRequest's url-encoded `headers`."""
    if "Authorization" in request.headers:
        return request.headers["Authorization"]
    for name, value in parse_qsl(fields.get("headers", "")):
        if name.lower() == "authorization":
            return value
    return None


def echo(url: str, method: str, fields: Mapping[str, str]) -> Fetched:
    """makeRequest's fixed answer for URLs outside /finesse/api: what was asked for."""
    asked = {
        "url": url,
        "httpMethod": method,
        "headers": fields.get("headers", ""),
        "postData": fields.get("postData", ""),
    }
    return Fetched(200, {"content-type": ["application/json"]}, json.dumps(asked).encode())


async def fetch_inside(request: web.Request, target: str, auth: str | None) -> Fetched:
    """GET `target` through the simulator's own routes and middlewares (counted, faults,
    authentication), without a socket."""
    headers = {} if auth is None else {"Authorization": auth}
    inner = request.clone(method="GET", rel_url=URL(target), headers=headers)
    try:
        response = await request.app._handle(inner)
    except web.HTTPException as exc:
        response = exc
    if not isinstance(response, web.Response) or not isinstance(response.body, bytes | None):
        return Fetched(502, {}, b"the simulator's answer was not a plain body")
    found: dict[str, list[str]] = {}
    for name, value in response.headers.items():
        if name.lower() != "set-cookie":
            found.setdefault(name.lower(), []).append(value)
    return Fetched(response.status, found, response.body or b"")
