"""The simulator's desktop: its container page and static files (placeholder, being built)."""

from __future__ import annotations

from aiohttp import web

from webproxy.sim.state import SimState


class DesktopFiles:
    """`/desktop/...` and `/3rdpartygadget/files/...` (none yet)."""

    def __init__(self, state: SimState) -> None:
        self.state = state

    def add_to(self, router: web.UrlDispatcher) -> None:
        return None
