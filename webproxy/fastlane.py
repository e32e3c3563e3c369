"""The fast lane: fresh REST cache hits answered below aiohttp's request machinery.

`ClientProtocol` (webproxy.listener) offers it each read that arrives on an idle
kept-alive connection. When the read is exactly one complete, strictly formed, bodiless
`GET /finesse/api/...` over HTTP/1.1 whose answer is a fresh entry this caller may have,
the lane gives the whole answer, rendered once per entry (status line and stored
headers) and patched per hit (`Age`, `Cache-Status`, `Content-Length`; `Content-Type`,
`Date` and `Server` only when the entry lacks them), byte for byte what aiohttp would
send for the slow path's `answer_hit`; an entry's last answer is given again while its
`Age` second and aiohttp's `Date` string are the same. With the memory store or the
local tier the entry is read at once (`peek`) and the answer given at once; with Redis
alone the lane gives a `Reading`, which the protocol awaits (the store's `get`) before
writing its answer, or handing the request to aiohttp if there is none.

Anything else, and any request the lane is not certain of, goes to aiohttp unchanged:
pipelined or split requests, HTTP/1.0, `Connection` and `Proxy-Connection`, `Expect`,
`Upgrade`, bodies, a repeated `Host`, `Authorization`, `Accept` or `Range`, more than
`MAX_FIELDS` fields, percent-encoding or path parameters in the path, method-override
fields, a bypass, a miss, an entry past its TTL, a local tier that is not trusted, a
failing store, the access log switched on (the slow path writes its lines), a body over
`answers.PACE`.

The checks are the slow path's own functions: `read_path`, `match_cached`, `key_of`,
`IdentityBook.allows` (`access.may_receive`'s rule), the store's entry, `vary_matches`,
and the one decision `policy.decide_lookup`. Counted as the slow path counts (lookups and
requests), in plain integers folded into the metrics at scrape time (`FastLane.fold`).
Relies on aiohttp's `rfc822_formatted_time` (one string a second) and `SERVER_SOFTWARE`
and on `RequestHandler`'s state (aiohttp is pinned in pyproject.toml).
"""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Final

from aiohttp.helpers import rfc822_formatted_time
from aiohttp.http import SERVER_SOFTWARE
from multidict import CIMultiDict

from webproxy.answers import PACE
from webproxy.appkeys import Clock, LiveSettings, Services
from webproxy.cache.entry import CachedResponse
from webproxy.cache.keys import key_of, vary_matches, wants_bypass
from webproxy.cache.policy import Decision, Lookup, age, decide_lookup, remaining_ttl
from webproxy.cache.routing import read_path
from webproxy.cache.rules import API_PREFIX, Scope, match_cached
from webproxy.identities import IdentityBook
from webproxy.intake import BAD_PERCENT
from webproxy.metrics import Metrics
from webproxy.settings import Settings
from webproxy.stores.base import Found

_HEAD: Final = re.compile(
    rb"GET (" + re.escape(API_PREFIX.encode()) + rb"[!-~]*) HTTP/1\.1\r"
    rb"(\n(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t -~]*\r\n)+)\r\n"
)
"""One whole request head for the API, strictly formed: the request line and field lines
of visible ASCII, spaces and tabs, nothing after it. Its second group, the field lines,
starts with the request line's LF, so every field name follows a LF."""
_HANDED_OVER: Final = re.compile(
    rb"\n(?:connection|proxy-connection|content-length|transfer-encoding|expect|upgrade|te"
    rb"|x-http-method-override|x-http-method|x-method-override|x-original-url|x-rewrite-url"
    rb"|sec-websocket-key1):"  # aiohttp's parser refuses the last (an old WebSocket handshake)
)
"""Fields (in the lower-cased field lines) that make the slow path do something the lane
does not: handed over (aiohttp's parser reads `Proxy-Connection` as `Connection`)."""
_READ: Final = re.compile(rb"\n(host|authorization|accept|range):[ \t]*([^\r]*)", re.IGNORECASE)
"""The fields the lane reads: name (in any case) and value (trailing blanks not yet dropped)."""
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
Get = Callable[[str, Sequence[str]], Awaitable[Found[CachedResponse]]]
"""A store's `get`."""
Reading = Coroutine[Any, Any, bytes | None]
"""The answer, once the store has read the entry (None: hand the request to aiohttp)."""


@dataclass(frozen=True, slots=True)
class _Parts:
    live: LiveSettings
    peek: Peek | None  # None: the store holds nothing in this process (Redis alone)
    get: Get | None  # the store's `get`, for Redis alone
    identities: IdentityBook
    clock: Clock


