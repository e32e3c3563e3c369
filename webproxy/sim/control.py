"""The simulator's own JSON endpoints: /sim/stats and /sim/faults."""

from __future__ import annotations

import json

from aiohttp import web

from webproxy.sim.faults import Fault, FaultBook
from webproxy.sim.stats import RequestStats


class ControlRoutes:
    """GET/DELETE /sim/stats; GET/POST/DELETE /sim/faults. Neither is counted."""

    def __init__(self, stats: RequestStats, faults: FaultBook) -> None:
        self.stats = stats
        self.faults = faults

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_get("/sim/stats", self.get_stats)
        router.add_delete("/sim/stats", self.reset_stats)
        router.add_get("/sim/faults", self.list_faults)
        router.add_post("/sim/faults", self.add_fault)
        router.add_delete("/sim/faults", self.clear_faults)

    async def get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats.as_json())

    async def reset_stats(self, request: web.Request) -> web.Response:
        self.stats.reset()
        return web.Response(status=204)

    async def list_faults(self, request: web.Request) -> web.Response:
        return web.json_response({"faults": self.faults.active()})

    async def add_fault(self, request: web.Request) -> web.Response:
        """201 with the fault as stored; 400 with {"error": ...} if the JSON is wrong."""
        try:
            raw = json.loads(await request.read())
            if not isinstance(raw, dict):
                raise ValueError("expected a JSON object")
            fault = Fault.from_json(raw)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        self.faults.add(fault)
        return web.json_response(fault.to_json(), status=201)

    async def clear_faults(self, request: web.Request) -> web.Response:
        self.faults.clear()
        return web.Response(status=204)
