"""Generation counters in shared memory, for worker processes forked from one supervisor.

Each worker keeps its own memory store, but all read their generation counters from one
anonymous shared mapping made before the fork: a purge or an admin clear in any worker
bumps a counter every worker reads on its next lookup, so no worker serves what another
purged. Names map to a fixed number of slots by CRC-32; two names sharing a slot only
means one purge also invalidates the other's entries (safe, and rare with 4096 slots).
Bumps take a lock; reads are single aligned 64-bit loads and take none.
"""

from __future__ import annotations

import mmap
import multiprocessing
import zlib
from collections.abc import Sequence
from typing import Final

SLOTS: Final = 4096
MEMO_LIMIT: Final = 65536


class SharedGenerations:
    """`Generations` shared across `fork`: made in the supervisor, used in the workers."""

    def __init__(self, slots: int = SLOTS) -> None:
        self._slots = slots
        self._map = mmap.mmap(-1, slots * 8)  # anonymous and MAP_SHARED: inherited by fork
        self._cells = memoryview(self._map).cast("Q")
        self._lock = multiprocessing.get_context("fork").Lock()
        self._slot_of: dict[str, int] = {}

    def _slot(self, name: str) -> int:
        slot = self._slot_of.get(name)
        if slot is None:
            slot = zlib.crc32(name.encode()) % self._slots
            if len(self._slot_of) < MEMO_LIMIT:  # names come from requests: keep the memo bounded
                self._slot_of[name] = slot
        return slot

    def read(self, counters: Sequence[str]) -> tuple[int, ...]:
        cells = self._cells
        return tuple([cells[self._slot(name)] for name in counters])

    def bump(self, counter: str) -> None:
        slot = self._slot(counter)
        with self._lock:
            self._cells[slot] += 1
