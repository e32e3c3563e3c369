"""What Finesse answers each caller at each moment, and the verdict on every proxied answer.

Versions: the simulator's state changes only through the suite's one writer (admin writes,
password changes, team moves), one at a time, so the number of changes completed is the
state's version, and while one is in flight the state is that version or the next. A read
records the versions bounding it: `low` (completed when it was sent) and `high` (completed,
plus one if a change was in flight, when its answer came). Right after each change, with
no other in flight, the writer reads every cached resource straight from the simulator
with a member of its team (`bodies`), and the status every changed credential now gets
for every resource (`statuses`, by credential and epoch: its facts between two changes).
Credentials that never change are asked at the end.

The proxy learns about a changed credential only from what it forwards, so after a change
it may, for a while, still serve the credential what its old facts allowed (`lag`, counted,
allowed by the identity TTL). It must stop once it has learnt (`learnt_at`): a 401 to a
request sent after the change, or a sign-in binding the new facts, or a full cache clear,
sent after every request from before the change had been answered (`strict`: sent after
the change; answers from before it that land later must then teach the proxy nothing).
"""

from __future__ import annotations

import bisect
import hashlib
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from tests.functional.crossuser.population import Credential, View

FOREVER: Final = 1 << 62
LOGIN_ID: Final = re.compile(rb"<loginId>([^<]*)</loginId>")


class Verdict(StrEnum):
    OK = "ok"
    LAG = "lag"  # old facts of a changed credential, before the proxy could know (allowed)
    FOREIGN = "foreign"  # a 200 the caller would not get at all, or another resource's body
    STALE = "stale"  # older than the last change completed before the read was sent
    STATUS = "status"  # a status Finesse would not have answered
    UNKNOWN = "unknown"  # a 200 body Finesse never had


FAILURES: Final = frozenset({Verdict.FOREIGN, Verdict.STALE, Verdict.STATUS, Verdict.UNKNOWN})


def digest(body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=16).digest()


@dataclass
class Timeline:
    """A clock that ticks at every send and answer, and the state's version."""

    tick: int = 0
    completed: int = 0
    in_flight: bool = False

    def now(self) -> int:
        self.tick += 1
        return self.tick

    @property
    def high(self) -> int:
        return self.completed + self.in_flight


@dataclass(slots=True)
class Answered:
    """One proxied read and its answer."""

    index: int  # in the plan
    credential: Credential
    view: View
    target: str
    kind: str
    sent: int
    done: int
    low: int
    high: int
    status: int
    body: bytes  # a digest
    cache_status: str
    login_id: bytes | None = None  # <loginId> of a User answer

    @property
    def hit(self) -> bool:
        return self.cache_status.startswith("webproxy; hit")


@dataclass(slots=True)
class Event:
    """A write, change or clear, as the log keeps it."""

    index: int
    what: str
    target: str
    sent: int
    done: int
    status: int
    version: int  # the version it made (writes, changes) or the one current (clears)


@dataclass
class Facts:
    """What the oracle knows: bodies by view and version, statuses by credential epoch."""

    history: dict[View, dict[bytes, list[int]]] = field(default_factory=dict)
    """Per view, each body (digest) it had and the versions it had it at, in order."""
    latest: dict[View, bytes] = field(default_factory=dict)
    texts: dict[bytes, bytes] = field(default_factory=dict)  # digest -> body, for reports
    owners: dict[bytes, set[View]] = field(default_factory=dict)  # digest -> views that had it
    statuses: dict[tuple[Credential, int, View], int] = field(default_factory=dict)
    changes: dict[Credential, list[tuple[int, int]]] = field(default_factory=dict)
    """Per changing credential: (version, tick) of each change to its facts, in order."""

    def keep_body(self, view: View, version: int, body: bytes) -> None:
        key = digest(body)
        self.history.setdefault(view, {}).setdefault(key, []).append(version)
        self.latest[view] = key
        self.texts.setdefault(key, body)
        self.owners.setdefault(key, set()).add(view)

    def carry(self, view: View, version: int) -> None:
        """`view` is at `version` what it was at the one before."""
        self.history[view][self.latest[view]].append(version)

    def had(self, view: View, body: bytes, low: int, high: int) -> bool:
        """Whether `view` had `body` at some version from `low` to `high`."""
        versions = self.history.get(view, {}).get(body, [])
        at = bisect.bisect_left(versions, low)
        return at < len(versions) and versions[at] <= high

    def epoch(self, credential: Credential, version: int) -> int:
        """How many changes of `credential`'s facts had happened at `version`."""
        changes = self.changes.get(credential, [])
        return bisect.bisect_right(changes, (version, FOREVER))

    def status(self, credential: Credential, epoch: int, view: View) -> int:
        return self.statuses[credential, epoch, view]


