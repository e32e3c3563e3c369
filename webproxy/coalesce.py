"""Single flight: concurrent misses for one key share one upstream fetch.

The fetch runs in a task of its own, so a client that goes away does not cancel what
others wait on. Joiners wait at most `patience` seconds; the leader waits for its fetch,
which the upstream timeouts bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class Flights(Generic[T]):
    """The fetches in flight, by key."""

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Future[T]] = {}

    def __len__(self) -> int:
        return len(self._running)

    async def join(self, key: Hashable, *, patience: float) -> T | None:
        """The result of the flight under `key`, or None: no flight, it failed, or too slow.

        Returns at once, without yielding to the loop, when no flight is running, so a
        caller that then calls `lead` cannot race another into a second flight.
        """
        flight = self._running.get(key)
        if flight is None:
            return None
        try:
            async with asyncio.timeout(patience):
                return await asyncio.shield(flight)
        except Exception:  # the leader's failure is the leader's; the joiner asks alone
            return None

    async def lead(self, key: Hashable, fetch: Callable[[], Awaitable[T]]) -> T:
        """Start the flight under `key` and wait for it; its errors are the leader's."""
        flight = asyncio.ensure_future(fetch())
        self._running[key] = flight
        flight.add_done_callback(lambda done: self._land(key, done))
        return await asyncio.shield(flight)

    def _land(self, key: Hashable, flight: asyncio.Future[T]) -> None:
        if self._running.get(key) is flight:
            del self._running[key]
        if not flight.cancelled():
            flight.exception()  # retrieved here, so a failure nobody awaited is not reported
