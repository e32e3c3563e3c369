"""Counts of requests the simulator served, as /sim/stats reports them."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Final

TRACKED: Final = (
    "/finesse/api/",
    "/ws",
    "/http-bind",
    "/sim/echo",
    "/desktop",
    "/3rdpartygadget/",
    "/gadgets/",
)


def tracked(path: str) -> bool:
    """Counted (and open to faults): Finesse, notifications, the desktop, gadgets and
    /sim/echo; not /sim/stats."""
    return path.startswith(TRACKED) or path == "/finesse/api"


def without_nocache(query: str) -> str:
    """The raw query string minus every `nocache` parameter, order kept."""
    kept = [part for part in query.split("&") if part and part.split("=", 1)[0] != "nocache"]
    return "&".join(kept)


class RequestStats:
    """Totals by "METHOD path" and by "METHOD path?query" (query without nocache)."""

    def __init__(self) -> None:
        self.total = 0
        self.requests: Counter[str] = Counter()
        self.urls: Counter[str] = Counter()
        self.waiters: list[tuple[int, asyncio.Future[None]]] = []

    def count(self, method: str, path: str, query: str) -> None:
        self.total += 1
        self.requests[f"{method} {path}"] += 1
        query = without_nocache(query)
        self.urls[f"{method} {path}?{query}" if query else f"{method} {path}"] += 1
        for need, waiter in self.waiters:
            if self.total >= need and not waiter.done():
                waiter.set_result(None)
        self.waiters = [(n, w) for n, w in self.waiters if not w.done()]

    async def wait_for(self, total: int) -> None:
        """Return once `total` requests have been counted (since the last reset)."""
        if self.total >= total:
            return
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append((total, waiter))
        await waiter

    def reset(self) -> None:
        self.total = 0
        self.requests.clear()
        self.urls.clear()

    def as_json(self) -> dict[str, object]:
        return {"total": self.total, "requests": dict(self.requests), "urls": dict(self.urls)}
