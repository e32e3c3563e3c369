"""One upstream fetch per key across the fleet: who fills a key, and waking those who wait.

Within a process, concurrent misses share a flight (`webproxy.coalesce`). Across workers
and replicas sharing Redis, a flight's leader first claims the key in the store (a short
lock, `SET NX PX`, that expires if its holder dies). A leader that finds the key claimed
waits, at most `cache.coalesce_timeout`, to be told it was filled: the filler publishes
the key's hash on the fleet's event channel (`stores.redis_events`) and every process
wakes its waiters for it, no polling. Then the store is read again, with the same
generation and access checks as any lookup; if nothing usable is there (the filler got a
401, a 5xx, or died), the waiter fetches for itself. A leader that wins the claim reads
the store once more before it fetches: its lookup may have missed just before another
process stored the key and gave its claim back. Nothing can deadlock: every wait has
a deadline, and every claim a TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final

from webproxy.fleet import Event, EventKind

KEY_HASH_BYTES: Final = 16


def key_hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()[:KEY_HASH_BYTES]


@dataclass
class _Waiting:
    filled: asyncio.Event = field(default_factory=asyncio.Event)
    waiters: int = 0


@dataclass(frozen=True, slots=True)
class Watch:
    """One waiter's view of a key being filled elsewhere."""

    filled: asyncio.Event

    async def wait(self, patience: float) -> bool:
        """Until the key is said to be filled (True) or `patience` runs out (False)."""
        try:
            async with asyncio.timeout(patience):
                await self.filled.wait()
            return True
        except TimeoutError:
            return False


class Fills:
    """This process's waiters for keys another process is filling."""

    def __init__(self, publish: Callable[[Event], None] | None = None) -> None:
        self.publish = publish  # set when the store is Redis: tells every replica
        self._waiting: dict[bytes, _Waiting] = {}

    def __len__(self) -> int:
        return len(self._waiting)

    @contextlib.contextmanager
    def watching(self, key: str) -> Iterator[Watch]:
        """Be woken for `key` from now on. Enter it before asking for the claim: a fill
        that ends while the refused claim's answer is on its way is then not missed (the
        filled event and the claim's answer come over different connections)."""
        digest = key_hash(key)
        waiting = self._waiting.get(digest)
        if waiting is None:
            waiting = self._waiting[digest] = _Waiting()
        waiting.waiters += 1
        try:
            yield Watch(waiting.filled)
        finally:
            waiting.waiters -= 1
            if not waiting.waiters and self._waiting.get(digest) is waiting:
                del self._waiting[digest]

    async def wait(self, key: str, patience: float) -> bool:
        """Until `key` is said to be filled (True) or `patience` runs out (False)."""
        with self.watching(key) as watch:
            return await watch.wait(patience)

    def filled(self, key: str) -> None:
        """`key` was filled (or given up) here: wake this process, tell the others."""
        digest = key_hash(key)
        self.wake(digest)
        if self.publish is not None:
            self.publish(Event(EventKind.FILLED, digest))

    def wake(self, digest: bytes) -> None:
        waiting = self._waiting.pop(digest, None)
        if waiting is not None:
            waiting.filled.set()
