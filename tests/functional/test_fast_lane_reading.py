"""Attacks on the fast lane's reading of a head (`webproxy.fastlane`): the four fields it
reads in one pass (names like them, odd spellings, many fields), entries that vary on
other fields, and an entry's last answer reused within its second. Each sends the same
bytes to a proxy with the lane on and to its twin with it off (the slow path is the
reference), on one manual clock, and compares the answers without `Date`."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from tests.conftest import AGENT, ManualClock, Proxy, ProxyFactory, basic, settings_for
from tests.functional.finesse import sign_in
from tests.functional.rawhttp import (
    AUTH,
    CHAT,
    CODES,
    LANE,
    SLOW,
    Connect,
    Connection,
    Start,
    both,
    hits_of,
    request,
    without_date,
)
from webproxy.appkeys import services_key


def head(*fields: str, target: str = CODES) -> bytes:
    """A GET of `target` with exactly `fields` (each "Name: value"), in that order."""
    lines = "".join(f"{field}\r\n" for field in fields)
    return f"GET {target} HTTP/1.1\r\n{lines}\r\n".encode()


HOST, CREDENTIAL, ANY = "Host: finesse", f"Authorization: {AUTH}", "Accept: */*"


# --- the four fields, read in one pass: names, cases, blanks, values ----------------------

NEAR_NAMES = [
    "X-Host: other",
    "Hosts: other",
    "Host-Name: other",
    "Authorization2: Basic eA==",
    "X-Authorization: Basic eA==",
    "Proxy-Authorization: Basic eA==",
    "Authorizations: Basic eA==",
    "Accept-Encoding: gzip",
    "Accept-Language: fr",
    "Accepts: text/xml",
    "X-Accept: text/xml",
    "If-Range: x",
    "Content-Range: bytes 0-1/2",
    "X-Range: bytes=0-1",
    "Ranges: bytes=0-1",
    "Proxy-Connection: keep-alive",
    "Connection2: close",
    "X-Connection: close",
    "Keep-Alive: 5",
    "Teapot: 1",
    "Tea: 1",
    "Upgrade-Insecure-Requests: 1",
    "Expect-CT: x",
    "Content-Length2: 5",
    "X-Content-Length: 5",
    "Transfer-Encoding2: chunked",
    "X-Http-Method-Override2: DELETE",
]


@pytest.mark.parametrize("near", NEAR_NAMES)
@pytest.mark.parametrize("where", ["first", "middle", "last"])
async def test_a_field_named_like_one_the_lane_reads_is_answered_as_the_slow_path(
    fast: Proxy, slow: Proxy, connect: Connect, near: str, where: str
) -> None:
    """A name with one of the read or handed-over names as its prefix or suffix, before,
    between or after the fields the lane reads."""
    fields = {
        "first": (near, HOST, CREDENTIAL, ANY),
        "middle": (HOST, near, CREDENTIAL, ANY),
        "last": (HOST, CREDENTIAL, ANY, near),
    }[where]
    lane, reference = await both(fast, slow, connect, head(*fields))
    assert without_date(lane) == without_date(reference)


@pytest.mark.parametrize("where", ["first", "last"])
async def test_proxy_connection_close_closes_as_the_slow_path_does(
    fast: Proxy, slow: Proxy, connect: Connect, where: str
) -> None:
    fields = [HOST, CREDENTIAL, ANY]
    fields.insert(0 if where == "first" else 3, "Proxy-Connection: close")
    data = head(*fields)
    one, other = await connect(fast), await connect(slow)
    answers, closed = [], []
    for conn in (one, other):
        await conn.send(request())  # a plain hit first: the connection kept alive, idle
        assert b"webproxy; hit" in await conn.answer()
        await conn.send(data)
        answers.append(await conn.answer())
        closed.append(await _closed_soon(conn))
    lane, reference = answers
    assert closed == [True, True]
    assert without_date(lane) == without_date(reference)


async def _closed_soon(conn: Connection) -> bool:
    """True once the proxy closes the connection; False if it answers one more request."""
    try:
        await conn.send(request())
    except ConnectionError:
        return True
    return await conn.answer() == b""


SPELLED: dict[str, tuple[str, ...]] = {
    "upper-case-names": ("HOST: finesse", f"AUTHORIZATION: {AUTH}", "ACCEPT: */*"),
    "lower-case-names": ("host: finesse", f"authorization: {AUTH}", "accept: */*"),
    "mixed-case-names": ("hOsT: finesse", f"AuThOrIzAtIoN: {AUTH}", "aCcEpT: */*"),
    "no-blank-after-colons": ("Host:finesse", f"Authorization:{AUTH}", "Accept:*/*"),
    "tabs-around-values": ("Host:\tfinesse\t", f"Authorization:\t{AUTH}\t", "Accept:\t*/*\t"),
    "many-blanks": ("Host:   finesse   ", f"Authorization: \t \t{AUTH} \t ", "Accept:  */*  "),
    "tab-inside-accept": (HOST, CREDENTIAL, "Accept: */*;\tq=1"),
    "space-inside-accept": (HOST, CREDENTIAL, "Accept: */* ; q=1"),
    "empty-host": ("Host:", CREDENTIAL, ANY),
    "blank-host": ("Host: \t ", CREDENTIAL, ANY),
    "host-with-port": ("Host: finesse:8443", CREDENTIAL, ANY),
    "host-ipv6": ("Host: [::1]:80", CREDENTIAL, ANY),
    "host-with-colons": ("Host: a:b:c", CREDENTIAL, ANY),
    "host-with-space": ("Host: fin esse", CREDENTIAL, ANY),
    "host-with-comma": ("Host: finesse, other", CREDENTIAL, ANY),
    "host-with-userinfo": ("Host: user@finesse", CREDENTIAL, ANY),
    "host-last": (CREDENTIAL, ANY, HOST),
    "host-between": (CREDENTIAL, HOST, ANY),
    "empty-accept": (HOST, CREDENTIAL, "Accept:"),
    "blank-accept": (HOST, CREDENTIAL, "Accept: \t"),
    "no-accept": (HOST, CREDENTIAL),
    "accept-with-colon": (HOST, CREDENTIAL, "Accept: */*:x"),
    "accept-with-colons-only": (HOST, CREDENTIAL, "Accept: ::"),
    "empty-range": (HOST, CREDENTIAL, ANY, "Range:"),
    "range-with-colon": (HOST, CREDENTIAL, ANY, "Range: bytes=0-1:2"),
    "empty-authorization-and-blank": (HOST, "Authorization:  ", ANY),
    "authorization-scheme-upper": (HOST, CREDENTIAL.replace("Basic", "BASIC"), ANY),
    "authorization-two-spaces": (HOST, CREDENTIAL.replace("Basic ", "Basic  "), ANY),
    "authorization-tab-inside": (HOST, CREDENTIAL.replace("Basic ", "Basic\t"), ANY),
    "authorization-token-lower": (HOST, f"Authorization: Basic {AUTH[6:].lower()}", ANY),
    "authorization-colon-in-token": (HOST, CREDENTIAL + ":", ANY),
    "authorization-padding-dropped": (HOST, CREDENTIAL.rstrip("="), ANY),
    "repeated-other-field": (HOST, CREDENTIAL, ANY, "X-A: 1", "X-A: 2"),
    "repeated-cookie": (HOST, CREDENTIAL, ANY, "Cookie: a=1", "Cookie: b=2"),
    "value-looks-like-a-field": (HOST, CREDENTIAL, ANY, "X-A: x\tHost: other"),
    "value-holds-a-read-name": (HOST, CREDENTIAL, ANY, "X-A: accept: text/xml"),
    "empty-field-value": (HOST, CREDENTIAL, ANY, "X-A:"),
    "one-char-names": (HOST, CREDENTIAL, ANY, "A: 1", "H: 2", "R: 3"),
}


@pytest.mark.parametrize("fields", SPELLED.values(), ids=SPELLED.keys())
async def test_the_read_fields_spelled_oddly_are_answered_as_the_slow_path(
    fast: Proxy, slow: Proxy, connect: Connect, fields: tuple[str, ...]
) -> None:
    lane, reference = await both(fast, slow, connect, head(*fields))
    assert without_date(lane) == without_date(reference)


@pytest.mark.parametrize("fields", [60, 61, 62, 63, 64, 65, 100, 127, 128])
async def test_heads_of_many_fields_are_answered_as_the_slow_path(
    fast: Proxy, slow: Proxy, connect: Connect, fields: int
) -> None:
    """Around the lane's own limit (64 fields) and aiohttp's (128)."""
    extra = [f"X-F{i}: v" for i in range(fields - 3)]
    lane, reference = await both(fast, slow, connect, head(HOST, CREDENTIAL, ANY, *extra))
    assert without_date(lane) == without_date(reference)
    assert hits_of(fast) == (2 if fields <= 64 else 1)  # `both`'s plain hit, and this one


QUERIES = {
    **{f"nocache-{ch}": f"?nocache={ch}" for ch in '{}|\\^"<>`[]'},
    "nocache-bare": "?nocache",
    "nocache-empty": "?nocache=",
    "empty-pairs": "?&&",
    "empty-query": "?",
    "bypass-false": "?bypassServerCache=false",
    "bypass-name-case": "?BypassServerCache=true",
    "question-in-query": "?nocache=?",
    "percent-ok-in-ignored": "?nocache=%41",
    "percent-bad-in-ignored": "?nocache=%4",
}


@pytest.mark.parametrize("query", QUERIES.values(), ids=QUERIES.keys())
async def test_targets_whose_key_drops_the_query_are_answered_as_the_slow_path(
    fast: Proxy, slow: Proxy, connect: Connect, query: str
) -> None:
    """Ignored parameters and empty pairs leave the stored key: whatever else the query
    holds, the lane answers only what aiohttp and the slow path would answer alike."""
    lane, reference = await both(
        fast, slow, connect, head(HOST, CREDENTIAL, ANY, target=CHAT + query)
    )
    assert without_date(lane) == without_date(reference)


# --- Vary: the lane reads every field of the head ---------------------------------------


async def varying_upstream(aiohttp_server: AiohttpServer) -> str:
    """A tiny Finesse whose ChatConfig varies on `X-Variant`; its answers numbered."""
    served = itertools.count(1)

    async def chat(request: web.Request) -> web.Response:
        body = f"<ChatConfig><n>{next(served)}</n></ChatConfig>".encode()
        headers = {"Vary": "X-Variant", "Content-Type": "application/xml"}
        return web.Response(body=body, headers=headers)

    app = web.Application()
    app.router.add_get(CHAT, chat)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
def start_varying(
    aiohttp_server: AiohttpServer, start_proxy: ProxyFactory, clock: ManualClock
) -> Start:
    """A proxy in front of its own varying upstream, its credential approved for ChatConfig
    and the entry for a request without `X-Variant` stored."""

    async def start_one(server: dict[str, object]) -> Proxy:
        upstream = await varying_upstream(aiohttp_server)
        proxy = await start_proxy(settings_for(upstream, server=server), clock)
        for ending in ("stored; detail=unauthorized", "hit; ttl=300"):  # approved by a 2xx
            response = await proxy.client.get(CHAT, headers=AGENT)
            assert response.headers["Cache-Status"].endswith(ending)
        return proxy

    return start_one


VARIED: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "sent-first-stored-absent": (None, ("X-Variant: b", HOST, CREDENTIAL, ANY)),
    "sent-later-stored-absent": (None, (HOST, "X-Variant: b", CREDENTIAL, ANY)),
    "sent-twice-first-differs": ("a", ("X-Variant: b", HOST, CREDENTIAL, ANY, "X-Variant: a")),
    "sent-as-stored": ("a", (HOST, CREDENTIAL, ANY, "X-Variant: a")),
    "sent-first-as-stored": ("a", ("X-Variant: a", HOST, CREDENTIAL, ANY)),
}


@pytest.mark.parametrize(
    ("stored", "fields"),
    [pytest.param(stored, fields, id=name) for name, (stored, fields) in VARIED.items()],
)
async def test_a_varying_entry_is_served_only_to_the_same_values_wherever_they_are_sent(
    start_varying: Start, connect: Connect, stored: str | None, fields: tuple[str, ...]
) -> None:
    """The entry was stored for a request with `X-Variant: <stored>` (None: without it);
    each twin has its own upstream, which numbers its answers."""
    answers = []
    for server in (LANE, SLOW):
        proxy = await start_varying(server)
        if stored is not None:  # store the variant `stored` instead
            response = await proxy.client.get(CHAT, headers={**AGENT, "X-Variant": stored})
            assert response.headers["Cache-Status"].endswith("stored")
        conn = await connect(proxy)
        await conn.send(head(*fields, target=CHAT))
        answers.append(await conn.answer())
    lane, reference = answers
    assert without_date(lane) == without_date(reference)


# --- an entry's last answer, reused within its second ----------------------------------


async def pair(fast: Proxy, slow: Proxy, connect: Connect) -> Callable[[bytes], Awaitable[bytes]]:
    """Send to both twins on kept-alive connections; assert alike; give the lane's answer."""
    one, other = await connect(fast), await connect(slow)

    async def send(data: bytes) -> bytes:
        await one.send(data)
        await other.send(data)
        lane, reference = await one.answer(), await other.answer()
        assert without_date(lane) == without_date(reference)
        return lane

    return send


