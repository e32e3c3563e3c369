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
    """The delayed purges waiting to run: at most one per set of purges, plus the latest
    time another write asked for that set meanwhile (a flood of failing writes costs one
    task, not one each), so every write is purged again at or after its own time."""

    def __init__(self, purge: PurgeAll) -> None:
        self._purge = purge
        self._waiting: dict[tuple[Purge, ...], asyncio.Task[None]] = {}
        self._again_at: dict[tuple[Purge, ...], float] = {}  # asked while one was waiting

    def __len__(self) -> int:
        return len(self._waiting)

    def schedule(self, purges: Sequence[Purge], after: float) -> None:
        key = tuple(purges)
        if not key:
            return
        loop = asyncio.get_running_loop()
        if key in self._waiting:
            self._again_at[key] = loop.time() + after
            return
        self._start(key, loop.time() + after)

    def _start(self, key: tuple[Purge, ...], at: float) -> None:
        task = asyncio.create_task(self._later(key, at))
        self._waiting[key] = task

    async def _later(self, key: tuple[Purge, ...], at: float) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, at - loop.time()))  # the delay is the point
        del self._waiting[key]
        again = self._again_at.pop(key, None)
        if again is not None:
            self._start(key, again)
        if not await self._purge(key):
            log.warning("a delayed purge could not reach the store; a clear is owed")

    async def close(self) -> None:
        tasks = list(self._waiting.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
