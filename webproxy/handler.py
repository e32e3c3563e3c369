"""The proxy route: WebSockets relayed, cached resources served, the rest forwarded.

Forwarding also teaches the cache: a sign-in read of the caller's own `User` binds the
credential to an identity, a 401 forgets it, and a write purges what it changed before
its answer reaches the client.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial

from aiohttp import web

from webproxy.answers import answer_fetched, incomplete, upstream_failure
from webproxy.appkeys import Services, services_of, upstream_seconds_key
from webproxy.cache.http import http_cache_for
from webproxy.cache.routing import read_path
from webproxy.cache.rules import (
    API_PREFIX,
    WRITE_METHODS,
    Purge,
    PurgeReason,
    match_cached,
    purges_for_write,
)
from webproxy.cache.users import USER_PATH, binds_identity, identity_of, parse_user
from webproxy.cached import FORWARDED_FOR_CACHING, serve_cached
from webproxy.errors import RequestIncomplete, StoreUnavailable, UpstreamError
from webproxy.forward import (
    BodyLimits,
    Oversized,
    RequestBody,
    fetch,
    long_lived,
    open_exchange,
    relay,
    upstream_headers,
)
from webproxy.http_cached import Pass, http_settings, serve_http_cached
from webproxy.logs import throttled
from webproxy.websocket import is_websocket_upgrade, relay_websocket

log = logging.getLogger("webproxy.upstream")


async def proxy(request: web.Request) -> web.StreamResponse:
    """Cached resources first (the hot path), then sign-in reads, upgrades, everything else."""
    settings = services_of(request).settings
    raw_path, _, query = request.raw_path.partition("?")
    if request.method == "GET" and settings.cache.enabled:
        path = read_path(raw_path)
        if path is not None:
            cached = match_cached(path, media_domain_path=settings.cache.media_domain_path)
            if cached is not None:
                return await serve_cached(request, cached[0], cached[1], query)
            user = USER_PATH.match(path)
            if user is not None and "Authorization" in request.headers:
                return await sign_in(request, user.group(1))
            cache = http_cache_for(path)
            if cache is not None and http_settings(settings, cache).enabled:
                served = await serve_http_cached(request, cache, path, query)
                if not isinstance(served, Pass):
                    return served
                return await forward(request, raw_path, cache_status=served.cache_status)
    if is_websocket_upgrade(request):
        async with services_of(request).long_shares.hold(request.remote):
            try:
                return await relay_websocket(request, services_of(request).upstream)
            except UpstreamError as exc:
                return upstream_failure(request, exc)
    return await forward(request, raw_path)


async def forward(
    request: web.Request, raw_path: str, *, cache_status: str | None = None
) -> web.StreamResponse:
    """Stream the exchange; forget a refused credential and purge after a write.

    A write purges once Finesse has answered it (anything but a 4xx), or when the whole
    request was sent and Finesse's answer never came: it may have been applied. A request
    whose body never arrived whole is answered by the proxy (413, 408) or not at all (the
    client went away): it reached Finesse incomplete or not at all, so nothing is purged
    and it is no upstream failure. Long polls and WebSockets have a pool of their own,
    and a share of it per client (`server.max_long_lived_per_client`).
    """
    services = services_of(request)
    if long_lived(raw_path):
        async with services.long_shares.hold(request.remote):
            with services.metrics.open_connections.labels("longpoll").track_inprogress():
                return await _exchange(request, raw_path, cache_status)
    async with services.shares.hold(request.remote):
        return await _exchange(request, raw_path, cache_status)


async def _exchange(
    request: web.Request, raw_path: str, cache_status: str | None = None
) -> web.StreamResponse:
    services = services_of(request)
    server = services.settings.server
    write = request.method in WRITE_METHODS
    arrived = partial(ready_for_write, request, raw_path) if write else None
    body = RequestBody(request, BodyLimits.of(server), arrived)
    try:
        with services.metrics.upstream_call(route_class(raw_path)) as call:
            response = await open_exchange(
                services.upstream, request, upstream_headers(request), body
            )
    except RequestIncomplete as exc:
        return await incomplete(request, exc)
    except UpstreamError as exc:
        if exc.sent:  # sent whole, no answer: it may yet apply
            await purge_after_write(request, raw_path, None)
        failure = upstream_failure(request, exc)
        if cache_status is not None:
            failure.headers["Cache-Status"] = cache_status
        return failure
    request[upstream_seconds_key] = call.seconds
    services.identities.learn(request.headers.get("Authorization"), response.status)
    await purge_after_write(request, raw_path, response.status)
    return await relay(request, response, cache_status=cache_status)


async def sign_in(request: web.Request, user_id: str) -> web.StreamResponse:
    """`GET User/{id}`: read whole (it is small) to learn who this credential belongs to.

    An answer over `cache.max_sign_in_bytes` is streamed through instead and binds nothing.

    Sent with its credential and nothing else that could authenticate it (no cookie): a
    200 must mean Finesse accepted this `Authorization`, not a session it also carried.
    """
    services = services_of(request)
    authorization = request.headers["Authorization"]
    asked_at = services.identities.now()
    limit = services.settings.cache.max_sign_in_bytes
    async with services.shares.hold(request.remote):
        headers = upstream_headers(request, keep=FORWARDED_FOR_CACHING)  # no cookie, say
        try:
            with services.metrics.upstream_call("api") as call:
                fetched = await fetch(services.upstream, request.raw_path, headers, limit=limit)
        except UpstreamError as exc:
            return upstream_failure(request, exc)
        request[upstream_seconds_key] = call.seconds
        if isinstance(fetched, Oversized):  # too large to read whole: passed on, binds nothing
            services.identities.learn(authorization, fetched.response.status)
            return await relay(request, fetched.response, prefix=fetched.prefix)
    services.identities.learn(authorization, fetched.status)
    if fetched.status == 200:
        user = parse_user(fetched.body)
        if user is not None and binds_identity(authorization, user_id, user):
            services.identities.bind(authorization, identity_of(user), asked_at=asked_at)
    return answer_fetched(fetched)


async def ready_for_write(request: web.Request, raw_path: str) -> bool:
    """Can the store record this write's purges? Asked once the write has arrived whole,
    before Finesse has all of it.

    False: it can't, and the write is refused with 503 (`store.on_purge_failure =
    "refuse"`); with "forward" it goes on, and the store owes the purge. The purge itself
    waits for Finesse's answer: done before it, a write Finesse refuses (anyone's, with no
    credential at all) would empty the cache.
    """
    services = services_of(request)
    settings = services.settings
    purges = purges_for_write(
        request.method, raw_path, None, media_domain_path=settings.cache.media_domain_path
    )
    if not purges:
        return True
    try:
        await services.store.ping()  # Redis: pays an owed clear first
    except StoreUnavailable as exc:
        services.metrics.store_errors.labels("purge").inc()
        throttled.warning(log, "store unavailable before a purging write: %s", exc)
        return settings.store.on_purge_failure == "forward"
    return True


async def purge_after_write(request: web.Request, raw_path: str, status: int | None) -> None:
    """Purge what a write changed, before its answer is relayed: no stale read follows it.

    `status` None: sent whole, no answer; the same purges run again after
    `cache.repurge_after` (and after every write with `cache.repurge_every_write`).
    """
    if request.method not in WRITE_METHODS:
        return
    services = services_of(request)
    cache = services.settings.cache
    purges = purges_for_write(
        request.method, raw_path, status, media_domain_path=cache.media_domain_path
    )
    await purge(services, purges)
    if status is None or cache.repurge_every_write:
        services.repurges.schedule(purges, cache.repurge_after)


async def purge(services: Services, purges: Sequence[Purge]) -> bool:
    """Bump each purge's counter; False if the store could not (each then owes a clear)."""
    recorded = True
    for each in purges:
        try:
            await services.store.purge(each.counter)
        except StoreUnavailable as exc:
            recorded = False
            services.metrics.store_errors.labels("purge").inc()
            throttled.warning(
                log, "purge of %s owed until the store answers: %s", each.counter, exc
            )
        else:
            services.metrics.purges.labels(PurgeReason.WRITE).inc()
    return recorded


def route_class(raw_path: str) -> str:
    """A bounded label for a path: api, longpoll, or other."""
    if raw_path.startswith(API_PREFIX):
        return "api"
    if long_lived(raw_path):
        return "longpoll"
    return "other"