async def test_a_second_accept_in_the_same_second_gets_its_own_entry(
    fast: Proxy, slow: Proxy, connect: Connect
) -> None:
    for proxy in (fast, slow):
        response = await proxy.client.get(CODES, headers={**AGENT, "Accept": "application/xml"})
        assert response.headers["Cache-Status"].endswith("stored")
    send = await pair(fast, slow, connect)
    star = await send(head(HOST, CREDENTIAL, ANY))
    xml = await send(head(HOST, CREDENTIAL, "Accept: application/xml"))
    again = await send(head(HOST, CREDENTIAL, ANY))
    assert b"webproxy; hit" in star and b"webproxy; hit" in xml
    assert without_date(again) == without_date(star)
    assert hits_of(fast) == 3


async def test_another_teams_agent_right_after_a_lane_hit_gets_no_reused_answer(
    fast: Proxy, slow: Proxy, connect: Connect
) -> None:
    for proxy in (fast, slow):
        await sign_in(proxy, "11001")
    send = await pair(fast, slow, connect)
    assert b"webproxy; hit" in await send(head(HOST, CREDENTIAL, ANY))
    other = f"Authorization: {basic('11001')['Authorization']}"
    assert b"webproxy; hit" in await send(head(HOST, other, ANY, target=CHAT))  # global: theirs
    assert b"webproxy; hit" not in await send(head(HOST, other, ANY))
    assert hits_of(fast) == 2


