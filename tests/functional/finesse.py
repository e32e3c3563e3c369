"""Small steps every functional test takes against the simulator through the proxy."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

from tests.conftest import Proxy, Sim, basic


async def sign_in(proxy: Proxy, user: str, password: str = "finesse") -> None:
    """What a desktop does first: read its own User (this teaches the proxy who it is)."""
    response = await proxy.client.get(f"/finesse/api/User/{user}", headers=basic(user, password))
    assert response.status == 200, await response.text()


def upstream_gets(sim: Sim, path: str) -> int:
    """How many GETs of `path` (any query) reached the simulator."""
    return sim.sim.stats().get(f"GET {path}", 0)


async def eventually(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Poll `condition` until it holds; fail after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    for _ in itertools.count():
        if condition():
            return
        if loop.time() > deadline:
            raise TimeoutError(f"condition still false after {within}s")
        await asyncio.sleep(0.005)