@dataclass(frozen=True, slots=True)
class _Gate:
    """What the lane reads of the settings in force, taken once per settings object."""

    settings: Settings
    max_bytes: int  # a longer read is handed over; -1 while the cache is off
    max_key_bytes: int
    media_domain_path: str
    stale_if_error: float

    @classmethod
    def of(cls, settings: Settings) -> _Gate:
        server, cache = settings.server, settings.cache
        return cls(
            settings,
            min(server.max_head_bytes, server.max_header_bytes) if cache.enabled else -1,
            cache.max_key_bytes,
            cache.media_domain_path,
            cache.stale_if_error,
        )


class FastLane:
    """Answers fresh hits from the app's objects; one per proxy app."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._heads: dict[int, _Head] = {}
        self.hits = 0  # answered here, in all
        self._counted: dict[tuple[str, int], int] = {}  # (resource, status): not yet in metrics
        self._parts: _Parts | None = None  # the app's objects, once it has started
        self._gate: _Gate | None = None
        self._routes: dict[str, tuple[Scope, str] | None] = {}
        self._routes_for = ""  # the media domain path the routes were read with

    def answer(self, data: bytes) -> bytes | Reading | None:
        """The whole answer to `data` (one read); or, for a store whose entries are not in
        this process (Redis alone), the read that will give it (None then too: hand the
        request to aiohttp); or None: hand it to aiohttp now."""
        parts = self._parts or self._start()
        if parts.peek is None and parts.get is None:
            return None
        gate = self._gate
        if gate is None or gate.settings is not parts.live.current:
            gate = self._gate = _Gate.of(parts.live.current)
        if len(data) > gate.max_bytes or access_log.isEnabledFor(logging.INFO):
            return None  # (the slow path writes the access log's lines)
        head = _HEAD.fullmatch(data)
        if head is None:
            return None
        target = head.group(1).decode("ascii")
        raw_path, _, query = target.partition("?")
        if "%" in raw_path or ";" in raw_path or "#" in query:
            return None
        if "%" in query and BAD_PERCENT.search(query) is not None:
            return None
        fields = head.group(2)
        if fields.count(b"\n") > MAX_FIELDS + 1 or _HANDED_OVER.search(fields.lower()) is not None:
            return None
        read: dict[bytes, bytes] = {}
        for name, value in _READ.findall(fields):
            name = name.lower()
            if name in read:
                return None  # sent twice
            read[name] = value.rstrip(b" \t")
        authorization = read.get(b"authorization")
        if b"host" not in read or authorization is None or b"," in authorization:
            return None
        if wants_bypass(query):
            return None
        accept, ranges = read.get(b"accept"), read.get(b"range")
        cached = self._route(raw_path, gate.media_domain_path)
        if cached is None:
            return None
        scope, keyed_path = cached
        key = key_of(
            keyed_path,
            query,
            [] if accept is None else [accept.decode("ascii")],
            [] if ranges is None else [ranges.decode("ascii")],
        )
        if len(key) > gate.max_key_bytes:
            return None
        credential = authorization.decode("ascii")
        if parts.peek is not None:
            return self._serve(parts, scope, credential, fields, parts.peek(key, scope.counters))
        if not parts.identities.allows(credential, scope):
            return None  # (not worth a read: asked again once it is done)
        return self._read(parts, scope, key, credential, fields)

    async def _read(
        self, parts: _Parts, scope: Scope, key: str, authorization: str, fields: bytes
    ) -> bytes | None:
        """The answer once the store has read the entry; None on a failure of the store
        (the ordinary path meets it again and answers for it)."""
        assert parts.get is not None  # (a store has `peek` or `get`: see `answer`)
        try:
            found = await parts.get(key, scope.counters)
        except Exception:  # StoreUnavailable, or anything: the ordinary path answers for it
            return None
        return self._serve(parts, scope, authorization, fields, found.value)

    def _serve(
        self,
        parts: _Parts,
        scope: Scope,
        authorization: str,
        fields: bytes,
        entry: CachedResponse | None,
    ) -> bytes | None:
        """The answer from `entry`, if the one decision says HIT; counted as a hit.
        `fields` are the request's field lines, for an entry that varies on more fields."""
        gate = self._gate
        if entry is None or len(entry.body) > PACE or gate is None:
            return None
        now = parts.clock()
        decision = decide_lookup(
            entry,
            allowed=parts.identities.allows(authorization, scope),
            bypass=False,
            vary_ok=not entry.vary or _vary_matches(entry, fields),
            now=now,
            stale_if_error=gate.stale_if_error,
        )
        if decision is not Decision.HIT:
            return None
        head_of = self._heads.get(id(entry))
        if head_of is None or head_of.entry() is not entry:
            head_of = self._head(entry, scope)
        answer = head_of.answer(entry, now)
        if answer is None:
            return None
        self.hits += 1
        counted = self._counted
        counted[head_of.counted] = counted.get(head_of.counted, 0) + 1
        return answer

    def _start(self) -> _Parts:
        """The services' objects, taken once the app has started (its store is made then)."""
        services = self._services
        store = getattr(services, "store", None)
        peek = getattr(store, "peek", None) if store is not None else None
        get = store.get if store is not None and peek is None else None
        parts = _Parts(services.live, peek, get, services.identities, services.clock)
        if store is not None:
            self._parts = parts
        return parts

    def _route(self, raw_path: str, media_domain_path: str) -> tuple[Scope, str] | None:
        """`match_cached(read_path(raw_path))`, remembered per raw path (desktops ask a
        few dozen paths; the query, where `nocache` changes, is not part of it). Bounded:
        dropped all at once past `ROUTES_KEPT`, and when the media domain path changes."""
        routes = self._routes
        if media_domain_path != self._routes_for:
            routes.clear()
            self._routes_for = media_domain_path
        try:
            return routes[raw_path]
        except KeyError:
            pass
        path = read_path(raw_path)
        found = match_cached(path, media_domain_path=media_domain_path) if path else None
        if len(routes) >= ROUTES_KEPT:
            routes.clear()
        routes[raw_path] = found
        return found

    def _head(self, entry: CachedResponse, scope: Scope) -> _Head:
        heads = self._heads
        if len(heads) >= HEADS_KEPT:
            heads.clear()
        head = heads[id(entry)] = _Head(entry, scope.label)
        return head

    def fold(self, metrics: Metrics) -> None:
        """Put the hits counted since the last fold into `metrics` (at scrape time, and
        every few seconds in a worker group): plain integers on the hot path."""
        counted, self._counted = self._counted, {}
        for (resource, status), hits in counted.items():
            metrics.count_lookup(resource, Lookup.HIT, hits)
            metrics.count_request("api", status, hits)


