"""What Finesse has said about each credential, remembered as keyed hashes in process memory.

A credential (the whole `Authorization` value) is never stored: only a BLAKE2b digest
keyed with a secret drawn at start-up, so neither a heap dump nor a log can give it back.
Entries live for the identity TTL; past `maxsize` credentials the oldest are dropped.
Plain dicts with expiry times rather than a TTL cache: this is read on every cache hit.

In a worker group (`webproxy.fleet`), the workers share the digest key and tell one
another what they forget, so a credential Finesse refused through one worker gets nothing
from any other; a worker that may have missed such news forgets everything it learned.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from typing import Final, TypeVar

from webproxy.cache.access import Grants, Identity, entitled
from webproxy.cache.rules import Scope
from webproxy.fleet import Event, EventKind, IdentityEvents

V = TypeVar("V")

MAX_CREDENTIALS: Final = 100_000
NO_APPROVALS: Final[frozenset[Scope]] = frozenset()


class IdentityBook:
    """Credential digest -> identity (from `GET User/{id}`) and approvals (2xx to a cached URL)."""

    def __init__(
        self,
        ttl: float,
        *,
        timer: Callable[[], float] = time.monotonic,
        maxsize: int = MAX_CREDENTIALS,
        key: bytes | None = None,
        events: IdentityEvents | None = None,
    ) -> None:
        self._keyed = hashlib.blake2b(
            key=key if key is not None else secrets.token_bytes(32), digest_size=16
        )
        self._events = events
        self._seen = events.head if events is not None else 0
        #: Tells the other replicas (Redis pub/sub, `stores.redis_events`); set by the app.
        self.broadcast: Callable[[Event], None] | None = None
        self._ttl = ttl
        self._timer = timer
        self._maxsize = maxsize
        self._identities: dict[bytes, tuple[Identity, float]] = {}  # digest -> (who, expiry)
        self._approvals: dict[bytes, dict[Scope, float]] = {}  # digest -> {scope: expiry}
        self._forgotten: dict[bytes, float] = {}  # digest -> when Finesse last refused it
        self._signed_in: dict[bytes, float] = {}  # digest -> when its newest binding was asked

    def digest(self, authorization: str) -> bytes:
        hashed = self._keyed.copy()  # the key's block hashed once, not per credential
        hashed.update(authorization.encode("utf-8", "surrogateescape"))
        return hashed.digest()

    def allows(self, authorization: str | None, scope: Scope) -> bool:
        """`may_receive(self.grants(authorization, scope), scope)`, without building the
        grants: the question every cache hit asks (`cached`, `fastlane`)."""
        if not authorization:
            return False
        identity, approved = self._facts(authorization, scope)
        return entitled(identity, approved, scope)

    def _facts(self, authorization: str, scope: Scope) -> tuple[Identity | None, bool]:
        """Who the credential is (None: not known now), and whether it is approved for
        `scope` now."""
        events = self._events
        if events is not None and events.head != self._seen:
            self.catch_up()
        digest = self.digest(authorization)
        now = self._timer()
        held = self._identities.get(digest)
        approvals = self._approvals.get(digest)
        return (
            held[0] if held is not None and held[1] > now else None,
            approvals is not None and approvals.get(scope, 0.0) > now,
        )

    def grants(self, authorization: str | None, scope: Scope) -> Grants | None:
        """The live facts about this credential that bear on `scope`, or None."""
        if not authorization:
            return None
        identity, approved = self._facts(authorization, scope)
        if identity is None and not approved:
            return None
        return Grants(identity, frozenset((scope,)) if approved else NO_APPROVALS)

    def now(self) -> float:
        """This book's clock: take it when a fetch starts, pass it to `bind`/`approve`."""
        return self._timer()

    def bind(self, authorization: str, identity: Identity, *, asked_at: float) -> None:
        """Finesse said who this credential is, to a request sent at `asked_at`.

        The newest sign-in wins: approvals this credential had for other teams' entries
        are dropped (an agent moved to another team is served the new team's from now on,
        and the old team's only after Finesse answers it for them again), and an answer
        to a request sent before it, landing later, teaches nothing: by order of asking,
        not of arrival.
        """
        self.catch_up()  # what other workers forgot came first: it must not undo this
        digest = self.digest(authorization)
        if self._refused_since(digest, asked_at) or self._asked_before_sign_in(digest, asked_at):
            return
        self._identities.pop(digest, None)  # re-inserted last: the newest is evicted last
        self._identities[digest] = (identity, self._timer() + self._ttl)
        self._signed_in[digest] = asked_at
        _bound(self._signed_in, self._maxsize)
        _bound(self._identities, self._maxsize)
        approvals = self._approvals.get(digest)
        if approvals:
            for scope in [s for s in approvals if s.team not in (None, identity.team_id)]:
                del approvals[scope]

    def learn(
        self,
        authorization: str | None,
        status: int,
        *,
        scope: Scope | None = None,
        asked_at: float = 0.0,
    ) -> None:
        """What Finesse's answer `status` to this credential teaches, the one place every
        upstream answer is read for it: a 401 forgets the credential; a 2xx to a cached
        resource's own URL (`scope`) approves it for that scope."""
        if not authorization:
            return
        if status == 401:
            self.forget(authorization)
        elif scope is not None and 200 <= status < 300:
            self.approve(authorization, scope, asked_at=asked_at)

    def approve(self, authorization: str, scope: Scope, *, asked_at: float) -> None:
        """Finesse answered this credential for `scope`, to a request sent at `asked_at`
        (not before its newest sign-in: that one says what it may have now)."""
        self.catch_up()
        digest = self.digest(authorization)
        if self._refused_since(digest, asked_at) or self._asked_before_sign_in(digest, asked_at):
            return
        approvals = self._approvals.pop(digest, None) or {}
        approvals[scope] = self._timer() + self._ttl
        self._approvals[digest] = approvals
        _bound(self._approvals, self._maxsize)

    def forget(self, authorization: str) -> None:
        """Finesse refused this credential: drop its identity and every approval at once
        (in every worker of a group); an answer to a request sent before now, landing
        later, teaches nothing."""
        digest = self.digest(authorization)
        self._forget_digest(digest)
        self._publish(EventKind.FORGET, digest)

    def _forget_digest(self, digest: bytes) -> None:
        self._identities.pop(digest, None)
        self._approvals.pop(digest, None)
        self._forgotten.pop(digest, None)
        self._forgotten[digest] = self._timer()
        _bound(self._forgotten, self._maxsize)

    def _asked_before_sign_in(self, digest: bytes, asked_at: float) -> bool:
        signed_in = self._signed_in.get(digest)
        return signed_in is not None and asked_at < signed_in

    def _refused_since(self, digest: bytes, asked_at: float) -> bool:
        refused = self._forgotten.get(digest)
        return refused is not None and refused >= asked_at

    def forget_team(self, team: str) -> None:
        """Drop the identities of `team`'s members (admin clears; O(n), rare), in every
        worker of a group."""
        self._forget_team(team)
        self._publish(EventKind.FORGET_TEAM, team.encode()[:16])

    def _forget_team(self, team: str) -> None:
        for digest in [d for d, (who, _) in self._identities.items() if who.team_id == team]:
            del self._identities[digest]

    def clear(self) -> None:
        """Forget everything (an admin clear), in every worker of a group."""
        self._clear()
        self._publish(EventKind.CLEAR)

    def _clear(self) -> None:
        self._identities.clear()
        self._approvals.clear()

    def _publish(self, kind: EventKind, payload: bytes = b"") -> None:
        """Tell the other workers and replicas; an event of our own right after what we saw
        in the workers' ring is seen."""
        if self._events is not None:
            sequence = self._events.publish(kind, payload)
            if sequence == self._seen + 1:
                self._seen = sequence
        if self.broadcast is not None:
            self.broadcast(Event(kind, payload))

    def receive(self, event: Event) -> None:
        """Another replica's event (or our own, back again: applying it twice is harmless)."""
        self.catch_up()
        self._apply(event)

    def drop_learned(self) -> None:
        """Events may have been missed: forget every identity and approval learned."""
        self._clear()

    def _apply(self, event: Event) -> None:
        match event.kind:
            case EventKind.FORGET:
                self._forget_digest(event.payload)
            case EventKind.FORGET_TEAM:
                self._forget_team(event.payload.rstrip(b"\0").decode(errors="replace"))
            case EventKind.CLEAR:
                self._clear()

    def catch_up(self) -> None:
        """Apply what other workers forgot; after a gap, forget all (it can't be known).
        One shared read when nothing happened."""
        events = self._events
        if events is None or events.head == self._seen:
            return
        self._seen, news = events.read(self._seen)
        if news is None:
            self._clear()
            return
        for event in news:
            self._apply(event)

    def __len__(self) -> int:
        """Credentials with a live identity (scrape time only: counts every entry)."""
        now = self._timer()
        return sum(1 for _, expiry in self._identities.values() if expiry > now)


def _bound(entries: dict[bytes, V], maxsize: int) -> None:
    """Drop the oldest entries (dicts keep insertion order) past `maxsize`."""
    while len(entries) > maxsize:
        del entries[next(iter(entries))]
