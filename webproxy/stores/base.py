"""The one small interface every cache store satisfies, and the records it returns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Generic, Protocol, TypeVar

V = TypeVar("V")

ALL: Final = "all"
"""The counter `clear()` bumps. Every `put` must list it, so a clear reaches every entry."""


@dataclass(frozen=True, slots=True)
class Found(Generic[V]):
    """What `get` saw: the value (if still valid) and the counters' current values."""

    value: V | None
    """None: missing, past its keep time, or stored under an older generation."""
    generation: tuple[int, ...]
    """The current values of the counters asked for, read in the same step as the entry."""


@dataclass(frozen=True, slots=True)
class LabelStats:
    """Live entries and their bytes for one label."""

    entries: int
    bytes: int


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Live entries (readable now: within keep time and generation) and their bytes."""

    entries: int
    bytes: int
    by_label: Mapping[str, LabelStats]


class Generations(Protocol):
    """Named generation counters, as the memory store keeps them (a counter never bumped is 0)."""

    def read(self, counters: Sequence[str]) -> tuple[int, ...]: ...

    def bump(self, counter: str) -> None: ...


class CacheStore(Protocol[V]):
    """Keeps values under string keys, each guarded by a tuple of generation counters.

    Counters are opaque names (e.g. ``("all", "teams", "team:5000")``); one never bumped reads
    0. An entry is readable only while every counter it was stored with still has the value it
    had when the caller read it: a purge bumps a counter, so every entry listing it goes dark
    at once, and a `put` carrying a generation read before the purge is refused. Callers must
    ask `get` with the same counters the key is `put` with (else the entry reads as missing).
    """

    async def get(self, key: str, counters: Sequence[str]) -> Found[V]:
        """Return the value if still valid, with the counters' current values (also on a miss)."""
        ...

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
        """Keep `value` for `keep` seconds unless a counter moved since `generation` was read.

        Atomic check-and-set: returns False and stores nothing on a generation conflict, True
        otherwise (a store may still evict the entry at any time, e.g. one over its byte
        budget). `counters` must include `ALL`; `keep` must be positive; `label` groups stats.
        """
        ...

    async def purge(self, counter: str) -> None:
        """Bump one counter: O(1), atomic, no key scans."""
        ...

    async def clear(self) -> None:
        """Invalidate everything (bump `ALL`) and drop entries where that is cheap."""
        ...

    async def stats(self) -> StoreStats:
        """Count live entries and bytes; for admin and scrape time only, may be O(n)."""
        ...

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the store is serving."""
        ...

    async def claim(self, key: str, ttl: float) -> str | None:
        """Claim the filling of `key` for `ttl` seconds: a token, or None if another
        process holds it. A store of one process always grants it."""
        ...

    async def release(self, key: str, token: str) -> None:
        """Give a claim back (only if still ours: it may have expired and been retaken)."""
        ...

    async def close(self) -> None:
        """Release what the store itself holds."""
        ...


def check_put(counters: tuple[str, ...], generation: tuple[int, ...], keep: float) -> None:
    """Raise ValueError for a `put` that breaks the interface's rules (a caller's bug)."""
    if keep <= 0:
        raise ValueError(f"keep must be positive, got {keep!r}")
    if ALL not in counters:
        raise ValueError(f"counters must include {ALL!r}, got {counters!r}")
    if len(generation) != len(counters):
        raise ValueError(f"generation {generation!r} does not match counters {counters!r}")