class _Head:
    """One entry's answers: the status line and stored headers rendered once (`start`, b""
    when the lane must not serve it), and the last whole answer, which stays right for a
    second at most (its `Age`, `Cache-Status` ttl and `Date` change by the second)."""

    __slots__ = (
        "_age",
        "_answer",
        "_date",
        "content_type",
        "counted",
        "dated",
        "entry",
        "length",
        "server",
        "start",
    )

    def __init__(self, entry: CachedResponse, label: str) -> None:
        present = {name.lower() for name, _ in entry.headers}
        self.entry = weakref.ref(entry)  # never keeps an entry the store let go of
        self.counted = (label, entry.status)
        self.start = _start_of(entry)
        self.length = f"Content-Length: {len(entry.body)}\r\n"
        self.content_type = (
            "Content-Type: application/octet-stream\r\n"
            if entry.body and "content-type" not in present
            else ""
        )
        self.dated = "date" in present
        self.server = "" if "server" in present else f"Server: {SERVER_SOFTWARE}\r\n"
        self._age = -1
        self._date = ""
        self._answer = b""

    def answer(self, entry: CachedResponse, now: float) -> bytes | None:
        """The whole answer at `now`: the last one again within its second."""
        if not self.start:
            return None
        seconds = age(entry, now)
        date = "" if self.dated else rfc822_formatted_time()
        if seconds == self._age and date is self._date:  # aiohttp keeps one string a second
            return self._answer
        dated = f"Date: {date}{CRLF}" if date else ""
        tail = (
            f"Age: {seconds}\r\n"
            f"Cache-Status: webproxy; hit; ttl={remaining_ttl(entry, now)}\r\n"
            f"{self.length}{self.content_type}{dated}{self.server}\r\n"
        )
        answer = b"".join((self.start, tail.encode("ascii"), entry.body))
        self._age, self._date, self._answer = seconds, date, answer
        return answer


def _start_of(entry: CachedResponse) -> bytes:
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


def _vary_matches(entry: CachedResponse, fields: bytes) -> bool:
    """`vary_matches` for an entry that varies on more fields (rare: it reads them all)."""
    headers: list[tuple[str, str]] = []
    for line in fields[1:].decode("ascii").split("\r\n")[:-1]:  # (they start with a LF)
        name, _, value = line.partition(":")
        headers.append((name, value.strip(" \t")))
    return vary_matches(entry.vary, CIMultiDict(headers))
