"""Serving Finesse's HTTP caches (desktop, shindig, authmode): look up, revalidate, fill.

Reads top to bottom as `cached.py` does: the key, the store, then one function per
outcome; the decisions are `webproxy.cache.http`'s. Every fill is a request with no
credential (what `http.fill_fields` keeps, the `Accept-Encoding` of the key, and an
expired entry's validators), so what is stored is what Finesse gives anyone and may be
served to anyone.
A caller that holds a credential (`Authorization`, `Cookie`) and whose anonymous answer
could not be shared has its own request forwarded as it sent it (`Pass`), as does
anything the cache does not cover with certainty.

Concurrent misses of one key in one process share one fill (`Flights`); across workers
and replicas each process fills its own (the REST cache alone claims fills fleet-wide).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, assert_never

from aiohttp import web
from cachetools import TTLCache
from multidict import CIMultiDict

from webproxy.answers import answer_fetched, upstream_failure
from webproxy.appkeys import (
    Services,
    services_of,
    upstream_seconds_key,
)
from webproxy.cache.entry import CachedResponse
from webproxy.cache.http import (
    WITHDRAWN,
    decide_http_storage,
    fill_fields,
    holds_credential,
    http_key,
    may_serve_stale,
    normal_encoding,
    not_modified,
    not_modified_headers,
    passes,
    refreshed_headers,
    validators,
    wants_refresh,
)
from webproxy.cache.keys import select_headers, vary_matches
from webproxy.cache.policy import (
    Freshness,
    Lookup,
    age,
    cache_status,
    freshness,
    hit_status,
    keep_time,
    remaining_ttl,
)
from webproxy.cache.rules import HTTP_RESOURCES, CacheName, Scope
from webproxy.cached import answer_hit, note_lookup, put_entry
from webproxy.errors import StoreUnavailable, UpstreamError
from webproxy.forward import Fetched, Oversized, fetch, upstream_headers
from webproxy.logs import throttled
from webproxy.settings import HttpCacheSettings, Settings

log = logging.getLogger("webproxy.store")

SCOPES: Final = {cache: Scope(resource) for cache, resource in HTTP_RESOURCES.items()}
#: Response fields an entry does not keep: recomputed on every answer.
NOT_STORED: Final = frozenset({"content-length", "age", "cache-status"})


@dataclass(frozen=True, slots=True)
class Pass:
    """Forward the request as the client sent it, with this `Cache-Status`."""

    cache_status: str


@dataclass(frozen=True, slots=True)
class Filled:
    """One anonymous fetch and what became of it."""

    fetched: Fetched | None  # None: over cache.max_entry_bytes (closed), or unusable
    entry: CachedResponse | None  # the shareable answer (stored, or storable), else None
    stored: bool
    revalidated: bool  # a 304 refreshed an expired entry
    seconds: float
    collapsed: bool = False  # another request's fill, joined


PASS_MEMORY_SECONDS: Final = 60.0
PASS_MEMORY_KEYS: Final = 4096


class Passes:
    """Keys whose last fill could not be shared with the caller who asked (too large, or
    an answer for a credential), remembered a minute per process, so later callers are
    forwarded at once instead of costing Finesse a fill and then their own request (what
    Varnish calls hit-for-pass). A remembered key only ever means "forward": never a
    wrong answer, at worst a minute of misses after Finesse begins to share it."""

    def __init__(self) -> None:
        self._keys: TTLCache[str, str] = TTLCache(PASS_MEMORY_KEYS, PASS_MEMORY_SECONDS)

    def remember(self, key: str, detail: str) -> None:
        self._keys[key] = detail

    def get(self, key: str) -> str | None:
        return self._keys.get(key)


def http_settings(settings: Settings, cache: CacheName) -> HttpCacheSettings:
    """`[cache.<name>]` of one HTTP cache."""
    match cache:
        case CacheName.DESKTOP:
            return settings.cache.desktop
        case CacheName.SHINDIG:
            return settings.cache.shindig
        case CacheName.AUTHMODE:
            return settings.cache.authmode
        case CacheName.REST:
            raise ValueError("the REST cache has no [cache.rest] table")
        case _:
            assert_never(cache)


async def serve_http_cached(
    request: web.Request, cache: CacheName, path: str, query: str
) -> web.StreamResponse | Pass:
    """`path` as Finesse reads it; `query` as the client sent it."""
    services = services_of(request)
    settings = services.settings
    scope = SCOPES[cache]
    encoding = normal_encoding(request.headers.get("Accept-Encoding"))
    key = http_key(cache, path, query, encoding, request.headers)
    if key is None or len(key) > settings.cache.max_key_bytes:
        return _pass(request, scope, Lookup.UNCACHEABLE, "key-too-long" if key else None)
    if passes(cache, request.raw_path.partition("?")[0], query, request.headers):
        return _pass(request, scope, Lookup.UNCACHEABLE, "not-shared")
    remembered = services.passes.get(key)
    if remembered is not None:
        return _pass(request, scope, Lookup.UNCACHEABLE, remembered)
    store = services.stores[cache]
    try:
        found = await store.get(key, scope.counters)
    except StoreUnavailable as exc:
        services.metrics.store_errors.labels("get").inc()
        throttled.warning(log, "store unavailable, forwarding uncached: %s", exc)
        return _pass(request, scope, Lookup.UNCACHEABLE, "store-unavailable")
    entry = found.value
    if entry is not None and not vary_matches(entry.vary, request.headers):
        entry = None
    refresh = wants_refresh(cache, query)
    now = services.clock()
    if entry is not None and not refresh and freshness(entry, now, 0.0) is Freshness.FRESH:
        note_lookup(request, scope, Lookup.HIT)
        return answer_entry(request, entry, now, hit_status(remaining_ttl(entry, now)))
    headers = upstream_headers(request, keep=fill_fields(cache))
    if encoding:
        headers["Accept-Encoding"] = encoding
    fill = Fill(
        services=services,
        cache=cache,
        scope=scope,
        key=key,
        generation=found.generation,
        target=request.raw_path,
        headers=headers,
        expired=None if refresh else entry,
    )
    lookup = Lookup.BYPASS if refresh else Lookup.MISS
    try:
        filled = await _fill(request, fill, shared=not refresh)
    except UpstreamError as exc:
        return await _failed(request, fill, exc, None)
    request[upstream_seconds_key] = filled.seconds
    fetched = filled.fetched
    if fetched is not None and fetched.status >= 500:
        return await _failed(request, fill, None, fetched)
    if filled.entry is not None and vary_matches(filled.entry.vary, request.headers):
        lookup = Lookup.REVALIDATED if filled.revalidated else lookup
        note_lookup(request, scope, lookup)
        value = cache_status(
            lookup,
            fwd_status=304 if filled.revalidated else filled.entry.status,
            stored=filled.stored and not filled.collapsed,
            ttl=remaining_ttl(filled.entry, now) if filled.revalidated else None,
            detail="collapsed" if filled.collapsed else None,
        )
        return answer_entry(request, filled.entry, services.clock(), value)
    if filled.entry is not None:  # it varies on a field this caller sends and the fill didn't
        return _pass(request, scope, lookup, "not-shared")
    if fetched is None:
        if not filled.revalidated:
            services.passes.remember(key, "too-large")
        return _pass(request, scope, lookup, "not-shared" if filled.revalidated else "too-large")
    if holds_credential(request.headers):
        services.passes.remember(key, "not-shared")
        return _pass(request, scope, lookup, "not-shared")
    note_lookup(request, scope, lookup)
    return answer_fetched(fetched, cache_status(lookup, fwd_status=fetched.status))


async def _fill(request: web.Request, fill: Fill, *, shared: bool) -> Filled:
    """A refresh fills alone; a miss joins the fill in flight for its key and generation,
    and fills alone when that one's answer was not shareable (another caller's)."""
    services = services_of(request)
    shares = services.shares
    if shared:
        flights = services.http_flights
        flight = (fill.key, fill.generation)
        patience = services.settings.cache.coalesce_timeout
        joined = await flights.join(flight, patience=patience)
        if joined is not None and joined.entry is not None:
            if vary_matches(joined.entry.vary, request.headers):
                services.metrics.coalesced.inc()
                return dataclasses.replace(joined, seconds=0.0, collapsed=True)
        elif joined is None:
            remote = request.remote

            async def lead() -> Filled:
                async with shares.hold(remote):
                    return await fill()

            return await flights.lead(flight, lead)
    async with shares.hold(request.remote):
        return await fill()


def _pass(request: web.Request, scope: Scope, lookup: Lookup, detail: str | None) -> Pass:
    note_lookup(request, scope, lookup)
    return Pass(cache_status(lookup, detail=detail))


def answer_entry(
    request: web.Request, entry: CachedResponse, now: float, status: str
) -> web.Response:
    """The entry as the REST cache answers it (`answer_hit`: a large body paced), or a 304
    when the request's validators match it; `Age` on both, and `status` as Cache-Status."""
    if not_modified(request.headers, entry.headers):
        response = web.Response(status=304, headers=not_modified_headers(entry.headers))
        response.headers["Age"] = str(age(entry, now))
    else:
        response = answer_hit(entry, now)
    response.headers["Cache-Status"] = status
    return response


