"""What the worker processes of one group tell one another about credentials.

Purges and clears need no message: every worker reads the generation counters (shared
memory, or Redis) on each lookup. What a worker learns about credentials is its own,
though, and a 401 must reach all of them: a changed password must get nothing from the
cache through any worker. So forgetting travels through `IdentityEvents`, a ring of the
last `SLOTS` events in memory shared across `fork`, made by the supervisor:

- ``forget``: a credential Finesse refused, as its keyed digest (every worker of the group
  shares the digest key, drawn by the supervisor; the credential is never shared);
- ``forget team``: an admin clear of one team; ``clear``: an admin clear of everything.

A worker catches up before it answers from its identities (one shared 8-byte read when
nothing happened). One that fell more than `SLOTS` events behind, or read a slot being
rewritten, can no longer know what it missed: it forgets every identity it had learned.
Writes take a lock; reads take none (a sequence number before and after each slot).
"""

from __future__ import annotations

import mmap
import multiprocessing
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

SLOTS: Final = 4096
_HEAD: Final = struct.Struct("<Q")
_SLOT: Final = struct.Struct("<QB16sQ")  # sequence, kind, payload, sequence again


class EventKind(IntEnum):
    FORGET = 1
    FORGET_TEAM = 2
    CLEAR = 3
    FILLED = 4  # a key's hash: its fill is done (replicas only; see `webproxy.fills`)
    PURGED = 5  # a counter's name: bumped (replicas only; see `webproxy.stores.local`)


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    payload: bytes  # FORGET: the 16-byte digest; FORGET_TEAM: the team id, NUL-padded


class IdentityEvents:
    """The group's ring of credential events; `read` returns what a reader has not seen,
    or None when it can't know (a gap)."""

    def __init__(self, slots: int = SLOTS) -> None:
        self._slots = slots
        self._map = mmap.mmap(-1, _HEAD.size + slots * _SLOT.size)  # MAP_SHARED, anonymous
        self._lock = multiprocessing.get_context("fork").Lock()

    @property
    def head(self) -> int:
        """The sequence number of the newest event (0: none yet)."""
        head: int = _HEAD.unpack_from(self._map, 0)[0]
        return head

    def publish(self, kind: EventKind, payload: bytes = b"") -> int:
        """Add an event; its sequence number."""
        if len(payload) > 16:
            raise ValueError("an event's payload is at most 16 bytes")
        with self._lock:
            sequence = self.head + 1
            offset = self._offset(sequence)
            _SLOT.pack_into(self._map, offset, 0, kind, payload, 0)  # being rewritten
            _SLOT.pack_into(self._map, offset, sequence, kind, payload, sequence)
            _HEAD.pack_into(self._map, 0, sequence)
        return sequence

    def read(self, seen: int) -> tuple[int, list[Event] | None]:
        """Events after sequence `seen`, and the sequence now seen; None: some were lost."""
        head = self.head
        if head == seen:
            return head, []
        if head - seen > self._slots:
            return head, None
        events = []
        for sequence in range(seen + 1, head + 1):
            before, kind, payload, after = _SLOT.unpack_from(self._map, self._offset(sequence))
            if before != sequence or after != sequence:
                return head, None  # overwritten or being written: can't be sure
            events.append(Event(EventKind(kind), payload))
        return head, events

    def _offset(self, sequence: int) -> int:
        return _HEAD.size + (sequence % self._slots) * _SLOT.size
