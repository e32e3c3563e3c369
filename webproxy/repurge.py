"""Purges done again later: for a write whose outcome is unknown, and (if configured)
for every write, once a Finesse secondary has surely caught up.

A write sent whole whose answer never came (a timeout, a reset) may be applied by Finesse
a moment after the proxy gave up: the purge at the timeout can't cover a read that stores
the pre-write body in between. So the same purges run again after `cache.repurge_after`,
which is longer than `upstream.read_timeout`: by then Finesse has applied the write or
never will. Each is a task of its own; shutdown cancels what is still waiting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from webproxy.cache.rules import Purge

log = logging.getLogger("webproxy.store")

#: Records `purges`; False when the store could not (it then owes a clear).
PurgeAll = Callable[[Sequence[Purge]], Awaitable[bool]]


class Repurges:
    """The delayed purges waiting to run."""

    def __init__(self, purge: PurgeAll) -> None:
        self._purge = purge
        self._waiting: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._waiting)

    def schedule(self, purges: Sequence[Purge], after: float) -> None:
        if not purges:
            return
        task = asyncio.create_task(self._later(tuple(purges), after))
        self._waiting.add(task)
        task.add_done_callback(self._waiting.discard)

    async def _later(self, purges: tuple[Purge, ...], after: float) -> None:
        await asyncio.sleep(after)  # the delay is the point: Finesse catching up
        if not await self._purge(purges):
            log.warning("a delayed purge could not reach the store; a clear is owed")

    async def close(self) -> None:
        for task in list(self._waiting):
            task.cancel()
        await asyncio.gather(*self._waiting, return_exceptions=True)
