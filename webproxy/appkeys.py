"""Typed keys for the objects the proxy and admin applications share."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from webproxy.cache.entry import CachedResponse
from webproxy.cache.policy import Lookup
from webproxy.config import Settings
from webproxy.fleet import IdentityEvents
from webproxy.forward import Upstream
from webproxy.identities import IdentityBook
from webproxy.logs import SharedLogLevels
from webproxy.metrics import Metrics
from webproxy.repurge import Repurges
from webproxy.shares import Shares
from webproxy.stores.base import CacheStore, Generations


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

settings_key = web.AppKey("settings", LiveSettings)
upstream_key = web.AppKey("upstream", Upstream)
store_key = web.AppKey("store", CacheStore[CachedResponse])
identities_key = web.AppKey("identities", IdentityBook)
metrics_key = web.AppKey("metrics", Metrics)
clock_key: web.AppKey[Clock] = web.AppKey("clock")
source_key: web.AppKey[SettingsSource] = web.AppKey("settings_source")
worker_key: web.AppKey[Worker | None] = web.AppKey("worker")
shares_key = web.AppKey("shares", Shares)
long_shares_key = web.AppKey("long_shares", Shares)  # long polls' and WebSockets' pool
repurges_key = web.AppKey("repurges", Repurges)
websockets_key = web.AppKey("websockets", weakref.WeakSet[web.WebSocketResponse])

#: Per request, for the access log: what the cache did, and time spent waiting on Finesse.
cache_result_key = web.RequestKey("cache_result", Lookup)
upstream_seconds_key = web.RequestKey("upstream_seconds", float)