@dataclass
class Judge:
    """Verdicts on a finished run's log."""

    facts: Facts
    reads: list[Answered]
    clears: list[Event]  # full and partial clears that were answered 200
    strict: bool = False
    """Count a sign-in or clear as learnt even while answers from before the change are
    still to come (the proxy should then ignore them; the default tolerates it)."""
    learnt: dict[Credential, list[tuple[int, int]]] = field(default_factory=dict)
    """Per changing credential: (epoch, tick from which the proxy can believe no older)."""

    def __post_init__(self) -> None:
        mine: dict[Credential, list[Answered]] = {}
        for read in self.reads:
            mine.setdefault(read.credential, []).append(read)
        for credential, changes in self.facts.changes.items():
            reads = mine.get(credential, [])
            self.learnt[credential] = [
                (epoch, self.learnt_at(credential, reads, tick))
                for epoch, (_, tick) in enumerate(changes, start=1)
            ]

    def learnt_at(self, credential: Credential, mine: list[Answered], changed: int) -> int:
        """When the proxy can no longer hold `credential`'s facts from before `changed`."""
        before = max((r.done for r in mine if r.sent < changed), default=0)
        clean = changed if self.strict else max(before, changed)
        refused = (r.done for r in mine if r.sent > changed and r.status == 401)
        own = f"/User/{credential.login_id}"
        signed_in = (
            r.done
            for r in mine
            if credential.binds
            and r.sent > clean
            and r.kind == "sign-in"
            and r.status == 200
            and r.view.path.endswith(own)
        )
        cleared = (c.done for c in self.clears if c.target == "" and c.sent > clean)
        return min((*refused, *signed_in, *cleared), default=FOREVER)

    def believed(self, read: Answered) -> tuple[set[int], set[int]]:
        """(epochs Finesse was in while the read ran, epochs the proxy may still believe)."""
        credential, facts = read.credential, self.facts
        first, last = facts.epoch(credential, read.low), facts.epoch(credential, read.high)
        known = [e for e, at in self.learnt.get(credential, ()) if at <= read.sent]
        oldest = min(max(known, default=0), first)
        return set(range(first, last + 1)), set(range(oldest, last + 1))

    def verdict(self, read: Answered) -> Verdict:
        now, believed = self.believed(read)
        statuses = {self.facts.status(read.credential, e, read.view) for e in now}
        if read.status != 200:
            return Verdict.OK if read.status in statuses else Verdict.STATUS
        if read.view.is_user:
            own = read.login_id == read.view.path.rsplit("/", 1)[1].encode()
            return Verdict.OK if 200 in statuses and own else Verdict.FOREIGN
        allowed = {self.facts.status(read.credential, e, read.view) for e in believed}
        if 200 not in allowed:
            return Verdict.FOREIGN
        if self.facts.had(read.view, read.body, read.low, read.high):
            return Verdict.OK if 200 in statuses else Verdict.LAG
        if self.facts.had(read.view, read.body, 0, read.low - 1):
            return Verdict.STALE
        if read.body in self.facts.owners:
            return Verdict.FOREIGN
        return Verdict.UNKNOWN

    def verdicts(self) -> list[tuple[Answered, Verdict]]:
        return [(read, self.verdict(read)) for read in self.reads]
