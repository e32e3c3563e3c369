"""Build the proxy and admin applications around one set of shared objects."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial

from aiohttp import web
from prometheus_client import CollectorRegistry

from webproxy.admin import (
    cache_stats,
    clear_cache,
    healthz,
    metrics_page,
    readyz,
    refresh_gauges,
    reload_route,
)
from webproxy.answers import client_gone, refuse
from webproxy.appkeys import Clock, LiveSettings, Services, SettingsSource, Worker, services_key
from webproxy.cache.entry import CachedResponse, allocated, decode_entry, encode_entry
from webproxy.cache.rules import CacheName
from webproxy.cached import Outcome
from webproxy.coalesce import Flights
from webproxy.config import Settings, StoreSettings
from webproxy.errors import ClientGone, TooManyForClient
from webproxy.fastlane import FastLane
from webproxy.fills import Fills
from webproxy.fleet import Event, EventKind
from webproxy.forward import make_upstream
from webproxy.handler import proxy, purge, route_class
from webproxy.http_cached import SCOPES, Filled, Passes, http_settings
from webproxy.identities import IdentityBook
from webproxy.intake import refusal
from webproxy.log_control import set_log, show_log
from webproxy.logs import loggable_target
from webproxy.metrics import Metrics
from webproxy.repurge import Repurges
from webproxy.shares import Shares
from webproxy.stores.local import LocalTier
from webproxy.stores.memory import HELD_OVERHEAD, MemoryStore
from webproxy.stores.redis import RedisStore
from webproxy.stores.redis_clients import make_clients
from webproxy.stores.redis_events import RedisEvents
from webproxy.websocket import GOING_AWAY

log = logging.getLogger("webproxy.server")

GAUGE_REFRESH_SECONDS = 5.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class EveryTarget(web.PlainResource):
    """The proxy's one route: every path, matched without a regular expression."""

    def __init__(self) -> None:
        super().__init__("/")

    def _match(self, path: str) -> dict[str, str]:
        return {}

    def raw_match(self, path: str) -> bool:
        return True


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse what no upstream should see, catch what nothing else did, count every answer.

    A middleware, so that it also sees requests no route matches (CONNECT's authority
    form); one rather than three, because aiohttp wraps each middleware around the
    handler anew on every request, cache hits included.
    """
    refused = refusal(request, request.app[services_key].settings.server.max_body_bytes)
    response: web.StreamResponse
    if refused is not None:
        response = refused
    else:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            request.app[services_key].metrics.count_request(
                route_class(request.raw_path), exc.status
            )
            raise
        except TooManyForClient as exc:
            response = refuse(429, f"too many requests from this address in progress ({exc})")
            response.headers["Retry-After"] = "1"
        except (ClientGone, ConnectionError):
            response = client_gone()
        except Exception:
            response = _internal_error(request)
    route = "websocket" if response.status == 101 else route_class(request.raw_path)
    request.app[services_key].metrics.count_request(route, response.status)
    return response


@web.middleware
async def last_resort(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The admin listener's one broad catch."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:
        return _internal_error(request)


async def expect_later(request: web.Request) -> None:
    """`Expect: 100-continue` is answered when the body is first read (`RequestBody`), so a
    request the proxy refuses never gets a `100 Continue` first; other expectations: 417."""
    if request.version >= (1, 1) and request.headers.get("Expect", "").lower() != "100-continue":
        raise web.HTTPExpectationFailed(text="webproxy: unsupported Expect\n")


def _internal_error(request: web.Request) -> web.Response:
    """The only broad catch: log with a request id, answer 500, keep serving."""
    request_id = uuid.uuid4().hex[:12]
    target = loggable_target(request.raw_path)
    log.exception("unhandled error on %s %s (request %s)", request.method, target, request_id)
    return web.Response(status=500, text=f"webproxy: internal error (request {request_id})\n")


def make_proxy_app(
    settings: Settings,
    *,
    registry: CollectorRegistry | None = None,
    clock: Clock = time.time,
    source: SettingsSource | None = None,
    worker: Worker | None = None,
) -> web.Application:
    """The public listener: every path goes to `proxy`. It owns the shared objects.

    `worker` is set in a worker of a `--workers N` group (see `webproxy.workers`).
    """
    app = web.Application(
        middlewares=[guard],
        client_max_size=settings.server.max_body_bytes,
    )
    shared_store = settings.store.backend == "redis"
    metrics = Metrics(registry if registry is not None else CollectorRegistry(), shared_store)
    services = Services(
        live=LiveSettings(settings),
        metrics=metrics,
        clock=clock,
        source=source if source is not None else (lambda: settings),
        worker=worker,
        identities=IdentityBook(
            settings.cache.identity_ttl,
            key=identity_key(settings, worker),
            events=worker.identity_events if worker is not None else None,
        ),
        shares=Shares(
            settings.server.max_upstream_per_client, wait=settings.upstream.connect_timeout
        ),
        long_shares=Shares(
            settings.server.max_long_lived_per_client, wait=settings.upstream.connect_timeout
        ),
        flights=Flights[Outcome](),
        fills=Fills(),
        http_flights=Flights[Filled](),
        passes=Passes(),
    )
    services.fast_lane = FastLane(services)
    app[services_key] = services
    app.on_shutdown.append(_close_websockets)
    app.cleanup_ctx.append(_upstream_ctx)
    app.cleanup_ctx.append(_store_ctx)
    app.cleanup_ctx.append(_repurges_ctx)
    if worker is not None:
        app.cleanup_ctx.append(_gauges_ctx)
    every = EveryTarget()
    every.add_route("*", proxy, expect_handler=expect_later)
    app.router.register_resource(every)
    return app


def make_admin_app(proxy_app: web.Application) -> web.Application:
    """The admin listener (loopback by default): cache control, metrics, health.

    It serves the objects `proxy_app` owns, so start the proxy app first.
    """
    app = web.Application(middlewares=[last_resort])
    app[services_key] = proxy_app[services_key]
    app.router.add_post("/admin/cache/clear", clear_cache)
    app.router.add_post("/admin/reload", reload_route)
    app.router.add_get("/admin/cache", cache_stats)
    app.router.add_get("/admin/log", show_log)
    app.router.add_put("/admin/log", set_log)
    app.router.add_get("/metrics", metrics_page)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def _upstream_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[services_key].settings
    upstream = make_upstream(settings.upstream)
    app[services_key].upstream = upstream
    yield
    await upstream.close()


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    services = app[services_key]
    settings = services.settings
    store = settings.store
    if store.backend == "memory":
        worker = services.worker

        def memory(max_bytes: int) -> MemoryStore[CachedResponse]:
            return MemoryStore[CachedResponse](
                max_bytes,
                sizeof=entry_cost,
                generations=worker.generations if worker is not None else None,
                max_entry_bytes=settings.cache.max_entry_bytes,
            )

        services.store = memory(store.max_bytes)
        services.stores = {CacheName.REST: services.store}
        services.stores.update(
            (cache, memory(http_settings(settings, cache).max_bytes)) for cache in SCOPES
        )
        yield
        return
    clients = make_clients(store)
    shared = RedisStore[CachedResponse](
        clients.client,
        prefix=store.key_prefix,
        encode=encode_entry,
        decode=decode_entry,
        max_entry_bytes=settings.cache.max_entry_bytes,
    )
    lost = partial(shared.owe_clear, "event subscription lost (a failover may lose a purge)")
    events = RedisEvents(clients, prefix=store.key_prefix, lost=lost)
    identities, fills = services.identities, services.fills
    identities.broadcast = fills.publish = events.publish
    tier = _local_tier(shared, store)
    services.store = shared if tier is None else tier
    services.stores = dict.fromkeys(CacheName, services.store)

    def deliver(event: Event) -> None:
        if event.kind is EventKind.FILLED:
            fills.wake(event.payload)
        elif event.kind is EventKind.PURGED:
            if tier is not None:
                tier.receive(event)
        else:
            identities.receive(event)

    def missed() -> None:
        identities.drop_learned()
        if tier is not None:
            tier.distrust()

    if tier is not None:
        tier.publish = events.publish
    subscribed = tier.trust if tier is not None else None
    listening = asyncio.create_task(events.listen(deliver, missed, subscribed))
    with contextlib.suppress(TimeoutError):  # serve once subscribed, or once Redis failed
        async with asyncio.timeout(2 * store.timeout):
            await events.settled.wait()
    try:
        yield
    finally:
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listening
        identities.broadcast = fills.publish = None
        if tier is not None:
            tier.publish = None
        await events.close()
        await services.store.close()
        await clients.aclose()


def _local_tier(
    shared: RedisStore[CachedResponse], store: StoreSettings
) -> LocalTier[CachedResponse] | None:
    """The in-process tier in front of Redis, when configured (`store.local_max_bytes`)."""
    if store.local_max_bytes <= 0 or store.local_ttl <= 0:
        return None
    return LocalTier(
        shared, max_bytes=store.local_max_bytes, ttl=store.local_ttl, sizeof=entry_cost
    )


async def _repurges_ctx(app: web.Application) -> AsyncIterator[None]:
    """Delayed purges, cancelled at shutdown (a restart starts with nothing to owe: with
    the memory store nothing survives it, and Redis keeps the first purge)."""
    repurges = Repurges(lambda purges: purge(app[services_key], purges))
    app[services_key].repurges = repurges
    yield
    await repurges.close()


async def _gauges_ctx(app: web.Application) -> AsyncIterator[None]:
    """In a worker group, each worker keeps its gauges current for a scrape of any other
    (its memory store's entries; a shared Redis store is read by whichever is scraped)."""
    own_store = app[services_key].settings.store.backend == "memory"

    async def refresh() -> None:
        while True:
            await refresh_gauges(app, store=own_store)
            await asyncio.sleep(GAUGE_REFRESH_SECONDS)

    task = asyncio.create_task(refresh())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _close_websockets(app: web.Application) -> None:
    """At shutdown, relayed WebSockets are told the proxy is going away (1001)."""
    sockets: weakref.WeakSet[web.WebSocketResponse] = app[services_key].websockets
    for socket in list(sockets):
        await socket.close(code=GOING_AWAY, message=b"webproxy shutting down")


def identity_key(settings: Settings, worker: Worker | None) -> bytes | None:
    """The credential digests' key: from `cache.fleet_key` when set (every replica the
    same, so a refused credential is forgotten fleet-wide), else the worker group's, else
    None (the book draws its own)."""
    fleet_key = settings.cache.fleet_key
    if fleet_key is not None:
        secret = fleet_key.reveal().encode()
        return hashlib.blake2b(secret, digest_size=32, person=b"webproxy-ident").digest()
    return worker.identity_key if worker is not None else None


def entry_cost(key: str, entry: CachedResponse) -> int:
    """What keeping `entry` under `key` costs the memory store, in bytes of memory."""
    return HELD_OVERHEAD + allocated(key) + entry.footprint
