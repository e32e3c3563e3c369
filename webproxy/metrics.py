"""Prometheus metrics, every one registered on the registry it is given (never the global one).

Labels take only bounded values: our own enums, route classes and HTTP status codes.
No credential, user id, team id or path ever becomes a label.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

from webproxy.cache.rules import Resource
from webproxy.errors import UpstreamError

#: 1 ms to 30 s, roughly doubling: resolves a cache-speed answer and a stuck upstream alike.
UPSTREAM_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0,
)  # fmt: skip


class Metrics:
    """The proxy's metrics, created against one registry."""

    def __init__(self, registry: CollectorRegistry, shared_store: bool = False) -> None:
        """`shared_store`: every worker sees the same store (Redis), so a worker group's
        entries and bytes are any one worker's (max), not their sum."""
        store_mode: Literal["livemax", "livesum"] = "livemax" if shared_store else "livesum"
        self.registry = registry
        # label children by label values: labels() takes a lock and builds a key each call
        self._lookup_children: dict[tuple[str, str], Counter] = {}
        self._request_children: dict[tuple[str, int], Counter] = {}
        self.requests = Counter(
            "webproxy_requests",
            "Requests answered, by route class and status code.",
            ["route", "status"],
            registry=registry,
        )
        self.lookups = Counter(
            "webproxy_cache_lookups",
            "Cache lookups by cache, resource and result.",
            ["cache", "resource", "result"],
            registry=registry,
        )
        self.purges = Counter(
            "webproxy_cache_purges",
            "Purges by reason: one per scope a write purged, one per admin clear.",
            ["reason"],
            registry=registry,
        )
        self.entries = Gauge(
            "webproxy_cache_entries",
            "Entries stored, by cache and resource (read from the store at scrape time).",
            ["cache", "resource"],
            registry=registry,
            multiprocess_mode=store_mode,
        )
        self.bytes = Gauge(
            "webproxy_cache_bytes",
            "Bytes stored, by cache and resource (read from the store at scrape time).",
            ["cache", "resource"],
            registry=registry,
            multiprocess_mode=store_mode,
        )
        self.upstream_duration = Histogram(
            "webproxy_upstream_request_duration_seconds",
            "Time from sending a request upstream to receiving its response head.",
            ["route"],
            buckets=UPSTREAM_BUCKETS,
            registry=registry,
        )
        self.upstream_errors = Counter(
            "webproxy_upstream_errors",
            "Upstream failures by kind (timeout, unavailable).",
            ["kind"],
            registry=registry,
        )
        self.store_errors = Counter(
            "webproxy_store_errors",
            "Store operations that failed (the request went on without the cache).",
            ["operation"],
            registry=registry,
        )
        self.coalesced = Counter(
            "webproxy_coalesced_requests",
            "Requests answered from another request's upstream fetch.",
            registry=registry,
        )
        self.identities = Gauge(
            "webproxy_identities",
            "Credentials with a live identity learned from Finesse.",
            registry=registry,
            multiprocess_mode="livesum",
        )

        self.open_connections = Gauge(
            "webproxy_open_connections",
            "Long-lived exchanges open now, by kind (websocket, longpoll).",
            ["kind"],
            registry=registry,
            multiprocess_mode="livesum",
        )

    def count_lookup(self, resource: str, result: str, amount: int = 1) -> None:
        """`lookups.labels(resource, result).inc()`, with the child looked up once."""
        child = self._lookup_children.get((resource, result))
        if child is None:
            cache = Resource(resource).cache
            child = self._lookup_children[(resource, result)] = self.lookups.labels(
                cache, resource, result
            )
        child.inc(amount)

    @contextlib.contextmanager
    def upstream_call(self, route: str) -> Iterator[UpstreamCall]:
        """Time one call to Finesse (to its answer's head) and count it, or count how it
        failed: every upstream call of the proxy goes through here."""
        call = UpstreamCall()
        started = time.perf_counter()
        try:
            yield call
        except UpstreamError as exc:
            self.upstream_errors.labels(exc.kind).inc()
            raise
        call.seconds = time.perf_counter() - started
        self.upstream_duration.labels(route).observe(call.seconds)

    def set_stored(self, resource: Resource, entries: int, size: int) -> None:
        """The entries and bytes gauges of one resource."""
        self.entries.labels(resource.cache, resource).set(entries)
        self.bytes.labels(resource.cache, resource).set(size)

    def count_request(self, route: str, status: int, amount: int = 1) -> None:
        """`requests.labels(route, status).inc()`, with the child looked up once."""
        child = self._request_children.get((route, status))
        if child is None:
            child = self.requests.labels(route, str(status))
            self._request_children[(route, status)] = child
        child.inc(amount)


class UpstreamCall:
    """What `Metrics.upstream_call` measured: seconds to the answer's head."""

    __slots__ = ("seconds",)

    def __init__(self) -> None:
        self.seconds = 0.0


def group_registry(metrics_dir: str) -> CollectorRegistry:
    """A registry of every worker's metrics, from prometheus-client's multiprocess files."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=metrics_dir)  # type: ignore[no-untyped-call]
    return registry


@dataclass(frozen=True, slots=True)
class CacheView:
    """What `GET /admin/cache` reports, read back from a registry."""

    lookups: dict[str, dict[str, int]]  # resource -> result -> count
    entries: dict[str, int]  # resource -> entries
    bytes: dict[str, int]  # resource -> bytes
    identities: int


def read_cache_view(registry: CollectorRegistry) -> CacheView:
    """Lookups, entries, bytes and identities, from one process's or a group's registry."""
    view = CacheView({}, {}, {}, 0)
    identities = 0
    for metric in registry.collect():
        for sample in metric.samples:
            resource = sample.labels.get("resource", "")
            match sample.name:
                case "webproxy_cache_lookups_total":
                    by_result = view.lookups.setdefault(resource, {})
                    by_result[sample.labels["result"]] = int(sample.value)
                case "webproxy_cache_entries":
                    view.entries[resource] = int(sample.value)
                case "webproxy_cache_bytes":
                    view.bytes[resource] = int(sample.value)
                case "webproxy_identities":
                    identities = int(sample.value)
    return CacheView(view.lookups, view.entries, view.bytes, identities)