async def _failed(
    request: web.Request, fill: Fill, exc: UpstreamError | None, fetched: Fetched | None
) -> web.StreamResponse:
    """Finesse failed (no answer, or a 5xx): an expired entry within `cache.stale_if_error`,
    as the store holds it now, if its answer allows; else the failure, not stored."""
    services = services_of(request)
    entry = fill.expired
    window = services.settings.cache.stale_if_error
    now = services.clock()
    fwd_status = fetched.status if fetched is not None else None
    if entry is not None and may_serve_stale(entry.headers):
        try:
            found = await services.stores[fill.cache].get(fill.key, fill.scope.counters)
        except StoreUnavailable:
            found = None
        again = found.value if found is not None else None
        if again is not None and freshness(again, now, window) is Freshness.STALE_USABLE:
            note_lookup(request, fill.scope, Lookup.STALE)
            value = cache_status(Lookup.STALE, fwd_status=fwd_status, ttl=remaining_ttl(again, now))
            return answer_entry(request, again, now, value)
    note_lookup(request, fill.scope, Lookup.MISS)
    if fetched is not None:
        return answer_fetched(fetched, cache_status(Lookup.MISS, fwd_status=fetched.status))
    assert exc is not None
    response = upstream_failure(request, exc)
    response.headers["Cache-Status"] = cache_status(Lookup.MISS, detail=exc.kind)
    return response


