"""MemoryStore: the in-process cache store, on cachetools' TLRUCache with a byte budget.

Values are kept as the Python objects they are (nothing is serialised on the hot path).
Every method runs to completion without awaiting, so there is no lock and no thread.

The budget counts what `sizeof(key, value)` says holding the value costs; the proxy's
sizeof is the entry's real footprint (`entry_cost`: its objects as `sys.getsizeof`
measures them, the key, and `HELD_OVERHEAD` for this store's own per-entry structures,
measured with tracemalloc by `bench/store_memory.py`). A value over `max_bytes`, or over
`max_entry_bytes`, is not kept and `put` returns False; any older entry under that key is
dropped, so it cannot stand in for the newer response. Entries made unreadable by a purge
are dropped lazily, when a `get` meets them, or evicted.

The generation counters are a `Generations` object: in this process by default, or in
memory shared by every worker process (`webproxy.stores.shared`), so a purge or clear in
one worker invalidates the entries of all.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Generic

from cachetools import Cache, TLRUCache

from webproxy.stores.base import ALL, Found, Generations, LabelStats, StoreStats, V, check_put

#: What this store spends per entry beyond the key and value themselves: the `_Held`
#: record and its size int, the generation tuple, the entry's slots in the cache's two
#: dicts and its LRU links, TLRUCache's expiry item and heap slot (kept up to twice over
#: for evicted entries until the heap is compacted). Measured under eviction churn by
#: `bench/store_memory.py` (tracemalloc), rounded up.
HELD_OVERHEAD: Final = 640


@dataclass(frozen=True, slots=True)
class _Held(Generic[V]):
    """One entry as kept: the value and what it was stored with."""

    value: V
    label: str
    counters: tuple[str, ...]
    generation: tuple[int, ...]
    keep: float
    size: int


class LocalGenerations:
    """Generation counters in this process: a plain dict, a counter never bumped reads 0."""

    def __init__(self) -> None:
        self._counters: dict[str, int] = {}

    def read(self, counters: Sequence[str]) -> tuple[int, ...]:
        read = self._counters.get
        return tuple([read(name, 0) for name in counters])

    def bump(self, counter: str) -> None:
        self._counters[counter] = self._counters.get(counter, 0) + 1


def _expires(_key: str, held: _Held[V], now: float) -> float:
    return now + held.keep


def _size(held: _Held[V]) -> int:
    return held.size


class MemoryStore(Generic[V]):
    """A CacheStore in process memory, bounded by `max_bytes` as measured by `sizeof`."""

    def __init__(
        self,
        max_bytes: int,
        sizeof: Callable[[str, V], int],
        timer: Callable[[], float] = time.monotonic,
        generations: Generations | None = None,
        max_entry_bytes: int | None = None,
    ) -> None:
        self._max_bytes = max_bytes
        self._max_entry_bytes = min(max_bytes, max_entry_bytes or max_bytes)
        self._sizeof = sizeof
        self._cache: TLRUCache[str, _Held[V], float] = TLRUCache(max_bytes, _expires, timer, _size)
        self._generations = generations if generations is not None else LocalGenerations()

    async def get(self, key: str, counters: Sequence[str]) -> Found[V]:
        current = self._generations.read(counters)
        try:
            held = self._cache[key]
        except KeyError:
            return Found(None, current)
        if held.generation == current and held.counters == tuple(counters):
            return Found(held.value, current)
        self._drop(key)
        return Found(None, current)

    def peek(self, key: str, counters: Sequence[str]) -> V | None:
        """`get`'s value, at once (the fast lane's lookup; see `webproxy.fastlane`)."""
        try:
            held = self._cache[key]
        except KeyError:
            return None
        if held.counters == tuple(counters) and held.generation == self._generations.read(counters):
            return held.value
        return None

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
        names = tuple(counters)
        check_put(names, generation, keep)
        if self._generations.read(names) != generation:
            return False
        size = self._sizeof(key, value)
        if size > self._max_entry_bytes:
            self._drop(key)
            return False
        self._cache[key] = _Held(value, label, names, generation, keep, size)
        return True

    def _drop(self, key: str) -> None:
        with contextlib.suppress(KeyError):  # TLRUCache deletes, then may raise if just expired
            del self._cache[key]

    async def purge(self, counter: str) -> None:
        self._generations.bump(counter)

    async def clear(self) -> None:
        self._cache.clear()
        self._generations.bump(ALL)

    async def stats(self) -> StoreStats:
        self._cache.expire()
        entries: defaultdict[str, int] = defaultdict(int)
        sizes: defaultdict[str, int] = defaultdict(int)
        for key in list(self._cache):
            held = Cache.__getitem__(self._cache, key)  # a peek: leaves the LRU order alone
            if self._generations.read(held.counters) == held.generation:
                entries[held.label] += 1
                sizes[held.label] += held.size
        by_label = {label: LabelStats(entries[label], sizes[label]) for label in entries}
        return StoreStats(sum(entries.values()), sum(sizes.values()), by_label)

    async def ping(self) -> None:
        return None

    async def claim(self, key: str, ttl: float) -> str | None:
        return "local"  # one process: its flights already share the fetch

    async def release(self, key: str, token: str) -> None:
        return None

    async def close(self) -> None:
        self._cache.clear()
