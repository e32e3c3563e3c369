"""A cached response and its compact, versioned byte encoding."""

from __future__ import annotations

import json
import math
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from webproxy.cache.keys import HeaderValues
from webproxy.cache.rules import Resource, Scope

T = TypeVar("T")

FORMAT_VERSION: Final = 1
_PREFIX: Final = struct.Struct(">BI")  # format version, length of the JSON metadata
_META_KEYS: Final = frozenset({"status", "headers", "stored_at", "ttl", "scope", "vary"})


@dataclass(frozen=True, slots=True, weakref_slot=True)
class CachedResponse:
    """One stored answer, as the upstream gave it, with when and for how long it is fresh."""

    status: int
    headers: tuple[tuple[str, str], ...]
    """End-to-end response headers, as stored."""
    body: bytes
    stored_at: float
    """Wall-clock seconds (``time.time()``), so ``Age`` holds across replicas."""
    ttl: float
    scope: Scope
    vary: HeaderValues = ()
    """The request's values of the headers the response's ``Vary`` named (see keys)."""

    @property
    def footprint(self) -> int:
        """What this entry's own objects take in memory: the record, the body, every header
        and Vary tuple and string (the shared Scope aside), each as `sys.getsizeof` counts
        it, rounded up to the allocator's 16-byte blocks."""
        size = allocated(self) + allocated(self.body)
        size += _tuple_cost(self.headers, _pair_cost)
        size += _tuple_cost(self.vary, lambda item: _tuple_cost(item, _text_cost))
        return size


def allocated(item: object) -> int:
    """`sys.getsizeof(item)` rounded up to a 16-byte block, as CPython allocates it."""
    return (sys.getsizeof(item) + 15) & ~15


def _text_cost(item: object) -> int:
    if isinstance(item, tuple):
        return _tuple_cost(item, _text_cost)
    return allocated(item)


def _pair_cost(pair: tuple[str, str]) -> int:
    return allocated(pair) + allocated(pair[0]) + allocated(pair[1])


def _tuple_cost(items: tuple[T, ...], cost: Callable[[T], int]) -> int:
    return allocated(items) + sum(cost(item) for item in items)


def encode_entry(entry: CachedResponse) -> bytes:
    """Version byte, 4-byte metadata length, JSON metadata (ASCII), then the raw body."""
    meta = {
        "status": entry.status,
        "headers": entry.headers,
        "stored_at": entry.stored_at,
        "ttl": entry.ttl,
        "scope": [str(entry.scope.resource), entry.scope.team],
        "vary": entry.vary,
    }
    encoded = json.dumps(meta, separators=(",", ":"), allow_nan=False).encode("ascii")
    return b"".join((_PREFIX.pack(FORMAT_VERSION, len(encoded)), encoded, entry.body))


def decode_entry(data: bytes) -> CachedResponse:
    """Decode `encode_entry`'s bytes; ValueError on anything malformed or another version."""
    if len(data) < _PREFIX.size:
        raise ValueError("entry too short")
    version, meta_length = _PREFIX.unpack_from(data)
    if version != FORMAT_VERSION:
        raise ValueError(f"unknown entry format version {version}")
    meta_end = _PREFIX.size + meta_length
    if meta_end > len(data):
        raise ValueError("entry metadata truncated")
    try:
        meta: object = json.loads(data[_PREFIX.size : meta_end])
    except RecursionError as error:
        raise ValueError("entry metadata nested too deeply") from error
    if not isinstance(meta, dict) or meta.keys() != _META_KEYS:
        raise ValueError("entry metadata has the wrong fields")
    return CachedResponse(
        status=_status(meta["status"]),
        headers=_headers(meta["headers"]),
        body=bytes(data[meta_end:]),
        stored_at=_seconds(meta["stored_at"], "stored_at"),
        ttl=_seconds(meta["ttl"], "ttl"),
        scope=_scope(meta["scope"]),
        vary=_vary(meta["vary"]),
    )


def _status(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise ValueError(f"bad status {value!r}")
    return value


def _seconds(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"bad {name} {value!r}")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"bad {name} {value!r}")
    return seconds


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _pair(value: object) -> tuple[object, object]:
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError(f"expected a pair, got {value!r}")
    return value[0], value[1]


def _list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list, got {value!r}")
    return value


def _headers(value: object) -> tuple[tuple[str, str], ...]:
    pairs = (_pair(item) for item in _list(value))
    return tuple((_string(name), _string(text)) for name, text in pairs)


def _vary(value: object) -> HeaderValues:
    pairs = (_pair(item) for item in _list(value))
    return tuple(
        (_string(name), tuple(_string(text) for text in _list(texts))) for name, texts in pairs
    )


def _scope(value: object) -> Scope:
    resource, team = _pair(value)
    if team is not None:
        team = _string(team)
    return Scope(Resource(_string(resource)), team)
