"""Serving the cached resources: look up, decide who may have it, fetch once, store.

Reads top to bottom: build the key, ask the store, decide (`Lookup`), then one small
function per outcome. Only requests whose credential Finesse has accepted for the
entry's scope ever receive a stored body; everything else goes to Finesse.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Final, assert_never

from aiohttp import web
from multidict import CIMultiDict

from webproxy.answers import answer_fetched, paced, upstream_failure
from webproxy.appkeys import (
    Services,
    cache_result_key,
    services_of,
    upstream_seconds_key,
)
from webproxy.cache.entry import CachedResponse
from webproxy.cache.keys import build_key, select_headers, vary_matches, wants_bypass
from webproxy.cache.policy import (
    Decision,
    Freshness,
    Lookup,
    age,
    cache_status,
    decide_lookup,
    decide_storage,
    freshness,
    hit_status,
    keep_time,
    remaining_ttl,
)
from webproxy.cache.rules import Scope
from webproxy.errors import StoreUnavailable, UpstreamError
from webproxy.forward import Fetched, Oversized, fetch, relay, upstream_headers
from webproxy.logs import throttled
from webproxy.stores.base import CacheStore

log = logging.getLogger("webproxy.store")

#: What a request that may be stored for others sends upstream: its key and its credential.
FORWARDED_FOR_CACHING: Final = frozenset({"authorization", "accept", "range"})
#: Response fields a stored entry does not keep: recomputed on every answer.
NOT_STORED: Final = ("content-length", "age", "cache-status")


@dataclass(frozen=True, slots=True)
class Outcome:
    """One upstream fetch for a cached resource and what the cache made of it."""

    fetched: Fetched | Oversized  # Oversized: over cache.max_entry_bytes, never shared
    shareable: bool  # others who may receive this scope may be given this answer
    stored: bool
    upstream_seconds: float
    collapsed: bool = False  # another process's fetch filled it (see `webproxy.fills`)


async def serve_cached(
    request: web.Request, scope: Scope, path: str, query: str
) -> web.StreamResponse:
    """`path` as Finesse reads it; `query` exactly as the client sent it (never decoded:
    two queries Finesse reads apart never share a key)."""
    services = services_of(request)
    key = build_key(path, query, request.headers)
    if len(key) > services.settings.cache.max_key_bytes:
        return await _fetch_alone(request, scope, key, None, Lookup.UNCACHEABLE, False)
    bypass = wants_bypass(query)
    try:
        found = await services.store.get(key, scope.counters)
    except StoreUnavailable as exc:
        services.metrics.store_errors.labels("get").inc()
        throttled.warning(log, "store unavailable, forwarding uncached: %s", exc)
        return await _fetch_alone(request, scope, key, None, Lookup.UNCACHEABLE, False)
    entry, now = found.value, services.clock()
    decision = decide_lookup(
        entry,
        allowed=_allowed(request, scope),  # after the read: a 401 meanwhile is seen
        bypass=bypass,
        vary_ok=entry is None or vary_matches(entry.vary, request.headers),
        now=now,
        stale_if_error=_window(request),
    )
    match decision:
        case Decision.HIT:
            assert entry is not None
            note_lookup(request, scope, Lookup.HIT)
            return answer_hit(entry, now)
        case Decision.MISS | Decision.MISS_STALE_OK:
            stale_ok = decision is Decision.MISS_STALE_OK
            return await _fetch_shared(request, scope, key, found.generation, stale_ok)
        case Decision.BYPASS:
            return await _fetch_alone(request, scope, key, found.generation, Lookup.BYPASS, False)
        case Decision.UNAUTHORIZED:
            lookup = Lookup.UNAUTHORIZED
            return await _fetch_alone(request, scope, key, found.generation, lookup, False)
        case _:
            assert_never(decision)


def note_lookup(request: web.Request, scope: Scope, lookup: Lookup) -> None:
    """Count the lookup, and tell the access log what the cache did."""
    services_of(request).metrics.count_lookup(scope.label, lookup)
    request[cache_result_key] = lookup


def answer_hit(entry: CachedResponse, now: float) -> web.Response:
    """The stored answer as it came, with `Age` and `Cache-Status` (the hot path)."""
    response = web.Response(status=entry.status, body=paced(entry.body), headers=entry.headers)
    response.headers["Age"] = str(age(entry, now))
    response.headers["Cache-Status"] = hit_status(remaining_ttl(entry, now))
    return response


async def _fetch_shared(
    request: web.Request, scope: Scope, key: str, generation: tuple[int, ...], stale_ok: bool
) -> web.StreamResponse:
    """A miss: join the flight for this key and generation, or lead one."""
    services = services_of(request)
    flights = services.flights
    flight = (key, generation)
    shared = await flights.join(flight, patience=services.settings.cache.coalesce_timeout)
    if (
        shared is not None
        and shared.shareable
        and isinstance(shared.fetched, Fetched)
        and _allowed(request, scope)
    ):
        services.metrics.coalesced.inc()
        note_lookup(request, scope, Lookup.MISS)
        status = cache_status(Lookup.MISS, fwd_status=shared.fetched.status, detail="collapsed")
        return answer_fetched(shared.fetched, status)
    if shared is not None:  # the leader's answer was its own (401, 5xx, ...): ask for ours
        return await _fetch_alone(request, scope, key, generation, Lookup.MISS, stale_ok)
    fetcher = _fetcher(request, scope, key, generation, keep_open=False)
    try:
        outcome = await flights.lead(flight, fetcher)
    except UpstreamError as exc:
        return await _failed(request, scope, key, exc, stale_ok)
    if isinstance(outcome.fetched, Oversized):  # closed in the flight: ask again, streamed
        return await _fetch_alone(request, scope, key, None, Lookup.MISS, stale_ok)
    return await _answer_outcome(request, scope, key, Lookup.MISS, outcome, stale_ok)


async def _fetch_alone(
    request: web.Request,
    scope: Scope,
    key: str,
    generation: tuple[int, ...] | None,
    lookup: Lookup,
    stale_ok: bool,
) -> web.StreamResponse:
    """A fetch of this request's own: bypass, unauthorized, store down, or a lone miss.

    Streams an answer over `cache.max_entry_bytes` as it arrives (not stored).
    """
    async with services_of(request).shares.hold(request.remote):
        try:
            outcome = await _fetcher(request, scope, key, generation, keep_open=True)()
        except UpstreamError as exc:
            return await _failed(request, scope, key, exc, stale_ok)
        if isinstance(outcome.fetched, Oversized):
            note_lookup(request, scope, lookup)
            request[upstream_seconds_key] = outcome.upstream_seconds
            response = outcome.fetched.response
            value = cache_status(lookup, fwd_status=response.status, detail="too-large")
            return await relay(request, response, prefix=outcome.fetched.prefix, cache_status=value)
        return await _answer_outcome(request, scope, key, lookup, outcome, stale_ok)


async def _answer_outcome(
    request: web.Request,
    scope: Scope,
    key: str,
    lookup: Lookup,
    outcome: Outcome,
    stale_ok: bool,
) -> web.StreamResponse:
    fetched = outcome.fetched
    assert isinstance(fetched, Fetched)  # an Oversized outcome is relayed by its fetcher
    status = fetched.status
    if status >= 500 and stale_ok:
        stale = await _stale_answer(request, scope, key, fwd_status=status)
        if stale is not None:
            return stale
    note_lookup(request, scope, lookup)
    request[upstream_seconds_key] = outcome.upstream_seconds
    detail = "key-too-long" if lookup is Lookup.UNCACHEABLE and key_too_long(request, key) else None
    if outcome.collapsed:
        services_of(request).metrics.coalesced.inc()
        detail = "collapsed"
    value = cache_status(lookup, stored=outcome.stored, fwd_status=status, detail=detail)
    return answer_fetched(fetched, value)


def key_too_long(request: web.Request, key: str) -> bool:
    return len(key) > services_of(request).settings.cache.max_key_bytes


async def _failed(
    request: web.Request, scope: Scope, key: str, exc: UpstreamError, stale_ok: bool
) -> web.StreamResponse:
    if stale_ok:
        stale = await _stale_answer(request, scope, key, fwd_status=None)
        if stale is not None:
            return stale
    note_lookup(request, scope, Lookup.MISS)
    response = upstream_failure(request, exc)
    response.headers["Cache-Status"] = cache_status(Lookup.MISS, detail=exc.kind)
    return response


async def _stale_answer(
    request: web.Request, scope: Scope, key: str, *, fwd_status: int | None
) -> web.Response | None:
    """Stale-if-error: the entry as the store holds it now (a purge during the fetch hid
    it: never served), if still within the window and the caller still may have it."""
    services = services_of(request)
    try:
        found = await services.store.get(key, scope.counters)
    except StoreUnavailable:
        return None
    entry, now = found.value, services.clock()
    if entry is None or not _allowed(request, scope):
        return None
    match freshness(entry, now, _window(request)):
        case Freshness.FRESH:  # refreshed meanwhile by another request
            note_lookup(request, scope, Lookup.HIT)
            return answer_hit(entry, now)
        case Freshness.STALE_USABLE:
            note_lookup(request, scope, Lookup.STALE)
            response = answer_hit(entry, now)
            response.headers["Cache-Status"] = cache_status(
                Lookup.STALE, fwd_status=fwd_status, ttl=remaining_ttl(entry, now)
            )
            return response
        case Freshness.EXPIRED:
            return None


def _allowed(request: web.Request, scope: Scope) -> bool:
    """May this request's credential receive `scope`, by what Finesse has said so far?"""
    authorization = request.headers.get("Authorization")
    return services_of(request).identities.allows(authorization, scope)


