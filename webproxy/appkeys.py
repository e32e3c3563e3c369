"""The objects the proxy and admin applications share (`Services`), and the request keys."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from webproxy.cache.entry import CachedResponse
from webproxy.cache.policy import Lookup
from webproxy.cache.rules import CacheName
from webproxy.coalesce import Flights
from webproxy.config import Settings
from webproxy.fleet import IdentityEvents
from webproxy.forward import Upstream
from webproxy.identities import IdentityBook
from webproxy.logs import SharedLogLevels
from webproxy.metrics import Metrics
from webproxy.repurge import Repurges
from webproxy.shares import Shares
from webproxy.stores.base import CacheStore, Generations

if TYPE_CHECKING:  # these modules read `services_key`: their types only
    from webproxy.cached import Outcome
    from webproxy.fastlane import FastLane
    from webproxy.fills import Fills
    from webproxy.http_cached import Filled, Passes


class LiveSettings:
    """The settings in force; a reload swaps in new ones (see `webproxy.reload`)."""

    def __init__(self, settings: Settings) -> None:
        self.current = settings


#: Reads the configuration again (file, environment, flags) for a reload.
SettingsSource = Callable[[], Settings]


@dataclass(frozen=True)
class Worker:
    """What one worker of a `--workers N` group shares with the others."""

    generations: Generations  # generation counters in shared memory
    metrics_dir: str  # prometheus-client's multiprocess folder
    identity_key: bytes = field(repr=False)  # the credential digests' key, one per group
    identity_events: IdentityEvents | None = None  # what the workers forget, shared
    log_levels: SharedLogLevels | None = None  # the live log levels (`PUT /admin/log`)
    index: int = 0  # this worker's number in the group, 0 to N-1


#: Wall-clock seconds (`time.time`); tests pass a hand-moved clock.
Clock = Callable[[], float]


@dataclass(eq=False, slots=True)
class Services:
    """The objects the request path, the fast lane and the admin app share: one typed
    record, built with the proxy app (`app.make_proxy_app`), read through one key."""

    live: LiveSettings
    metrics: Metrics
    clock: Clock
    source: SettingsSource
    worker: Worker | None
    identities: IdentityBook
    shares: Shares  # each client's share of the upstream pool
    long_shares: Shares  # long polls' and WebSockets' pool
    flights: Flights[Outcome]  # REST misses in flight, one fetch each
    fills: Fills  # REST fills claimed across the fleet
    http_flights: Flights[Filled]  # the HTTP caches' fills in flight
    passes: Passes  # the HTTP caches' keys to forward at once
    websockets: weakref.WeakSet[web.WebSocketResponse] = field(default_factory=weakref.WeakSet)
    fast_lane: FastLane = field(init=False)  # made with these services, which it reads
    # made as the app starts (its cleanup contexts), before it serves:
    upstream: Upstream = field(init=False)
    store: CacheStore[CachedResponse] = field(init=False)
    stores: dict[CacheName, CacheStore[CachedResponse]] = field(init=False)
    """Every cache's store, REST's (`store`) among them: the memory backend keeps one per
    cache (each its own byte bound, `cache.<name>.max_bytes`); Redis is one for all."""
    repurges: Repurges = field(init=False)

    @property
    def settings(self) -> Settings:
        """The settings in force now (a reload swaps them)."""
        return self.live.current


services_key = web.AppKey("services", Services)


def services_of(request: web.Request) -> Services:
    """The services of the app serving `request`."""
    return request.app[services_key]


#: Per request, for the access log: what the cache did, and time spent waiting on Finesse.
cache_result_key = web.RequestKey("cache_result", Lookup)
upstream_seconds_key = web.RequestKey("upstream_seconds", float)
