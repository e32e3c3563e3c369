"""What Finesse has said about each credential, remembered as keyed hashes in process memory.

A credential (the whole `Authorization` value) is never stored: only a BLAKE2b digest
keyed with a secret drawn at start-up, so neither a heap dump nor a log can give it back.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from typing import Final

from cachetools import TTLCache

from webproxy.cache.access import Grants, Identity
from webproxy.cache.rules import Scope

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
    ) -> None:
        self._key = secrets.token_bytes(32)
        self._ttl = ttl
        self._timer = timer
        self._identities: TTLCache[bytes, Identity] = TTLCache(maxsize, ttl, timer=timer)
        # digest -> {scope: expiry}; one row per credential, so forgetting it is O(1)
        self._approvals: TTLCache[bytes, dict[Scope, float]] = TTLCache(maxsize, ttl, timer=timer)

    def digest(self, authorization: str) -> bytes:
        return hashlib.blake2b(
            authorization.encode("utf-8", "surrogateescape"), key=self._key, digest_size=16
        ).digest()

    def grants(self, authorization: str | None, scope: Scope) -> Grants | None:
        """The live facts about this credential that bear on `scope`, or None."""
        if not authorization:
            return None
        digest = self.digest(authorization)
        identity = self._identities.get(digest)
        approvals = self._approvals.get(digest)
        approved = approvals is not None and approvals.get(scope, 0.0) > self._timer()
        if identity is None and not approved:
            return None
        return Grants(identity, frozenset((scope,)) if approved else NO_APPROVALS)

    def bind(self, authorization: str, identity: Identity) -> None:
        self._identities[self.digest(authorization)] = identity

    def approve(self, authorization: str, scope: Scope) -> None:
        digest = self.digest(authorization)
        approvals = self._approvals.get(digest) or {}
        approvals[scope] = self._timer() + self._ttl
        self._approvals[digest] = approvals

    def forget(self, authorization: str) -> None:
        """Finesse refused this credential: drop its identity and every approval at once."""
        digest = self.digest(authorization)
        self._identities.pop(digest, None)
        self._approvals.pop(digest, None)

    def __len__(self) -> int:
        return len(self._identities)