async def test_an_entry_replaced_in_the_same_second_is_served_as_the_new_one(
    fast: Proxy, slow: Proxy, connect: Connect
) -> None:
    """A write purges ChatConfig; the next read stores the new body within the same
    second (the clock stands still): the lane's answer is the new entry's, not the old
    entry's reused render."""
    send = await pair(fast, slow, connect)
    before = await send(head(HOST, CREDENTIAL, ANY, target=CHAT))
    assert b"webproxy; hit" in before
    admin = basic("admin")["Authorization"]
    body = b"<ChatConfig><primaryNode>https://z.example.com:5280</primaryNode></ChatConfig>"
    put = f"PUT {CHAT} HTTP/1.1\r\nHost: f\r\nAuthorization: {admin}\r\n"
    written = await send(f"{put}Content-Length: {len(body)}\r\n\r\n".encode() + body)
    assert written.startswith(b"HTTP/1.1 2")
    refilled = await send(head(HOST, CREDENTIAL, ANY, target=CHAT))
    assert b"webproxy; fwd=miss" in refilled and b"z.example.com" in refilled
    after = await send(head(HOST, CREDENTIAL, ANY, target=CHAT))
    assert b"webproxy; hit" in after and b"z.example.com" in after
    assert hits_of(fast) == 2


