"""The fast lane: fresh REST cache hits answered below aiohttp's request machinery.

`ClientProtocol` (webproxy.listener) offers it each read that arrives on an idle
kept-alive connection. When the read is exactly one complete, strictly formed, bodiless
`GET /finesse/api/...` over HTTP/1.1 whose answer is a fresh entry this caller may have,
the lane returns the whole answer, rendered once per entry (status line and stored
headers) and patched per hit (`Age`, `Cache-Status`, `Content-Length`; `Content-Type`,
`Date` and `Server` only when the entry lacks them), byte for byte what aiohttp would
send for the slow path's `answer_hit`. Anything else, and any request the lane is not
certain of, returns None and goes to aiohttp unchanged: pipelined or split requests,
HTTP/1.0, `Connection`, `Expect`, `Upgrade`, bodies, any repeated field, percent-encoding
or path parameters in the path, method-override fields, a bypass, a miss, an entry past
its TTL, a store that is not in this process (Redis without the local tier), the access
log switched on (the slow path writes its lines), a body over `answers.PACE`.

The checks are the slow path's own functions: `read_path`, `match_cached`, `key_of`,
`IdentityBook.grants` and `may_receive`, the store's entry, `vary_matches`, and the one
decision `policy.decide_lookup`. Counted as the slow path counts (lookups and requests),
in plain integers folded into the metrics at scrape time (`FastLane.fold`). Relies on
aiohttp's `rfc822_formatted_time` and `SERVER_SOFTWARE` and on `RequestHandler`'s state
(aiohttp is pinned in pyproject.toml).
"""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Final

from aiohttp.helpers import rfc822_formatted_time
from aiohttp.http import SERVER_SOFTWARE

from webproxy.answers import PACE
from webproxy.appkeys import Clock, LiveSettings, Services
from webproxy.cache.access import may_receive
from webproxy.cache.entry import CachedResponse
from webproxy.cache.keys import key_of, vary_matches, wants_bypass
from webproxy.cache.policy import Decision, Lookup, age, decide_lookup, remaining_ttl
from webproxy.cache.routing import read_path
from webproxy.cache.rules import API_PREFIX, Scope, match_cached
from webproxy.identities import IdentityBook
from webproxy.intake import BAD_PERCENT
from webproxy.metrics import Metrics

_HEAD: Final = re.compile(
    rb"GET (/[!-~]*) HTTP/1\.1\r\n"
    rb"((?:[!#$%&'*+.^_`|~0-9A-Za-z-]+:[ \t]*(?:[!-~](?:[ -~]*[!-~])?)?[ \t]*\r\n)+)\r\n"
)
"""One whole request head, strictly formed: the request line and field lines of visible
ASCII (a field value may hold spaces and tabs, not at its ends), nothing after it."""
#: Fields that make the slow path do something the lane does not: handed over.
_HANDED_OVER: Final = frozenset(
    {
        "connection",
        "content-length",
        "transfer-encoding",
        "expect",
        "upgrade",
        "te",
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
        "x-original-url",
        "x-rewrite-url",
        "sec-websocket-key1",  # aiohttp's parser refuses it (an old WebSocket handshake)
    }
)
MAX_FIELDS: Final = 64
"""More fields than this are handed over (aiohttp's parser refuses more than 128)."""
CRLF: Final = "\r\n"
ROUTES_KEPT: Final = 4096
"""Raw paths whose reading is remembered (`FastLane._route`)."""
HEADS_KEPT: Final = 4096
"""Rendered heads kept (one per entry served), dropped all at once past this."""

access_log = logging.getLogger("webproxy.access")


Peek = Callable[[str, Sequence[str]], CachedResponse | None]
"""A store's `peek`: the entry at once, from this process's memory (None: ask `get`)."""


@dataclass(frozen=True, slots=True)
class _Parts:
    live: LiveSettings
    peek: Peek | None  # None: the store holds nothing in this process (Redis alone)
    identities: IdentityBook
    clock: Clock


