"""The simulator's desktop: its container page and static files (placeholder, being built)."""

from __future__ import annotations

from aiohttp import web

from webproxy.sim.state import SimState
from webproxy.sim.static_files import StaticFiles


class DesktopFiles:
    """`/desktop/...` and `/3rdpartygadget/files/...` (none yet)."""

    def __init__(self, state: SimState, files: StaticFiles) -> None:
        self.state = state
        self.files = files  # add static files here; the simulator serves them

    def add_to(self, router: web.UrlDispatcher) -> None:
        return None
