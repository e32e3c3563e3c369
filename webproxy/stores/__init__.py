"""Cache stores: keeping values under keys guarded by generation counters, no HTTP knowledge."""

from __future__ import annotations

from webproxy.stores.base import ALL, CacheStore, Found, LabelStats, StoreStats

__all__ = ["ALL", "CacheStore", "Found", "LabelStats", "StoreStats"]
