"""Pure cache decisions: freshness and age, whether to store a response, the Cache-Status value."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from webproxy.cache.entry import CachedResponse
from webproxy.cache.keys import KEYED_HEADERS

CACHE_NAME: Final = "webproxy"
_CREDENTIAL_HEADERS: Final = frozenset({"authorization", "cookie"})
_MAX_DELTA_SECONDS: Final = 2**31
_TOKEN: Final = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*")


class Lookup(StrEnum):
    """What a cached path's request came to; the values are metric labels."""

    HIT = "hit"
    MISS = "miss"
    BYPASS = "bypass"
    STALE = "stale"
    UNCACHEABLE = "uncacheable"
    UNAUTHORIZED = "unauthorized"
    REVALIDATED = "revalidated"
    """An expired entry Finesse confirmed with a 304 (the HTTP caches)."""


class Freshness(StrEnum):
    FRESH = "fresh"
    STALE_USABLE = "stale_usable"
    """Past its TTL but within the stale-if-error window: usable only if the upstream fails."""
    EXPIRED = "expired"


class StorageReason(StrEnum):
    """Why a response was (not) stored; equal to the plain strings for logs and tests."""

    STORED = "stored"
    METHOD = "method"
    STATUS = "status"
    PARTIAL_WITHOUT_RANGE = "partial-without-range"
    DISABLED = "ttl=0"
    SET_COOKIE = "set-cookie"
    VARY_STAR = "vary-star"
    VARY_CREDENTIALS = "vary-credentials"
    NO_STORE = "no-store"
    PRIVATE = "private"
    NO_CACHE = "no-cache"
    MAX_AGE_ZERO = "max-age=0"


@dataclass(frozen=True, slots=True)
class StorageDecision:
    store: bool
    ttl: float
    """Seconds the entry stays fresh (0 when not stored)."""
    reason: StorageReason
    vary: tuple[str, ...] = ()
    """Lower-case request headers the response varies on beyond Accept and Range: record
    their values in ``CachedResponse.vary`` (``keys.select_headers``)."""


class Decision(StrEnum):
    """What a lookup of a cached resource comes to (`decide_lookup`)."""

    HIT = "hit"
    """Serve the entry."""
    MISS = "miss"
    """Fetch for everyone who may have it (one flight per key), and store the answer."""
    MISS_STALE_OK = "miss-stale-ok"
    """As MISS, but the expired entry may answer if Finesse fails (stale-if-error)."""
    BYPASS = "bypass"
    """`bypassServerCache=true`: fetch for this caller alone; store a success."""
    UNAUTHORIZED = "unauthorized"
    """Finesse has not accepted this credential for the entry's scope: forward alone."""


def decide_lookup(
    entry: CachedResponse | None,
    *,
    allowed: bool,
    bypass: bool,
    vary_ok: bool,
    now: float,
    stale_if_error: float,
) -> Decision:
    """The one decision a cached GET comes to, from what the store holds (`entry`), whether
    the caller's credential may receive the entry's scope, `bypassServerCache`, whether
    the request sends the values the entry varies on, the clock and the stale window.

    Pure and allocation-free, so the fast lane (`webproxy.fastlane`) and the slow path
    (`webproxy.cached`) decide alike. A caller Finesse has not approved never learns
    whether an entry exists: UNAUTHORIZED (or BYPASS) whatever the store holds.
    """
    if bypass:
        return Decision.BYPASS
    if not allowed:
        return Decision.UNAUTHORIZED
    if entry is None or not vary_ok:
        return Decision.MISS
    elapsed = now - entry.stored_at
    if elapsed < entry.ttl:
        return Decision.HIT
    if elapsed < entry.ttl + stale_if_error:
        return Decision.MISS_STALE_OK
    return Decision.MISS


def age(entry: CachedResponse, now: float) -> int:
    """Whole seconds since the entry was stored, never negative (clocks of replicas differ)."""
    return max(0, math.floor(now - entry.stored_at))


def remaining_ttl(entry: CachedResponse, now: float) -> int:
    """Whole seconds of freshness left: ``ttl - age``; negative once stale (as RFC 9211 ttl)."""
    return math.floor(entry.ttl) - age(entry, now)