async def test_a_purge_through_the_admin_between_two_hits_is_seen(
    fast: Proxy, slow: Proxy, connect: Connect
) -> None:
    send = await pair(fast, slow, connect)
    assert b"webproxy; hit" in await send(head(HOST, CREDENTIAL, ANY))
    for proxy in (fast, slow):
        cleared = await proxy.admin.post("/admin/cache/clear", params={"resource": "TeamResource"})
        assert cleared.status == 200
    assert b"webproxy; fwd=miss" in await send(head(HOST, CREDENTIAL, ANY))
    assert b"webproxy; hit" in await send(head(HOST, CREDENTIAL, ANY))
    assert hits_of(fast) == 2


@pytest.mark.parametrize(
    "steps",
    [
        (0.4, 0.4, 0.19, 0.01, 0.5),  # over a second's edge, in small steps
        (0.999999, 0.000001),
        (299.5, 0.4, 0.1),  # to the end of the TTL (300 s) and past it
    ],
    ids=["second-edge", "just-over", "ttl-end"],
)
async def test_answers_reused_within_a_second_follow_the_clock(
    fast: Proxy, slow: Proxy, connect: Connect, clock: ManualClock, steps: tuple[float, ...]
) -> None:
    send = await pair(fast, slow, connect)
    for step in steps:
        clock.advance(step)
        for target in (CODES, CHAT, CODES):
            await send(head(HOST, CREDENTIAL, ANY, target=target))


async def test_a_settings_change_between_two_hits_is_answered_as_the_slow_path(
    fast: Proxy, slow: Proxy, connect: Connect, clock: ManualClock
) -> None:
    """What a reload may change (TTLs, the stale-if-error window), swapped between two
    hits of one second, then the cache turned off and on again."""
    send = await pair(fast, slow, connect)
    assert b"webproxy; hit" in await send(head(HOST, CREDENTIAL, ANY))
    for proxy in (fast, slow):
        live = proxy.app[services_key].live
        cache = live.current.cache
        ttl = {**cache.ttl, "TeamResource": 1.0}
        changed = replace(cache, stale_if_error=0.0, ttl=ttl)
        live.current = replace(live.current, cache=changed)
    assert b"webproxy; hit" in await send(head(HOST, CREDENTIAL, ANY))
    clock.advance(2.0)  # stored for 300 s: the entry's own TTL holds
    assert b"webproxy; hit" in await send(head(HOST, CREDENTIAL, ANY))
    for enabled in (False, True):
        for proxy in (fast, slow):
            live = proxy.app[services_key].live
            live.current = replace(live.current, cache=replace(live.current.cache, enabled=enabled))
        await send(head(HOST, CREDENTIAL, ANY))
