"""Policy: whether to store, freshness and age at their boundaries, Cache-Status values."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from multidict import CIMultiDict

from webproxy.cache.entry import CachedResponse
from webproxy.cache.policy import (
    Decision,
    Freshness,
    Lookup,
    StorageDecision,
    StorageReason,
    age,
    cache_status,
    decide_lookup,
    decide_storage,
    freshness,
    keep_time,
    parse_cache_control,
    remaining_ttl,
)
from webproxy.cache.rules import Resource, Scope

TTL = 300.0


def stored(ttl: float = TTL) -> StorageDecision:
    return StorageDecision(store=True, ttl=ttl, reason=StorageReason.STORED)


def refused(reason: StorageReason) -> StorageDecision:
    return StorageDecision(store=False, ttl=0.0, reason=reason)


@pytest.mark.parametrize(
    ("method", "status", "headers", "override", "request_range", "expected"),
    [
        ("GET", 200, {}, False, None, stored()),
        ("GET", 200, {"Content-Type": "application/xml"}, False, None, stored()),
        ("GET", 206, {}, False, "objects=1-6000", stored()),
        ("GET", 206, {}, False, None, refused(StorageReason.PARTIAL_WITHOUT_RANGE)),
        ("GET", 206, {}, False, "", refused(StorageReason.PARTIAL_WITHOUT_RANGE)),
        ("HEAD", 200, {}, False, None, refused(StorageReason.METHOD)),
        ("POST", 200, {}, True, None, refused(StorageReason.METHOD)),
        ("get", 200, {}, False, None, refused(StorageReason.METHOD)),
        ("GET", 201, {}, False, None, refused(StorageReason.STATUS)),
        ("GET", 204, {}, False, None, refused(StorageReason.STATUS)),
        ("GET", 304, {}, False, None, refused(StorageReason.STATUS)),
        ("GET", 401, {}, True, None, refused(StorageReason.STATUS)),
        ("GET", 404, {}, False, None, refused(StorageReason.STATUS)),
        ("GET", 416, {}, False, "objects=0-0", refused(StorageReason.STATUS)),
        ("GET", 503, {}, False, None, refused(StorageReason.STATUS)),
        (
            "GET",
            200,
            {"Set-Cookie": "JSESSIONID=1"},
            False,
            None,
            refused(StorageReason.SET_COOKIE),
        ),
        ("GET", 200, {"set-cookie": "a=b"}, True, None, refused(StorageReason.SET_COOKIE)),
        ("GET", 200, {"Vary": "*"}, True, None, refused(StorageReason.VARY_STAR)),
        ("GET", 200, {"Vary": "Accept, *"}, False, None, refused(StorageReason.VARY_STAR)),
        (
            "GET",
            200,
            {"Vary": "Authorization"},
            True,
            None,
            refused(StorageReason.VARY_CREDENTIALS),
        ),
        (
            "GET",
            200,
            {"vary": "accept,COOKIE"},
            False,
            None,
            refused(StorageReason.VARY_CREDENTIALS),
        ),
        ("GET", 200, {"Cache-Control": "no-store"}, False, None, refused(StorageReason.NO_STORE)),
        ("GET", 200, {"Cache-Control": "No-Store"}, False, None, refused(StorageReason.NO_STORE)),
        ("GET", 200, {"Cache-Control": "no-store"}, True, None, stored()),
        ("GET", 200, {"Cache-Control": "private"}, False, None, refused(StorageReason.PRIVATE)),
        ("GET", 200, {"Cache-Control": 'private="X"'}, False, None, refused(StorageReason.PRIVATE)),
        ("GET", 200, {"Cache-Control": "private"}, True, None, stored()),
        ("GET", 200, {"Cache-Control": "no-cache"}, False, None, refused(StorageReason.NO_CACHE)),
        ("GET", 200, {"Cache-Control": "no-cache"}, True, None, stored()),
        ("GET", 200, {"Cache-Control": "public, max-age=60"}, False, None, stored(60)),
        ("GET", 200, {"Cache-Control": "max-age=600"}, False, None, stored()),
        ("GET", 200, {"Cache-Control": "max-age=60, s-maxage=120"}, False, None, stored(120)),
        ("GET", 200, {"Cache-Control": "s-maxage=30, max-age=120"}, False, None, stored(30)),
        ("GET", 200, {"Cache-Control": 'max-age="45"'}, False, None, stored(45)),
        ("GET", 200, {"Cache-Control": "max-age=60, max-age=10"}, False, None, stored(10)),
        (
            "GET",
            200,
            {"Cache-Control": "max-age=0"},
            False,
            None,
            refused(StorageReason.MAX_AGE_ZERO),
        ),
        (
            "GET",
            200,
            {"Cache-Control": "s-maxage=0, max-age=60"},
            False,
            None,
            refused(StorageReason.MAX_AGE_ZERO),
        ),
        (
            "GET",
            200,
            {"Cache-Control": "max-age=soon"},
            False,
            None,
            refused(StorageReason.MAX_AGE_ZERO),
        ),
        (
            "GET",
            200,
            {"Cache-Control": "max-age=-5"},
            False,
            None,
            refused(StorageReason.MAX_AGE_ZERO),
        ),
        (
            "GET",
            200,
            {"Cache-Control": "max-age"},
            False,
            None,
            refused(StorageReason.MAX_AGE_ZERO),
        ),
        ("GET", 200, {"Cache-Control": "max-age=0"}, True, None, stored()),
        ("GET", 200, {"Cache-Control": 'ext="a, no-store", max-age=60'}, False, None, stored(60)),
        ("GET", 200, {"Cache-Control": ", ,public,"}, False, None, stored()),
        ("GET", 200, {"Expires": "Thu, 01 Jan 1970 00:00:00 GMT"}, False, None, stored()),
        ("GET", 200, {"Pragma": "no-cache"}, False, None, stored()),
        ("GET", 200, {}, False, None, stored()),
    ],
    ids=[
        "200",
        "200-with-headers",
        "206-with-range",
        "206-without-range",
        "206-with-empty-range",
        "head",
        "post-even-with-override",
        "lower-case-method",
        "201",
        "204",
        "304",
        "401",
        "404",
        "416",
        "503",
        "set-cookie",
        "set-cookie-even-with-override",
        "vary-star-even-with-override",
        "vary-star-in-list",
        "vary-authorization-even-with-override",
        "vary-cookie-any-case",
        "no-store",
        "no-store-any-case",
        "no-store-overridden",
        "private",
        "private-with-field-names",
        "private-overridden",
        "no-cache",
        "no-cache-overridden",
        "max-age-lowers-ttl",
        "max-age-never-raises-ttl",
        "s-maxage-wins-over-max-age",
        "s-maxage-wins-lower",
        "quoted-max-age",
        "repeated-max-age-takes-smallest",
        "max-age-0",
        "s-maxage-0",
        "invalid-max-age",
        "negative-max-age",
        "max-age-without-value",
        "max-age-0-overridden",
        "comma-inside-quotes",
        "empty-directives",
        "expires-ignored",
        "pragma-ignored",
        "no-headers",
    ],
)
def test_decide_storage(
    method: str,
    status: int,
    headers: Mapping[str, str],
    override: bool,
    request_range: str | None,
    expected: StorageDecision,
) -> None:
    decision = decide_storage(
        method, status, headers, ttl=TTL, override_upstream=override, request_range=request_range
    )
    assert decision == expected


def test_storage_reads_every_field_line_of_a_multidict() -> None:
    headers = CIMultiDict([("Cache-Control", "public"), ("Cache-Control", "no-store")])
    decision = decide_storage(
        "GET", 200, headers, ttl=TTL, override_upstream=False, request_range=None
    )
    assert decision == refused(StorageReason.NO_STORE)
    headers = CIMultiDict([("Vary", "Accept"), ("Vary", "Cookie")])
    decision = decide_storage(
        "GET", 200, headers, ttl=TTL, override_upstream=True, request_range=None
    )
    assert decision == refused(StorageReason.VARY_CREDENTIALS)


@pytest.mark.parametrize(
    ("vary", "expected"),
    [
        ("Accept", ()),
        ("Accept, Range", ()),
        ("Accept-Encoding", ("accept-encoding",)),
        ("Origin, accept-encoding, ORIGIN", ("accept-encoding", "origin")),
        (" , Accept-Language ,", ("accept-language",)),
    ],
    ids=["keyed-already", "both-keyed", "one", "sorted-deduplicated", "blank-items"],
)
def test_storage_lists_the_vary_headers_beyond_the_key(
    vary: str, expected: tuple[str, ...]
) -> None:
    decision = decide_storage(
        "GET", 200, {"Vary": vary}, ttl=TTL, override_upstream=False, request_range=None
    )
    assert decision.store
    assert decision.vary == expected


@pytest.mark.parametrize("ttl", [0.0, -1.0], ids=["zero", "negative"])
def test_storage_is_off_for_a_resource_with_no_ttl(ttl: float) -> None:
    decision = decide_storage("GET", 200, {}, ttl=ttl, override_upstream=True, request_range=None)
    assert decision == refused(StorageReason.DISABLED)


def test_storage_reasons_read_as_plain_strings() -> None:
    assert f"{StorageReason.STORED}|{StorageReason.MAX_AGE_ZERO}" == "stored|max-age=0"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["public, max-age=60"], {"public": None, "max-age": "60"}),
        (["Public, MAX-AGE=60"], {"public": None, "max-age": "60"}),
        (['no-cache="Set-Cookie, X"'], {"no-cache": "Set-Cookie, X"}),
        ([r'ext="a\"b,c", private'], {"ext": 'a"b,c', "private": None}),
        (["max-age = 5 "], {"max-age": "5"}),
        (["a", "b=1"], {"a": None, "b": "1"}),
        (["x=1, x=2"], {"x": "1"}),
        ([",,=1,"], {}),
    ],
    ids=[
        "simple",
        "case",
        "quoted-list",
        "escaped-quote",
        "spaces",
        "several-lines",
        "first-wins",
        "garbage",
    ],
)
def test_parse_cache_control(values: list[str], expected: dict[str, str | None]) -> None:
    assert parse_cache_control(values) == expected


def entry(stored_at: float = 1000.0, ttl: float = 300.0) -> CachedResponse:
    return CachedResponse(200, (), b"", stored_at, ttl, Scope(Resource.CHAT_CONFIG))


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (900.0, Freshness.FRESH),
        (1000.0, Freshness.FRESH),
        (1299.999, Freshness.FRESH),
        (1300.0, Freshness.STALE_USABLE),
        (1359.999, Freshness.STALE_USABLE),
        (1360.0, Freshness.EXPIRED),
        (99999.0, Freshness.EXPIRED),
    ],
    ids=[
        "stored-in-future",
        "just-stored",
        "last-fresh",
        "ttl",
        "last-usable",
        "window-end",
        "long-gone",
    ],
)
def test_freshness_boundaries(now: float, expected: Freshness) -> None:
    assert freshness(entry(), now, stale_if_error=60.0) is expected


def test_without_a_window_an_entry_expires_at_its_ttl() -> None:
    assert freshness(entry(), 1300.0, stale_if_error=0.0) is Freshness.EXPIRED


@pytest.mark.parametrize(
    ("now", "expected_age", "expected_ttl"),
    [
        (900.0, 0, 300),
        (1000.0, 0, 300),
        (1000.999, 0, 300),
        (1001.0, 1, 299),
        (1060.5, 60, 240),
        (1300.0, 300, 0),
        (1320.2, 320, -20),
    ],
    ids=["future", "zero", "under-a-second", "one", "sixty", "at-ttl", "stale"],
)
def test_age_and_remaining_ttl(now: float, expected_age: int, expected_ttl: int) -> None:
    assert age(entry(), now) == expected_age
    assert remaining_ttl(entry(), now) == expected_ttl


def test_keep_time_adds_the_window() -> None:
    assert keep_time(300.0, 60.0) == 360.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (cache_status(Lookup.HIT, ttl=240), "webproxy; hit; ttl=240"),
        (cache_status(Lookup.HIT, ttl=240, fwd_status=200), "webproxy; hit; ttl=240"),
        (cache_status(Lookup.MISS, stored=True), "webproxy; fwd=miss; stored"),
        (
            cache_status(Lookup.MISS, stored=True, fwd_status=200),
            "webproxy; fwd=miss; fwd-status=200; stored",
        ),
        (cache_status(Lookup.MISS, fwd_status=500), "webproxy; fwd=miss; fwd-status=500"),
        (cache_status(Lookup.BYPASS, stored=True), "webproxy; fwd=bypass; stored"),
        (
            cache_status(Lookup.STALE, fwd_status=503, ttl=-20),
            "webproxy; fwd=stale; fwd-status=503; ttl=-20; detail=stale-if-error",
        ),
        (
            cache_status(Lookup.STALE, detail="upstream-timeout"),
            "webproxy; fwd=stale; detail=upstream-timeout",
        ),
        (cache_status(Lookup.UNCACHEABLE), "webproxy; fwd=uri-miss; detail=uncacheable"),
        (
            cache_status(Lookup.UNAUTHORIZED, fwd_status=401),
            "webproxy; fwd=uri-miss; fwd-status=401; detail=unauthorized",
        ),
        (
            cache_status(Lookup.UNCACHEABLE, detail='non canonical "path"\n'),
            'webproxy; fwd=uri-miss; detail="non canonical \\"path\\""',
        ),
    ],
    ids=[
        "hit",
        "hit-ignores-fwd-status",
        "miss-stored",
        "miss-stored-with-status",
        "miss-not-stored",
        "bypass-stored",
        "stale",
        "stale-after-timeout",
        "uncacheable",
        "unauthorized",
        "detail-as-sf-string",
    ],
)
def test_cache_status(value: str, expected: str) -> None:
    assert value == expected


@pytest.mark.parametrize(
    ("stored", "allowed", "bypass", "vary_ok", "now", "expected"),
    [
        (True, True, False, True, 1000.0, Decision.HIT),
        (True, True, False, True, 1299.9, Decision.HIT),
        (True, True, False, True, 1300.0, Decision.MISS_STALE_OK),
        (True, True, False, True, 1359.9, Decision.MISS_STALE_OK),
        (True, True, False, True, 1360.0, Decision.MISS),
        (True, True, False, False, 1000.0, Decision.MISS),
        (False, True, False, True, 1000.0, Decision.MISS),
        (True, False, False, True, 1000.0, Decision.UNAUTHORIZED),
        (False, False, False, True, 1000.0, Decision.UNAUTHORIZED),
        (True, True, True, True, 1000.0, Decision.BYPASS),
        (True, False, True, True, 1000.0, Decision.BYPASS),
    ],
)
def test_decide_lookup(
    stored: bool, allowed: bool, bypass: bool, vary_ok: bool, now: float, expected: Decision
) -> None:
    found = entry() if stored else None
    decision = decide_lookup(
        found, allowed=allowed, bypass=bypass, vary_ok=vary_ok, now=now, stale_if_error=60.0
    )
    assert decision is expected


def test_decide_lookup_agrees_with_freshness() -> None:
    stored = entry()
    for now in (999.0, 1000.0, 1150.5, 1299.999, 1300.0, 1330.0, 1360.0, 5000.0):
        decision = decide_lookup(
            stored, allowed=True, bypass=False, vary_ok=True, now=now, stale_if_error=60.0
        )
        expected = {
            Freshness.FRESH: Decision.HIT,
            Freshness.STALE_USABLE: Decision.MISS_STALE_OK,
            Freshness.EXPIRED: Decision.MISS,
        }[freshness(stored, now, 60.0)]
        assert decision is expected, now
