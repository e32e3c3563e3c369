"""The HTTP caches' decisions (RFC 9111), pure: Finesse's desktop, shindig and authmode caches.

These caches hold what Finesse gives *anyone*: an entry is only ever filled by a request
that carries no credential (no `Authorization`, no `Cookie`), so serving it to any caller
reveals nothing Finesse would not tell a stranger. What they cover (`http_cache_for`):

- `desktop`: the container page `/desktop/container/`, and files under `/desktop/` and
  `/3rdpartygadget/files/` whose name ends in a static extension (`STATIC_EXTENSIONS`);
  never `/desktop/api/` or `/desktop/sso/` (the desktop's JSON APIs and sign-in).
- `shindig`: gadget definitions `/gadgets/ifr` and resources `/gadgets/concat`,
  `/gadgets/js/...`, keyed by the whole query; a request with a security token (`st=`) or
  an `Authorization` is passed through, never shared. `makeRequest` and `proxy` are not
  covered (they are forwarded as any other path).
- `authmode`: `/finesse/api/UserAuthMode` (which needs no credential), one entry per query,
  so per user name.

The key is the cache's name, the path as Finesse reads it, the query without `nocache`
and `bypassServerCache` (sorted by name, as the REST cache's), the request's
`Accept-Encoding` normalised to `gzip` or nothing, and on authmode its `Accept` (Finesse's
REST layer answers JSON or XML by it): exactly what the fill sends besides the target
(`fill_fields`), so nothing a client sends reaches Finesse without reaching the key.
Finesse's gzip and identity variants never meet, and browsers' many spellings of
`Accept-Encoding` share one entry. An answer that names other headers in `Vary` is kept
with the values the fill sent (none), and served only to callers that send none either;
`Vary: *`, `Cookie` or `Authorization` is not stored.

A target with a path parameter (`;jsessionid=...`: Tomcat's session in the URL) holds a
credential as surely as a `Cookie` does, so it is passed through.

A request's own `Cache-Control` (a browser's reload) is ignored, as nginx and Varnish do
by default: on these paths the refresh controls are Finesse's, `nocache` (desktop and
shindig: no value, or any value but `0`) and `bypassServerCache=true` (every cache).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Final
from urllib.parse import unquote_plus

from webproxy.cache.keys import canonical_query, wants_bypass
from webproxy.cache.policy import delta_seconds, parse_cache_control
from webproxy.cache.rules import CacheName

STATIC_EXTENSIONS: Final = frozenset(
    {
        "css", "eot", "gif", "htm", "html", "ico", "jpeg", "jpg", "js", "json", "map",
        "png", "properties", "svg", "ttf", "txt", "woff", "woff2", "xml",
    }
)  # fmt: skip
"""File name endings the desktop cache covers (lower case)."""

CONTAINER_PAGE: Final = "/desktop/container/"
_DESKTOP_PREFIXES: Final = ("/desktop/", "/3rdpartygadget/files/")
_NEVER_DESKTOP: Final = ("/desktop/api/", "/desktop/sso/")
_SHINDIG_PATHS: Final = frozenset({"/gadgets/ifr", "/gadgets/concat"})
_SHINDIG_PREFIX: Final = "/gadgets/js/"
AUTH_MODE_PATH: Final = "/finesse/api/UserAuthMode"

#: Request fields a fill sends upstream as the client sent them, per cache (besides the
#: normalised Accept-Encoding and a revalidation's validators); each is in the key.
_FILL_FIELDS: Final = {
    CacheName.DESKTOP: frozenset[str](),
    CacheName.SHINDIG: frozenset[str](),
    CacheName.AUTHMODE: frozenset({"accept"}),
}
#: Request fields that mean the caller holds a credential.
CREDENTIAL_FIELDS: Final = ("Authorization", "Cookie")
#: Response fields a 304 carries from the entry (RFC 9110 15.4.5).
NOT_MODIFIED_FIELDS: Final = frozenset(
    {"cache-control", "content-location", "date", "etag", "expires", "last-modified", "vary"}
)
#: Response fields a 304 from Finesse does not update in the entry (RFC 9111 3.2).
_KEPT_ON_304: Final = frozenset({"content-length", "content-encoding", "content-type"})


def http_cache_for(path: str) -> CacheName | None:
    """Which HTTP cache covers the (canonical) `path`, if any."""
    if path.startswith(_DESKTOP_PREFIXES):
        if path.startswith(_NEVER_DESKTOP):
            return None
        if path == CONTAINER_PAGE:
            return CacheName.DESKTOP
        name = path.rpartition("/")[2]
        extension = name.rpartition(".")[2].lower() if "." in name else ""
        return CacheName.DESKTOP if extension in STATIC_EXTENSIONS else None
    if path in _SHINDIG_PATHS or (path.startswith(_SHINDIG_PREFIX) and len(path) > 12):
        return CacheName.SHINDIG
    if path == AUTH_MODE_PATH:
        return CacheName.AUTHMODE
    return None


def fill_fields(cache: CacheName) -> frozenset[str]:
    return _FILL_FIELDS[cache]


def passes(cache: CacheName, raw_path: str, query: str, headers: Mapping[str, str]) -> bool:
    """Forwarded as sent and never shared: a range request, a path parameter (a session
    in the URL), and on shindig anything with a security token (`st=`, its name decoded
    as Shindig decodes it) or an `Authorization` (the rendering is the viewer's)."""
    if "Range" in headers or ";" in raw_path:
        return True
    if cache is CacheName.SHINDIG:
        return "Authorization" in headers or _has_param(query, "st")
    return False


def holds_credential(headers: Mapping[str, str]) -> bool:
    return any(name in headers for name in CREDENTIAL_FIELDS)


def wants_refresh(cache: CacheName, query: str) -> bool:
    """Fetch from Finesse and refresh the entry: `bypassServerCache=true` anywhere; on the
    desktop and shindig caches also `nocache` with no value or any value but `0`."""
    if wants_bypass(query):
        return True
    if cache is CacheName.AUTHMODE or "nocache" not in query:
        return False
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name == "nocache" and value != "0":
            return True
    return False


def normal_encoding(accept_encoding: str | None) -> str:
    """`gzip` when the request accepts gzip (q above 0), else "" (identity)."""
    if not accept_encoding or "gzip" not in accept_encoding.lower():
        return ""
    for item in accept_encoding.split(","):
        coding, _, params = item.partition(";")
        if coding.strip().lower() not in ("gzip", "x-gzip"):
            continue
        name, _, value = params.strip().partition("=")
        if name.strip().lower() != "q":
            return "gzip"
        try:
            return "gzip" if float(value) > 0 else ""
        except ValueError:
            return ""
    return ""


def http_key(
    cache: CacheName, path: str, query: str, encoding: str, headers: Mapping[str, str]
) -> str | None:
    """The cache's name, path and query, then a line each for the encoding and every
    `fill_fields` value (`-` when absent); None when any part is not printable ASCII or a
    field comes twice (such a request is passed through, never keyed)."""
    parts = [f"{cache} {path}?{canonical_query(query)}", encoding]
    getall = getattr(headers, "getall", None)
    for name in sorted(_FILL_FIELDS[cache]):
        values: list[str] = getall(name, []) if getall is not None else _values(headers, name)
        if len(values) > 1:
            return None
        parts.append(f"+{values[0]}" if values else "-")
    if not all(part.isascii() and part.isprintable() for part in parts):
        return None
    return "\n".join(parts)


def _values(headers: Mapping[str, str], name: str) -> list[str]:
    return [value for key, value in headers.items() if key.lower() == name]


class HttpStorageReason(StrEnum):
    STORED = "stored"
    STATUS = "status"
    SET_COOKIE = "set-cookie"
    VARY_STAR = "vary-star"
    VARY_CREDENTIALS = "vary-credentials"
    NO_STORE = "no-store"
    PRIVATE = "private"
    NO_VALIDATOR = "no-cache-without-validator"


@dataclass(frozen=True, slots=True)
class HttpStorage:
    """Whether to store an answer, fresh for how long, since how long (its `Age`)."""

    store: bool
    reason: HttpStorageReason
    ttl: float = 0.0  # 0: stored, but revalidated before every use
    age: float = 0.0  # the age the answer already had upstream
    vary: tuple[str, ...] = ()  # lower-case request fields to match, Accept-Encoding aside


def decide_http_storage(
    status: int, headers: Iterable[tuple[str, str]], *, default_ttl: float, now: float
) -> HttpStorage:
    """RFC 9111 3 and 4.2.1 for a shared cache: a 200 is stored unless it sets a cookie,
    varies on `*` or a credential, or says `no-store` or `private`. Fresh for `s-maxage`,
    else `max-age`, else `Expires` minus `Date`, else `default_ttl`. `no-cache` (or a
    lifetime of 0) stores it for revalidation only, which needs a validator (`ETag` or
    `Last-Modified`); without one there is nothing to keep.
    """
    if status != 200:
        return HttpStorage(False, HttpStorageReason.STATUS)
    cache_control: list[str] = []
    vary: list[str] = []
    fields: dict[str, str] = {}
    for name, value in headers:
        lowered = name.lower()
        if lowered == "set-cookie":
            return HttpStorage(False, HttpStorageReason.SET_COOKIE)
        if lowered == "cache-control":
            cache_control.append(value)
        elif lowered == "vary":
            vary.extend(item.strip().lower() for item in value.split(",") if item.strip())
        else:
            fields.setdefault(lowered, value)
    if "*" in vary:
        return HttpStorage(False, HttpStorageReason.VARY_STAR)
    if {"authorization", "cookie"}.intersection(vary):
        return HttpStorage(False, HttpStorageReason.VARY_CREDENTIALS)
    directives = parse_cache_control(cache_control)
    if "no-store" in directives:
        return HttpStorage(False, HttpStorageReason.NO_STORE)
    if "private" in directives:
        return HttpStorage(False, HttpStorageReason.PRIVATE)
    ttl = _lifetime(directives, fields, default_ttl, now)
    if "no-cache" in directives:
        ttl = 0.0
    if ttl <= 0 and "etag" not in fields and "last-modified" not in fields:
        return HttpStorage(False, HttpStorageReason.NO_VALIDATOR)
    varied = tuple(sorted(set(vary) - {"accept-encoding"}))
    age = float(delta_seconds(fields.get("age", "0")))
    return HttpStorage(True, HttpStorageReason.STORED, max(0.0, ttl), age, varied)


def _lifetime(
    directives: Mapping[str, str | None], fields: Mapping[str, str], default: float, now: float
) -> float:
    for name in ("s-maxage", "max-age"):
        if name in directives:
            return float(delta_seconds(directives[name]))
    if "expires" in fields:
        expires = _http_date(fields["expires"])
        if expires is None:
            return 0.0  # an invalid Expires means already expired (RFC 9111 5.3)
        date = _http_date(fields.get("date", "")) or now
        return max(0.0, expires - date)
    return default


def may_serve_stale(headers: Iterable[tuple[str, str]]) -> bool:
    """False when the answer forbids serving it stale (`must-revalidate`,
    `proxy-revalidate`, `no-cache`, `s-maxage`: RFC 9111 5.2.2), or it was withdrawn
    (`no-store`, `private`: see `WITHDRAWN`)."""
    directives = parse_cache_control(
        value for name, value in headers if name.lower() == "cache-control"
    )
    return not _NEVER_STALE & directives.keys()


_NEVER_STALE: Final = frozenset(
    {"must-revalidate", "proxy-revalidate", "no-cache", "s-maxage", "no-store", "private"}
)
WITHDRAWN: Final = (("Cache-Control", "no-store"),)
"""The headers of an entry Finesse took back (a 304 that made it `private`, say): it
stands under its key with no body and no validator, never fresh and never servable stale,
until a fill replaces it."""


def validators(headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The conditional request fields that revalidate an entry with these headers."""
    found: list[tuple[str, str]] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == "etag":
            found.append(("If-None-Match", value))
        elif lowered == "last-modified":
            found.append(("If-Modified-Since", value))
    return tuple(found)


def refreshed_headers(
    stored: Iterable[tuple[str, str]], fresh: Iterable[tuple[str, str]]
) -> tuple[tuple[str, str], ...]:
    """RFC 9111 4.3.4: the entry's headers updated by a 304's (each field the 304 sends
    replaces the stored one; the body's own fields stay the entry's)."""
    updates: dict[str, list[tuple[str, str]]] = {}
    for name, value in fresh:
        lowered = name.lower()
        if lowered not in _KEPT_ON_304:
            updates.setdefault(lowered, []).append((name, value))
    kept = [(name, value) for name, value in stored if name.lower() not in updates]
    return (*kept, *(pair for pairs in updates.values() for pair in pairs))


def not_modified(request: Mapping[str, str], headers: Iterable[tuple[str, str]]) -> bool:
    """RFC 9110 13.2.2: may this GET be answered 304 from an entry with these headers?
    `If-None-Match` (weak comparison, `*`, lists) decides when present; otherwise
    `If-Modified-Since` against the entry's `Last-Modified`."""
    if_none_match = request.get("If-None-Match")
    since = request.get("If-Modified-Since")
    if if_none_match is None and since is None:
        return False
    etag = last_modified = None
    for name, value in headers:
        lowered = name.lower()
        if lowered == "etag":
            etag = value.strip()
        elif lowered == "last-modified":
            last_modified = value
    if if_none_match is not None:
        tags = [tag.strip() for tag in if_none_match.split(",")]
        if "*" in tags:
            return True
        return etag is not None and _opaque(etag) in (_opaque(tag) for tag in tags)
    assert since is not None
    modified, asked = _http_date(last_modified or ""), _http_date(since)
    return modified is not None and asked is not None and modified <= asked


def not_modified_headers(headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((name, value) for name, value in headers if name.lower() in NOT_MODIFIED_FIELDS)


def _opaque(tag: str) -> str:
    return tag.removeprefix("W/")


def _http_date(value: str) -> float | None:
    try:
        moment = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return moment if math.isfinite(moment) else None


def _has_param(query: str, name: str) -> bool:
    """Is `name` a parameter of `query`, its names decoded as a servlet decodes them?"""
    return any(unquote_plus(pair.partition("=")[0]) == name for pair in query.split("&"))