@dataclass(frozen=True, slots=True)
class Fill:
    """One anonymous upstream fetch for an HTTP cache: revalidate or fetch, then store.

    Takes plain values, not the request: a flight may outlive the client that led it."""

    services: Services
    cache: CacheName
    scope: Scope
    key: str
    generation: tuple[int, ...]
    target: str
    headers: CIMultiDict[str] = field(repr=False)
    expired: CachedResponse | None  # revalidated with its validators, when it has any

    async def __call__(self) -> Filled:
        services = self.services
        settings = services.settings
        headers = CIMultiDict(self.headers)
        if self.expired is not None:
            headers.extend(validators(self.expired.headers))
        route = "api" if self.cache is CacheName.AUTHMODE else "other"
        with services.metrics.upstream_call(route) as call:
            fetched = await fetch(
                services.upstream,
                self.target,
                headers,
                limit=settings.cache.max_entry_bytes,
            )
        seconds = call.seconds
        if isinstance(fetched, Oversized):
            fetched.close()
            return Filled(None, None, False, False, seconds)
        if fetched.status == 304 and self.expired is not None:
            return await self._revalidated(fetched, seconds)
        return await self._store(fetched, seconds)

    async def _revalidated(self, fetched: Fetched, seconds: float) -> Filled:
        """A 304: the entry with its headers updated, fresh again, stored again; or, when
        the 304 took back what made it shareable, withdrawn (`http.WITHDRAWN`)."""
        assert self.expired is not None
        now = self.services.clock()
        updated = refreshed_headers(self.expired.headers, fetched.headers.items())
        decision = decide_http_storage(200, updated, default_ttl=self._ttl, now=now)
        if not decision.store:
            withdrawn = dataclasses.replace(
                self.expired, headers=WITHDRAWN, body=b"", stored_at=now, ttl=0.0, vary=()
            )
            await self._put(withdrawn)
            return Filled(None, None, False, True, seconds)
        entry = dataclasses.replace(
            self.expired, headers=_kept(updated), stored_at=now - decision.age, ttl=decision.ttl
        )
        return Filled(fetched, entry, await self._put(entry), True, seconds)

    async def _store(self, fetched: Fetched, seconds: float) -> Filled:
        now = self.services.clock()
        decision = decide_http_storage(
            fetched.status, fetched.headers.items(), default_ttl=self._ttl, now=now
        )
        if not decision.store:
            return Filled(fetched, None, False, False, seconds)
        headers = _kept(fetched.headers.items())
        entry = CachedResponse(
            status=fetched.status,
            headers=headers,
            body=fetched.body,
            stored_at=now - decision.age,
            ttl=decision.ttl,
            scope=self.scope,
            vary=select_headers(self.headers, decision.vary),  # the values the fill sent
        )
        return Filled(fetched, entry, await self._put(entry), False, seconds)

    @property
    def _ttl(self) -> float:
        return http_settings(self.services.settings, self.cache).ttl

    async def _put(self, entry: CachedResponse) -> bool:
        """Kept for revalidation past its freshness: at least `ttl` of this cache, plus
        the stale-if-error window."""
        window = self.services.settings.cache.stale_if_error
        store = self.services.stores[self.cache]
        keep = keep_time(max(entry.ttl, self._ttl), window)
        return await put_entry(
            self.services, store, self.key, entry, keep=keep, generation=self.generation
        )


def _kept(headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((name, value) for name, value in headers if name.lower() not in NOT_STORED)
