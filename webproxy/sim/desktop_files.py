"""The simulator's desktop: its container page and static files, as Finesse serves them.

The files live in the package (`webproxy/sim/static/desktop/`) and are served by
`StaticFiles` with validators; each row of `DESKTOP_FILES` says how. The container page
has no `Cache-Control` and no gzip variant, as Finesse's; scripts and style sheets are
`public, max-age=300` with gzip variants; the logo has neither. None needs a credential.

`/`, `/desktop`, `/desktop/` and `/desktop/container` answer 302 to the container page,
keeping the query (`https://host?nocache`, `/desktop?nocache`).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files as package_files
from typing import Final

from aiohttp import web

from webproxy.sim.state import SimState
from webproxy.sim.static_files import StaticFile, StaticFiles

CONTAINER: Final = "/desktop/container/"
REDIRECTED: Final = ("/", "/desktop", "/desktop/", "/desktop/container")
ASSETS: Final = "public, max-age=300"  # scripts and style sheets


@dataclass(frozen=True, slots=True)
class DesktopFile:
    """One served file: its URL path, its file under static/, and how it is served."""

    path: str
    resource: str
    content_type: str
    cache_control: str | None = None
    gzip: bool = False


DESKTOP_FILES: Final = (
    DesktopFile(CONTAINER, "desktop/container/index.html", "text/html; charset=utf-8"),
    DesktopFile(
        "/desktop/scripts/finesse.js",
        "desktop/scripts/finesse.js",
        "application/javascript; charset=utf-8",
        ASSETS,
        gzip=True,
    ),
    DesktopFile(
        "/desktop/scripts/desktop.js",
        "desktop/scripts/desktop.js",
        "application/javascript; charset=utf-8",
        ASSETS,
        gzip=True,
    ),
    DesktopFile(
        "/desktop/css/desktop.css",
        "desktop/css/desktop.css",
        "text/css; charset=utf-8",
        ASSETS,
        gzip=True,
    ),
    DesktopFile("/desktop/images/logo.svg", "desktop/images/logo.svg", "image/svg+xml"),
)


def read_static(resource: str) -> bytes:
    """The bytes of a file under webproxy/sim/static/ (also from an installed wheel)."""
    return package_files("webproxy.sim").joinpath("static", *resource.split("/")).read_bytes()


class DesktopFiles:
    """`/desktop/...`: the container page, its scripts, style sheet and logo."""

    def __init__(self, state: SimState, files: StaticFiles) -> None:
        self.state = state
        self.files = files
        for row in DESKTOP_FILES:
            content = read_static(row.resource)
            files.add(row.path, StaticFile(row.content_type, content, row.cache_control, row.gzip))

    def add_to(self, router: web.UrlDispatcher) -> None:
        for path in REDIRECTED:
            router.add_get(path, to_container)


async def to_container(request: web.Request) -> web.Response:
    """302 to the container page, the query kept as sent."""
    query = request.rel_url.raw_query_string
    location = f"{CONTAINER}?{query}" if query else CONTAINER
    raise web.HTTPFound(location)
