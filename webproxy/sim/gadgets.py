"""The simulator's Shindig-like gadget endpoints (placeholder, being built)."""

from __future__ import annotations

from aiohttp import web

from webproxy.sim.state import SimState
from webproxy.sim.static_files import StaticFiles


class GadgetRoutes:
    """`/gadgets/ifr`, `/gadgets/concat`, `/gadgets/js/`, `/gadgets/makeRequest` (none yet)."""

    def __init__(self, state: SimState, files: StaticFiles) -> None:
        self.state = state
        self.files = files  # add static files here; the simulator serves them

    def add_to(self, router: web.UrlDispatcher) -> None:
        return None
