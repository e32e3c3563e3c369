"""The simulator's Shindig-like gadget endpoints (placeholder, being built)."""

from __future__ import annotations

from aiohttp import web

from webproxy.sim.state import SimState


class GadgetRoutes:
    """`/gadgets/ifr`, `/gadgets/concat`, `/gadgets/js/`, `/gadgets/makeRequest` (none yet)."""

    def __init__(self, state: SimState) -> None:
        self.state = state

    def add_to(self, router: web.UrlDispatcher) -> None:
        return None