class FastLane:
    """Answers fresh hits from the app's objects; one per proxy app."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._heads: dict[int, _Head] = {}
        self.hits = 0  # answered here, in all
        self._counted: dict[tuple[str, int], int] = {}  # (resource, status): not yet in metrics
        self._parts: _Parts | None = None  # the app's objects, once it has started
        self._routes: dict[tuple[str, str], tuple[Scope, str] | None] = {}

    def answer(self, data: bytes) -> bytes | None:
        """The whole answer to `data` (one read), or None: hand it to aiohttp."""
        parts = self._parts or self._start()
        if parts.peek is None:
            return None
        settings = parts.live.current
        if (
            len(data) > settings.server.max_head_bytes
            or len(data) > settings.server.max_header_bytes  # so is every line of it
            or not settings.cache.enabled
            or (not access_log.disabled and access_log.isEnabledFor(logging.INFO))
        ):
            return None
        head = _HEAD.fullmatch(data)
        if head is None:
            return None
        target = head.group(1).decode("ascii")
        raw_path, _, query = target.partition("?")
        if not raw_path.startswith(API_PREFIX) or "%" in raw_path or ";" in raw_path:
            return None
        if "#" in target or ("%" in query and BAD_PERCENT.search(query) is not None):
            return None
        headers = _fields(head.group(2).decode("ascii"))
        if headers is None:
            return None
        authorization = headers.get("authorization")
        if authorization is None or "," in authorization or wants_bypass(query):
            return None
        cache = settings.cache
        cached = self._route(raw_path, cache.media_domain_path)
        if cached is None:
            return None
        scope, keyed_path = cached
        accept, ranges = headers.get("accept"), headers.get("range")
        key = key_of(
            keyed_path,
            query,
            [accept] if accept is not None else [],
            [ranges] if ranges is not None else [],
        )
        if len(key) > cache.max_key_bytes:
            return None
        entry = parts.peek(key, scope.counters)
        if entry is None or len(entry.body) > PACE:
            return None
        now = parts.clock()
        decision = decide_lookup(
            entry,
            allowed=may_receive(parts.identities.grants(authorization, scope), scope),
            bypass=False,
            vary_ok=vary_matches(entry.vary, headers),
            now=now,
            stale_if_error=cache.stale_if_error,
        )
        if decision is not Decision.HIT:
            return None
        answer = self._render(entry, now)
        if answer is None:
            return None
        self.hits += 1
        counted = (scope.label, entry.status)
        self._counted[counted] = self._counted.get(counted, 0) + 1
        return answer

    def _start(self) -> _Parts:
        """The services' objects, taken once the app has started (its store is made then)."""
        services = self._services
        store = getattr(services, "store", None)
        peek = getattr(store, "peek", None) if store is not None else None
        parts = _Parts(services.live, peek, services.identities, services.clock)
        if store is not None:
            self._parts = parts
        return parts

    def _route(self, raw_path: str, media_domain_path: str) -> tuple[Scope, str] | None:
        """`match_cached(read_path(raw_path))`, remembered per raw path (desktops ask a
        few dozen paths; the query, where `nocache` changes, is not part of it). Bounded:
        dropped all at once past `ROUTES_KEPT`."""
        memo = (raw_path, media_domain_path)
        if memo in self._routes:
            return self._routes[memo]
        path = read_path(raw_path)
        found = match_cached(path, media_domain_path=media_domain_path) if path else None
        if len(self._routes) >= ROUTES_KEPT:
            self._routes.clear()
        self._routes[memo] = found
        return found

    def fold(self, metrics: Metrics) -> None:
        """Put the hits counted since the last fold into `metrics` (at scrape time, and
        every few seconds in a worker group): plain integers on the hot path."""
        counted, self._counted = self._counted, {}
        for (resource, status), hits in counted.items():
            metrics.count_lookup(resource, Lookup.HIT, hits)
            metrics.count_request("api", status, hits)

    def _render(self, entry: CachedResponse, now: float) -> bytes | None:
        head = self._heads.get(id(entry))
        if head is None or head.entry() is not entry:
            if len(self._heads) >= HEADS_KEPT:
                self._heads.clear()
            head = self._heads[id(entry)] = _Head.of(entry)
        if not head.start:
            return None
        tail = (
            f"Age: {age(entry, now)}\r\n"
            f"Cache-Status: webproxy; hit; ttl={remaining_ttl(entry, now)}\r\n"
            f"{head.length}{head.content_type}"
            f"{'' if head.dated else f'Date: {rfc822_formatted_time()}{CRLF}'}{head.server}\r\n"
        )
        return b"".join((head.start, tail.encode("ascii"), entry.body))


@dataclass(frozen=True, slots=True)
class _Head:
    """What an entry's answers share: the status line and stored headers (`start`, b""
    when the lane must not serve it), and the fields aiohttp adds after `Cache-Status`."""

    entry: weakref.ref[CachedResponse]  # never keeps an entry the store let go of
    start: bytes
    length: str
    content_type: str
    dated: bool
    server: str

    @classmethod
    def of(cls, entry: CachedResponse) -> _Head:
        present = {name.lower() for name, _ in entry.headers}
        return cls(
            entry=weakref.ref(entry),
            start=_head(entry),
            length=f"Content-Length: {len(entry.body)}\r\n",
            content_type=(
                "Content-Type: application/octet-stream\r\n"
                if entry.body and "content-type" not in present
                else ""
            ),
            dated="date" in present,
            server="" if "server" in present else f"Server: {SERVER_SOFTWARE}\r\n",
        )


def _head(entry: CachedResponse) -> bytes:
    """The status line and the stored headers, as aiohttp writes them; b"" (never served
    here) for a status without a phrase or a header that is not printable ASCII."""
    try:
        reason = HTTPStatus(entry.status).phrase
    except ValueError:
        return b""
    lines = [f"HTTP/1.1 {entry.status} {reason}\r\n"]
    lines += [f"{name}: {value}\r\n" for name, value in entry.headers]
    head = "".join(lines)
    return head.encode("ascii") if head.isascii() else b""


def _fields(block: str) -> dict[str, str] | None:
    """The request's fields by lower-case name (their lines already checked by `_HEAD`),
    or None for anything the lane leaves to aiohttp: a repeated name, a field it hands
    over, more than `MAX_FIELDS`, no `Host`."""
    fields: dict[str, str] = {}
    lines = block.split("\r\n")[:-1]
    if len(lines) > MAX_FIELDS:
        return None
    for line in lines:
        name, _, value = line.partition(":")
        name = name.lower()
        if name in fields or name in _HANDED_OVER:
            return None
        fields[name] = value.strip(" \t")
    return fields if "host" in fields else None