def _window(request: web.Request) -> float:
    return services_of(request).settings.cache.stale_if_error


def _fetcher(
    request: web.Request,
    scope: Scope,
    key: str,
    generation: tuple[int, ...] | None,
    *,
    keep_open: bool,
) -> Fetcher:
    """Everything a fetch needs, taken from the request now: the flight may outlive it."""
    return Fetcher(
        keep_open=keep_open,
        remote=request.remote,
        services=services_of(request),
        scope=scope,
        key=key,
        generation=generation,
        target=request.raw_path,
        headers=upstream_headers(request, keep=FORWARDED_FOR_CACHING),
        authorization=request.headers.get("Authorization"),
        vary_source=CIMultiDict(request.headers),
    )


@dataclass(frozen=True, slots=True)
class Fetcher:
    """One upstream fetch of a cached resource: learn from the answer, store it if allowed."""

    keep_open: bool  # an Oversized answer: True, returned open; False (a flight), closed
    remote: str | None  # whose share of the upstream pool a flight takes (see `Shares`)
    services: Services
    scope: Scope
    key: str
    generation: tuple[int, ...] | None  # None: the store is down, store nothing
    target: str
    headers: CIMultiDict[str] = field(repr=False)  # credentials: never in a repr
    authorization: str | None = field(repr=False)
    vary_source: CIMultiDict[str] = field(repr=False)

    async def __call__(self) -> Outcome:
        """Fetch, learn, store. A flight (`keep_open` False) first claims the key across
        the fleet (`webproxy.fills`) and takes its leader's share of the pool itself, once
        it is registered, so misses that queue for a share still join it; a lone fetch
        runs within its caller's share, relay included."""
        if self.keep_open:
            return await self._fetch()
        return await self._claimed()

    async def _claimed(self) -> Outcome:
        services = self.services
        store, fills = services.store, services.fills
        settings = services.settings
        claimed: str | None = None  # our claim's token, to give back
        try:
            if self.generation is not None:  # None: the store is down, it fetches alone
                hold = settings.upstream.connect_timeout + settings.upstream.read_timeout + 1.0
                with contextlib.suppress(StoreUnavailable), fills.watching(self.key) as watch:
                    claimed = await store.claim(self.key, hold)
                    if claimed is None:  # another process is fetching it: wait for it
                        await watch.wait(settings.cache.coalesce_timeout)
                    # Read it again even when ours: a filler may have stored it and given
                    # its claim back between our lookup's miss and our claim.
                    collapsed = await self._filled_by_another()
                    if collapsed is not None:
                        return collapsed
            async with services.shares.hold(self.remote):
                return await self._fetch()
        finally:
            if claimed is not None:
                with contextlib.suppress(StoreUnavailable):
                    await store.release(self.key, claimed)
                fills.filled(self.key)

    async def _filled_by_another(self) -> Outcome | None:
        """What another process stored for this key, if usable by this flight: valid for
        the current generations, fresh, and of the same Vary values."""
        try:
            found = await self.services.store.get(self.key, self.scope.counters)
        except StoreUnavailable:
            return None
        entry = found.value
        now = self.services.clock()
        if entry is None or freshness(entry, now, 0.0) is not Freshness.FRESH:
            return None
        if not vary_matches(entry.vary, self.vary_source):
            return None
        fetched = Fetched(entry.status, "", CIMultiDict(entry.headers), entry.body)
        return Outcome(fetched, shareable=True, stored=False, upstream_seconds=0.0, collapsed=True)

    async def _fetch(self) -> Outcome:
        services = self.services
        asked_at = services.identities.now()
        limit = services.settings.cache.max_entry_bytes
        with services.metrics.upstream_call("api") as call:
            fetched = await fetch(services.upstream, self.target, self.headers, limit=limit)
        seconds = call.seconds
        if isinstance(fetched, Oversized):
            self._learn(fetched.response.status, asked_at)
            if not self.keep_open:
                fetched.close()
            return Outcome(fetched, shareable=False, stored=False, upstream_seconds=seconds)
        self._learn(fetched.status, asked_at)
        return await self._store(fetched, seconds)

    def _learn(self, status: int, asked_at: float) -> None:
        self.services.identities.learn(
            self.authorization, status, scope=self.scope, asked_at=asked_at
        )

    async def _store(self, fetched: Fetched, seconds: float) -> Outcome:
        settings = self.services.settings.cache
        decision = decide_storage(
            "GET",
            fetched.status,
            fetched.headers,
            ttl=settings.ttl[self.scope.resource],
            override_upstream=self.scope.resource in settings.override_upstream,
            request_range=self.vary_source.get("Range"),
        )
        if not decision.store or self.generation is None:
            return Outcome(fetched, decision.store, stored=False, upstream_seconds=seconds)
        entry = CachedResponse(
            status=fetched.status,
            headers=tuple(
                (k, v) for k, v in fetched.headers.items() if k.lower() not in NOT_STORED
            ),
            body=fetched.body,
            stored_at=self.services.clock(),
            ttl=decision.ttl,
            scope=self.scope,
            vary=select_headers(self.vary_source, decision.vary),
        )
        keep = keep_time(decision.ttl, settings.stale_if_error)
        stored = await put_entry(
            self.services,
            self.services.store,
            self.key,
            entry,
            keep=keep,
            generation=self.generation,
        )
        return Outcome(fetched, shareable=True, stored=stored, upstream_seconds=seconds)


async def put_entry(
    services: Services,
    store: CacheStore[CachedResponse],
    key: str,
    entry: CachedResponse,
    *,
    keep: float,
    generation: tuple[int, ...],
) -> bool:
    """Store `entry` under its scope, valid for the generation read at lookup; False when
    the store refused it (a purge came between) or did not answer (counted, logged)."""
    try:
        return await store.put(
            key,
            entry,
            keep=keep,
            label=entry.scope.label,
            counters=entry.scope.counters,
            generation=generation,
        )
    except StoreUnavailable as exc:
        services.metrics.store_errors.labels("put").inc()
        throttled.warning(log, "store unavailable, answer not stored: %s", exc)
        return False
