"""Admin listener routes: cache clear and stats, metrics, liveness and readiness."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import signal
from collections.abc import Iterable, Mapping
from typing import Final

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from webproxy.appkeys import services_key, services_of
from webproxy.cache.rules import (
    REST_RESOURCES,
    CacheName,
    Purge,
    PurgeReason,
    Resource,
    canonical_team,
    purges_for_cache,
    valid_team_id,
)
from webproxy.errors import ConfigError, StoreUnavailable, UpstreamError
from webproxy.forward import upstream_errors
from webproxy.identities import IdentityBook
from webproxy.logs import configure_logging
from webproxy.metrics import group_registry, read_cache_view
from webproxy.reload import Reload, plan_reload
from webproxy.stores.base import LabelStats

log = logging.getLogger("webproxy.admin")

READINESS_PATH: Final = "/finesse/api/SystemInfo"


async def clear_cache(request: web.Request) -> web.Response:
    """`POST /admin/cache/clear[?cache=NAME][&team=ID|&resource=NAME]`: bump generation
    counters (`cache` defaults to `rest`; `team` and `resource` apply to it alone)."""
    refused = _refuse_unauthorised(request)
    if refused is not None:
        return refused
    services, query = services_of(request), request.query
    try:
        purges, cleared = _clears_for(query.get("cache"), query.get("team"), query.get("resource"))
    except ValueError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    bumped: set[tuple[int, str]] = set()  # `all` in each cache's store: Redis's only once
    for cache, purge in purges:
        store = services.stores[cache]
        if (id(store), purge.counter) in bumped:
            continue
        bumped.add((id(store), purge.counter))
        try:
            await store.purge(purge.counter)
        except StoreUnavailable as exc:
            services.metrics.store_errors.labels("purge").inc()
            log.warning("admin clear of %s owed until the store answers: %s", purge.counter, exc)
            return web.json_response({"error": "store unavailable; the clear is owed"}, status=503)
    services.metrics.purges.labels(PurgeReason.ADMIN).inc()  # one clear, however many bumps
    if any(cache is CacheName.REST for cache, _ in purges):
        _forget_identities(services.identities, query.get("team"), query)
    log.info("cache cleared by admin: %s", cleared)
    return web.json_response({"cleared": cleared})


#: `cache=` names: Finesse's, `all` and `webproxy` (Finesse's default cache: here every
#: cache, since Finesse does not say which it holds, and clearing more is never stale).
CLEAR_NAMES: Final = ("all", "webproxy", *CacheName)


def _clears_for(
    cache: str | None, team: str | None, resource: str | None
) -> tuple[list[tuple[CacheName, Purge]], dict[str, object]]:
    """The purges an admin clear makes, and what its answer says was cleared."""
    name = "rest" if cache is None else cache
    if name not in CLEAR_NAMES:
        raise ValueError(f"cache must be one of {', '.join(CLEAR_NAMES)}")
    if name != CacheName.REST and (team is not None or resource is not None):
        raise ValueError("team= and resource= apply to cache=rest only")
    if name == CacheName.REST:
        purges, cleared = _purge_for(team, resource)
        return [(CacheName.REST, purge) for purge in purges], cleared
    if name in ("all", "webproxy"):
        every = [(each, Purge.everything()) for each in CacheName]
        return every, {"cache": name, "caches": [str(each) for each in CacheName]}
    named = CacheName(name)
    return [(named, purge) for purge in purges_for_cache(named)], {"cache": str(named)}


def _forget_identities(
    identities: IdentityBook, team: str | None, query: Mapping[str, str]
) -> None:
    """A clear also forgets who credentials belong to (everyone, or that team's members),
    so team changes made outside Finesse's REST API count from the next sign-in."""
    if team is not None:
        identities.forget_team(canonical_team(team))
    elif "resource" not in query:
        identities.clear()


def _purge_for(team: str | None, resource: str | None) -> tuple[list[Purge], dict[str, object]]:
    if team is not None:
        if resource not in (None, Resource.TEAM_RESOURCE):
            raise ValueError("team= applies to TeamResource only")
        if not valid_team_id(team):
            raise ValueError("team must be 1-64 letters, digits, '-' or '_'")
        return [Purge.team(team)], {"scope": "team", "team": team}
    if resource is not None:
        if resource not in REST_RESOURCES:
            names = ", ".join(REST_RESOURCES)
            raise ValueError(f"resource must be one of {names}")
        named = Resource(resource)
        return [Purge.resource(named)], {"scope": "resource", "resource": str(named)}
    return list(purges_for_cache(CacheName.REST)), {"scope": "all"}


def _refuse_unauthorised(request: web.Request) -> web.Response | None:
    """With a token: `Bearer <token>` or 401. Without: loopback clients only."""
    token = services_of(request).settings.admin.token
    if token is not None:
        given = request.headers.get("Authorization", "")
        expected = f"Bearer {token.reveal()}"
        if hmac.compare_digest(given.encode(errors="surrogateescape"), expected.encode()):
            return None
        return web.json_response(
            {"error": "admin token required"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="webproxy admin"'},
        )
    if "Origin" in request.headers:  # a web page in a browser on this host: never trusted
        return web.json_response({"error": "cross-site requests are refused"}, status=403)
    if _is_loopback(request.remote):
        return None
    return web.json_response({"error": "no admin token configured: loopback only"}, status=401)


def _is_loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


async def reload_route(request: web.Request) -> web.Response:
    """`POST /admin/reload`: what SIGHUP does; says what changed and what needs a restart."""
    refused = _refuse_unauthorised(request)
    if refused is not None:
        return refused
    app = request.app
    try:
        if app[services_key].worker is None:
            done = reload_settings(app)
        else:  # every worker must reload: the supervisor passes SIGHUP on to each
            done = plan_reload(app[services_key].settings, app[services_key].source())
            os.kill(os.getppid(), signal.SIGHUP)
    except ConfigError as exc:
        problems = {"error": "configuration refused", "problems": exc.problems}
        return web.json_response(problems, status=400)
    return web.json_response({"applied": done.applied, "needs_restart": done.needs_restart})


def reload_settings(app: web.Application) -> Reload:
    """Read the configuration again and take on what can change while serving.

    A configuration with problems changes nothing (logged, and raised for the caller).
    """
    live = app[services_key].live
    try:
        wanted = app[services_key].source()
    except ConfigError as exc:
        log.error("reload refused, nothing changed:\n%s", exc)
        raise
    done = plan_reload(live.current, wanted)
    live.current = done.settings
    if any(name.startswith("log.") for name in done.applied):
        configure_logging(done.settings.log)
    log.info(
        "reloaded: applied %s; needs a restart: %s",
        ", ".join(done.applied) or "nothing",
        ", ".join(done.needs_restart) or "nothing",
    )
    return done


async def cache_stats(request: web.Request) -> web.Response:
    """`GET /admin/cache`: entries and bytes (the stores', now), hits and misses (counted),
    in all, per cache and per resource.

    With `--workers N`, the whole group's, as `/metrics` shows it.
    """
    if not await refresh_gauges(request.app):
        return web.json_response({"error": "store unavailable"}, status=503)
    view = read_cache_view(_registry(request.app))
    resources = {
        str(resource): {
            "cache": str(resource.cache),
            "entries": view.entries.get(str(resource), 0),
            "bytes": view.bytes.get(str(resource), 0),
            "lookups": view.lookups.get(str(resource), {}),
        }
        for resource in Resource
    }
    caches: dict[str, dict[str, int]] = {}
    for cache in CacheName:
        names = [str(resource) for resource in Resource if resource.cache is cache]
        hits, misses = _hits_and_misses(view.lookups.get(name, {}) for name in names)
        caches[str(cache)] = {
            "entries": sum(view.entries.get(name, 0) for name in names),
            "bytes": sum(view.bytes.get(name, 0) for name in names),
            "hits": hits,
            "misses": misses,
        }
    hits, misses = _hits_and_misses(view.lookups.values())
    return web.json_response(
        {
            "backend": services_of(request).settings.store.backend,
            "entries": sum(view.entries.values()),
            "bytes": sum(view.bytes.values()),
            "hits": hits,
            "misses": misses,
            "hit_ratio": round(hits / (hits + misses), 4) if hits + misses else None,
            "identities": view.identities,
            "caches": caches,
            "resources": resources,
        }
    )


def _hits_and_misses(lookups: Iterable[Mapping[str, int]]) -> tuple[int, int]:
    """Hits, and every other lookup (misses, bypasses, ...), summed."""
    hits = total = 0
    for by_result in lookups:
        hits += by_result.get("hit", 0)
        total += sum(by_result.values())
    return hits, total - hits


async def metrics_page(request: web.Request) -> web.Response:
    """`GET /metrics`: gauges refreshed now, then the registry (the whole worker group's)."""
    await refresh_gauges(request.app)
    body = generate_latest(_registry(request.app))
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _registry(app: web.Application) -> CollectorRegistry:
    worker = app[services_key].worker
    return (
        app[services_key].metrics.registry if worker is None else group_registry(worker.metrics_dir)
    )


async def refresh_gauges(app: web.Application, *, store: bool = True) -> bool:
    """Read what the gauges show at scrape time: the store's entries and bytes, identities.

    False when the store did not answer (its gauges keep their last values).
    """
    metrics = app[services_key].metrics
    app[services_key].fast_lane.fold(metrics)
    metrics.identities.set(len(app[services_key].identities))
    if not store:
        return True
    stores = {id(each): each for each in app[services_key].stores.values()}  # Redis: one
    by_label: dict[str, LabelStats] = {}
    try:
        for each in stores.values():
            by_label.update((await each.stats()).by_label)
    except StoreUnavailable:
        metrics.store_errors.labels("stats").inc()
        return False
    for resource in Resource:
        label = by_label.get(str(resource))
        metrics.set_stored(resource, label.entries if label else 0, label.bytes if label else 0)
    return True


async def healthz(request: web.Request) -> web.Response:
    """200 while the process serves."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """200 when the upstream answers at all (any HTTP status) and the store answers."""
    upstream = services_of(request).upstream
    problems: dict[str, str] = {}
    try:
        with upstream_errors():
            async with upstream.session.get(
                upstream.url(READINESS_PATH), timeout=upstream.timeout()
            ) as response:
                await response.read()
    except UpstreamError as exc:
        problems["upstream"] = str(exc)
    try:
        await services_of(request).store.ping()
    except StoreUnavailable as exc:
        problems["store"] = str(exc)
    if problems:
        return web.json_response({"status": "unready", **problems}, status=503)
    return web.json_response({"status": "ready", "upstream": "ok", "store": "ok"})