def freshness(entry: CachedResponse, now: float, stale_if_error: float) -> Freshness:
    """FRESH while age < ttl; STALE_USABLE while age < ttl + stale_if_error; then EXPIRED."""
    elapsed = max(0.0, now - entry.stored_at)
    if elapsed < entry.ttl:
        return Freshness.FRESH
    if elapsed < entry.ttl + stale_if_error:
        return Freshness.STALE_USABLE
    return Freshness.EXPIRED


def keep_time(ttl: float, stale_if_error: float) -> float:
    """How long a store keeps an entry: its TTL plus the stale-if-error window."""
    return ttl + stale_if_error


def _refuse(reason: StorageReason) -> StorageDecision:
    return StorageDecision(store=False, ttl=0.0, reason=reason)


def decide_storage(
    method: str,
    status: int,
    response_headers: Mapping[str, str],
    *,
    ttl: float,
    override_upstream: bool,
    request_range: str | None,
) -> StorageDecision:
    """Whether to store an upstream answer, for how long, and which request headers it varies on.

    Stored: a GET answered 200, or 206 to a request that carried ``Range``, with a positive
    configured `ttl`. Never stored, whatever the settings: a ``Set-Cookie``, ``Vary: *``, or
    ``Vary`` naming ``Authorization`` or ``Cookie`` (the answer is per credential).

    Upstream ``Cache-Control`` (every field line; directives case-insensitive, quoted values
    and commas inside quotes handled) is honoured unless `override_upstream`: ``no-store``,
    ``private`` and ``no-cache`` (also with field names) refuse; ``s-maxage``, else
    ``max-age``, lowers the TTL (0 or an invalid value refuses; a repeated one takes the
    smallest). `override_upstream` ignores Cache-Control entirely: Finesse sends few cache
    headers, and Tomcat may mark every response of a protected resource ``private``.
    ``Expires`` and ``Pragma`` are ignored. Requests with ``Authorization`` are cacheable
    here by design (RFC 9111 3.5 is replaced by ``access.may_receive``).
    """
    if method != "GET":
        return _refuse(StorageReason.METHOD)
    if status == 206 and not request_range:
        return _refuse(StorageReason.PARTIAL_WITHOUT_RANGE)
    if status not in (200, 206):
        return _refuse(StorageReason.STATUS)
    if ttl <= 0:
        return _refuse(StorageReason.DISABLED)
    cache_control: list[str] = []
    vary: list[str] = []
    for name, value in response_headers.items():
        lowered = name.lower()
        if lowered == "set-cookie":
            return _refuse(StorageReason.SET_COOKIE)
        if lowered == "cache-control":
            cache_control.append(value)
        elif lowered == "vary":
            vary.extend(item.strip().lower() for item in value.split(",") if item.strip())
    if "*" in vary:
        return _refuse(StorageReason.VARY_STAR)
    if _CREDENTIAL_HEADERS.intersection(vary):
        return _refuse(StorageReason.VARY_CREDENTIALS)
    varied = tuple(sorted(set(vary).difference(KEYED_HEADERS)))
    if not override_upstream:
        directives = parse_cache_control(cache_control)
        for directive, reason in _REFUSING_DIRECTIVES:
            if directive in directives:
                return _refuse(reason)
        limit = _freshness_limit(directives)
        if limit is not None:
            if limit <= 0:
                return _refuse(StorageReason.MAX_AGE_ZERO)
            ttl = min(ttl, limit)
    return StorageDecision(store=True, ttl=ttl, reason=StorageReason.STORED, vary=varied)


_REFUSING_DIRECTIVES: Final = (
    ("no-store", StorageReason.NO_STORE),
    ("private", StorageReason.PRIVATE),
    ("no-cache", StorageReason.NO_CACHE),
)


def _freshness_limit(directives: Mapping[str, str | None]) -> int | None:
    for name in ("s-maxage", "max-age"):
        if name in directives:
            return delta_seconds(directives[name])
    return None


def delta_seconds(value: str | None) -> int:
    """RFC 9111 1.2.2 delta-seconds; anything invalid counts as 0 (stale)."""
    if value is None or not value.isascii() or not value.isdigit():
        return 0
    return min(int(value), _MAX_DELTA_SECONDS)


