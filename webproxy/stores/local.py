"""LocalTier: a byte-bounded in-process copy in front of the shared (Redis) store.

A hit in the tier costs no Redis round trip. What it holds is a copy of what Redis held,
with the Redis generation it was valid under, kept at most `ttl` seconds. It is kept
coherent by the fleet's event stream (`webproxy.stores.redis_events`):

- a purge or clear made here drops the copies it covers before Redis is even asked, and is
  published as a ``purged`` event naming the counter, once Redis has it;
- a ``purged`` event from any replica (or worker) bumps the same counter here, so every
  copy listing it goes dark at once (the same generation scheme as the memory store, with
  counters of this process);
- a copy is made only with the local generation read before Redis was: a purge event that
  arrives while Redis is being read makes that copy's `put` fail, so an answer read before
  a purge is never kept after it;
- the tier is used only while the subscription is up (`trust`); when it may have missed
  events (`distrust`: reconnect, silence), it drops every copy and reads Redis directly
  until subscribed again.

How stale a copy may be after a purge at another replica: for the event stream's latency
(a PUBLISH and its delivery; about a millisecond on a LAN), and never longer than `ttl`,
even when events are lost without the subscription noticing. A purge made through this
process is never followed by a stale read from it. A newer entry put by another replica
without a purge (a `bypassServerCache` refresh) replaces the copy here within `ttl`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Generic

from webproxy.fleet import Event, EventKind
from webproxy.stores.base import ALL, CacheStore, Found, StoreStats, V
from webproxy.stores.memory import LocalGenerations, MemoryStore

#: What a copy costs beyond the entry itself: the `_Copy` record and its generation tuple.
COPY_OVERHEAD: Final = 120
LABEL: Final = "local"


@dataclass(frozen=True, slots=True)
class _Copy(Generic[V]):
    value: V
    generation: tuple[int, ...]  # the shared store's, as `get` must report it


def purged_event(counter: str) -> Event:
    return Event(EventKind.PURGED, counter.encode())


class LocalTier(Generic[V]):
    """A CacheStore: `shared` with an in-process copy of its entries in front."""

    def __init__(
        self,
        shared: CacheStore[V],
        *,
        max_bytes: int,
        ttl: float,
        sizeof: Callable[[str, V], int],
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._shared = shared
        self._ttl = ttl
        self._generations = LocalGenerations()

        def copy_size(key: str, copy: _Copy[V]) -> int:
            return sizeof(key, copy.value) + COPY_OVERHEAD

        self._new_copies: Callable[[], MemoryStore[_Copy[V]]] = lambda: MemoryStore(
            max_bytes, copy_size, timer, self._generations
        )
        self._copies = self._new_copies()
        self.publish: Callable[[Event], None] | None = None  # tells every replica
        self._trusted = False

    @property
    def trusted(self) -> bool:
        return self._trusted

    def trust(self) -> None:
        """Subscribed: events from now on will be heard, so copies may be made again."""
        self._drop()
        self._trusted = True

    def distrust(self) -> None:
        """Events may have been missed: drop every copy, and make none until `trust`."""
        self._trusted = False
        self._drop()

    def receive(self, event: Event) -> None:
        """A ``purged`` event, from any replica (this one's own included)."""
        if event.kind is EventKind.PURGED:
            try:
                self._purge_here(event.payload.decode("ascii"))
            except UnicodeDecodeError:  # not a counter we could hold: suspect everything
                self._drop()

    def _purge_here(self, counter: str) -> None:
        if counter == ALL:
            self._drop()
        else:
            self._generations.bump(counter)

    def _drop(self) -> None:
        """Forget every copy at once (and refuse copies read before now: ALL moved)."""
        self._generations.bump(ALL)
        self._copies = self._new_copies()

    async def get(self, key: str, counters: Sequence[str]) -> Found[V]:
        trusted = self._trusted
        before: tuple[int, ...] = ()
        if trusted:
            local = await self._copies.get(key, counters)
            if (copy := local.value) is not None:
                return Found(copy.value, copy.generation)
            before = local.generation
        found = await self._shared.get(key, counters)
        if trusted and found.value is not None:
            await self._keep(key, found.value, counters, found.generation, before)
        return found

    def peek(self, key: str, counters: Sequence[str]) -> V | None:
        """The local copy, at once, while subscribed (the fast lane's lookup); None means
        "ask `get`", which reads Redis."""
        if not self._trusted:
            return None
        copy = self._copies.peek(key, counters)
        return copy.value if copy is not None else None

    async def put(
        self,
        key: str,
        value: V,
        *,
        keep: float,
        label: str,
        counters: Sequence[str],
        generation: tuple[int, ...],
    ) -> bool:
        trusted = self._trusted
        before = self._generations.read(counters)
        stored = await self._shared.put(
            key, value, keep=keep, label=label, counters=counters, generation=generation
        )
        if stored and trusted:
            await self._keep(key, value, counters, generation, before, keep)
        return stored

    async def _keep(
        self,
        key: str,
        value: V,
        counters: Sequence[str],
        generation: tuple[int, ...],
        before: tuple[int, ...],
        keep: float | None = None,
    ) -> None:
        """Copy `value` unless a purge was heard since `before` (the put then fails)."""
        ttl = self._ttl if keep is None else min(self._ttl, keep)
        await self._copies.put(
            key,
            _Copy(value, generation),
            keep=ttl,
            label=LABEL,
            counters=counters,
            generation=before,
        )

    async def purge(self, counter: str) -> None:
        self._purge_here(counter)  # first: even if Redis fails, nothing here outlives it
        await self._shared.purge(counter)
        self._tell(counter)

    async def clear(self) -> None:
        self._drop()
        await self._shared.clear()
        self._tell(ALL)

    def _tell(self, counter: str) -> None:
        if self.publish is not None:
            self.publish(purged_event(counter))

    async def stats(self) -> StoreStats:
        return await self._shared.stats()

    async def local_stats(self) -> StoreStats:
        """The copies held here now (entries readable, and their bytes)."""
        return await self._copies.stats()

    async def ping(self) -> None:
        await self._shared.ping()

    async def claim(self, key: str, ttl: float) -> str | None:
        return await self._shared.claim(key, ttl)

    async def release(self, key: str, token: str) -> None:
        await self._shared.release(key, token)

    async def close(self) -> None:
        self.distrust()
        await self._shared.close()