def parse_cache_control(values: Iterable[str]) -> dict[str, str | None]:
    """Directives of every ``Cache-Control`` field line: lower-case name -> unquoted value.

    A directive without ``=`` maps to None. When a directive repeats, ``max-age`` and
    ``s-maxage`` keep the smallest value (conservative) and others keep the first.
    """
    directives: dict[str, str | None] = {}
    for value in values:
        for part in _split_outside_quotes(value):
            name, equals, argument = part.partition("=")
            name = name.strip().lower()
            if not name:
                continue
            parsed = _unquote(argument.strip()) if equals else None
            if name not in directives:
                directives[name] = parsed
            elif name in ("max-age", "s-maxage"):
                smaller = min(delta_seconds(directives[name]), delta_seconds(parsed))
                directives[name] = str(smaller)
    return directives


def _split_outside_quotes(value: str) -> Iterator[str]:
    start, quoted, escaped = 0, False, False
    for index, char in enumerate(value):
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            yield value[start:index]
            start = index + 1
    yield value[start:]


def _unquote(argument: str) -> str:
    if len(argument) >= 2 and argument[0] == argument[-1] == '"':
        return re.sub(r"\\(.)", r"\1", argument[1:-1])
    return argument


def cache_status(
    lookup: Lookup,
    *,
    stored: bool = False,
    ttl: int | None = None,
    fwd_status: int | None = None,
    detail: str | None = None,
) -> str:
    """The RFC 9211 ``Cache-Status`` value for one response from a cached path.

    Parameters in this order: ``hit`` or ``fwd``, ``fwd-status``, ``stored``, ``ttl``,
    ``detail`` (each only when it applies or is given)::

        HIT           webproxy; hit; ttl=240
        MISS          webproxy; fwd=miss; fwd-status=200; stored
        BYPASS        webproxy; fwd=bypass; fwd-status=200; stored   (bypassServerCache=true)
        STALE         webproxy; fwd=stale; fwd-status=503; ttl=-20; detail=stale-if-error
        REVALIDATED   webproxy; fwd=stale; fwd-status=304; stored; ttl=3600
        UNCACHEABLE   webproxy; fwd=uri-miss; detail=uncacheable
        UNAUTHORIZED  webproxy; fwd=uri-miss; detail=unauthorized

    STALE is a stale entry served because the upstream failed: RFC 9211 ``hit`` means "not
    forwarded", so it is ``fwd=stale`` with the upstream's status (none after a timeout or
    refusal) and a negative ``ttl``. UNAUTHORIZED says ``uri-miss`` so the answer never
    tells a caller Finesse has not approved whether an entry exists. `detail` overrides the
    default detail; a value that is not an sf-token is sent as an sf-string.
    """
    params = ["hit"] if lookup is Lookup.HIT else [f"fwd={_FORWARD[lookup]}"]
    if fwd_status is not None and lookup is not Lookup.HIT:
        params.append(f"fwd-status={fwd_status}")
    if stored:
        params.append("stored")
    if ttl is not None:
        params.append(f"ttl={ttl}")
    detail = detail if detail is not None else _DETAIL.get(lookup)
    if detail is not None:
        params.append(f"detail={_sf_token_or_string(detail)}")
    return "; ".join((CACHE_NAME, *params))


def hit_status(ttl: int) -> str:
    """`cache_status(Lookup.HIT, ttl=ttl)`, built without the general machinery (hot path)."""
    return f"{CACHE_NAME}; hit; ttl={ttl}"


_FORWARD: Final = {
    Lookup.MISS: "miss",
    Lookup.BYPASS: "bypass",
    Lookup.STALE: "stale",
    Lookup.REVALIDATED: "stale",
    Lookup.UNCACHEABLE: "uri-miss",
    Lookup.UNAUTHORIZED: "uri-miss",
}
_DETAIL: Final = {
    Lookup.STALE: "stale-if-error",
    Lookup.UNCACHEABLE: "uncacheable",
    Lookup.UNAUTHORIZED: "unauthorized",
}


def _sf_token_or_string(value: str) -> str:
    if _TOKEN.fullmatch(value):
        return value
    printable = "".join(char for char in value if " " <= char <= "~")
    return '"' + printable.replace("\\", "\\\\").replace('"', '\\"') + '"'
