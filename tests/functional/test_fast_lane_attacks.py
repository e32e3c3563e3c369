"""Attacks on the fast lane (`webproxy.fastlane`) from outside, through raw sockets.

Each test sends the same bytes to a proxy with the lane on and to its twin with the lane
off (the slow path is the reference) and asks that they answer alike, or that the lane
leaves the connection, the other clients and the process as the slow path would. Both
twins share one manual clock, so `Age` and `Cache-Status: ttl=` agree; only `Date` (the
wall clock) is left out of comparisons. A test that fails here is a finding.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
import sys
from dataclasses import replace
from functools import partial

import pytest

from tests.conftest import AGENT, ManualClock, Proxy, Sim, basic
from tests.functional.finesse import eventually, sign_in
from tests.functional.rawhttp import (
    AUTH,
    CHAT,
    CODES,
    LANE,
    SLOW,
    Connect,
    Start,
    both,
    hits_of,
    manager_of,
    request,
    status_of,
    without_date,
)
from tests.functional.test_shared_redis import on_redis
from webproxy.appkeys import services_key
from webproxy.listener import ClientProtocol
from webproxy.logs import live_levels
from webproxy.stores.memory import MemoryStore

# --- parsing: what aiohttp refuses, the lane must refuse ---------------------------------


async def test_a_head_with_more_fields_than_aiohttp_takes_is_refused_as_the_slow_path_does(
    fast: Proxy, slow: Proxy, connect: Connect
) -> None:
    """aiohttp's parser takes at most 128 fields (`max_headers`) and answers 400 past it;
    the lane hands over any head of more than `fastlane.MAX_FIELDS`."""
    many = "".join(f"X-F{i}: v\r\n" for i in range(130))
    lane, reference = await both(fast, slow, connect, request(extra=many))
    assert status_of(reference) == 400  # aiohttp's own answer (an HTTP/1.0 status line)
    assert status_of(lane) == status_of(reference)
    assert hits_of(fast) == 1  # `both`'s plain hit alone


async def test_an_old_websocket_key_field_is_refused_as_the_slow_path_does(
    fast: Proxy, slow: Proxy, connect: Connect
) -> None:
    """aiohttp refuses `Sec-WebSocket-Key1` (the hixie-76 handshake) with 400 at parse."""
    lane, reference = await both(fast, slow, connect, request(extra="Sec-WebSocket-Key1: 1\r\n"))
    assert status_of(reference) == 400  # aiohttp's own answer (an HTTP/1.0 status line)
    assert status_of(lane) == status_of(reference)
    assert hits_of(fast) == 1  # `both`'s plain hit alone


ODD_HEADS: dict[str, bytes] = {
    "lower-case-get": request(line=f"get {CODES} HTTP/1.1"),
    "http-1.10": request(line=f"GET {CODES} HTTP/1.10"),
    "http-1.0": request(line=f"GET {CODES} HTTP/1.0"),
    "http-1.0-keep-alive": request(
        line=f"GET {CODES} HTTP/1.0", extra="Connection: keep-alive\r\n"
    ),
    "absolute-form": request(line=f"GET http://finesse{CODES} HTTP/1.1"),
    "double-slash-front": request("/" + CODES),
    "double-slash-inside": request(CODES.replace("/5000/", "//5000/")),
    "dot-dot": request("/finesse/api/TeamResource/9/../5000/ReasonCodes?category=NOT_READY"),
    "dot": request("/finesse/api/TeamResource/./5000/ReasonCodes?category=NOT_READY"),
    "percent-2e": request("/finesse/api/TeamResource/%2e/5000/ReasonCodes?category=NOT_READY"),
    "percent-path": request(CODES.replace("Codes", "C%6fdes")),
    "path-parameter": request(CODES.replace("?", ";jsessionid=x?")),
    "fragment": request(CODES + "#x"),
    "bad-percent-query": request(CODES + "&x=%zz"),
    "upper-case-path": request(CODES.replace("ReasonCodes", "reasoncodes")),
    "obs-fold": request(extra="X-Fold: a\r\n b\r\n"),
    "bare-lf-head": request().replace(b"\r\n", b"\n"),
    "bare-lf-one-line": request(extra="X-A: 1\nX-B: 2\r\n"),
    "cr-alone": request(extra="X-A: 1\rX-B: 2\r\n"),
    "nul-in-value": request(extra="X-A: a\x00b\r\n"),
    "tab-in-value": request(extra="X-A: a\tb\r\n"),
    "space-before-colon": request(extra="Accept : text/xml\r\n"),
    "odd-name": request(extra="X(A): 1\r\n"),
    "no-host": request(host=""),
    "two-hosts": request(extra="Host: other\r\n"),
    "two-hosts-of-two-cases": request(extra="host: finesse\r\n"),
    "chunked": request(extra="Transfer-Encoding: chunked\r\n") + b"0\r\n\r\n",
    "content-length-0": request(extra="Content-Length: 0\r\n"),
    "content-length-plus": request(extra="Content-Length: +0\r\n"),
    "content-length-upper": request(extra="CONTENT-LENGTH: 0\r\n"),
    "connection-close": request(extra="Connection: close\r\n"),
    "te-trailers": request(extra="TE: trailers\r\n"),
    "two-accepts-of-two-cases": request(extra="accept: text/xml\r\n"),
    "accept-odd-whitespace": request().replace(b"Accept: */*", b"Accept:\t */* \t"),
    "range": request(extra="Range: bytes=0-10\r\n"),
    "range-of-two-cases": request(extra="Range: bytes=0-1\r\nrange: bytes=2-3\r\n"),
    "two-auths-of-two-cases": request(extra=f"authorization: {AUTH}\r\n"),
    "auth-with-comma": request(auth=f"{AUTH}, Basic eA=="),
    "auth-with-whitespace": request(auth=f" \t{AUTH}\t "),
    "auth-empty": request(auth=""),
    "auth-lower-scheme": request(auth=AUTH.replace("Basic", "basic")),
    "method-override": request(extra="X-HTTP-Method-Override: DELETE\r\n"),
    "original-url": request(extra="X-Original-URL: /finesse/api/ChatConfig\r\n"),
    "bypass": request(CODES + "&bypassServerCache=TRUE"),
    "nocache": request(CODES + "&nocache=123"),
    "leading-crlf": b"\r\n" + request(),
    "long-value": request(extra=f"X-Long: {'v' * 7000}\r\n"),
    "upgrade": request(extra="Upgrade: websocket\r\nConnection: Upgrade\r\n"),
    "expect": request(extra="Expect: 100-continue\r\n"),
}


@pytest.mark.parametrize("data", ODD_HEADS.values(), ids=ODD_HEADS.keys())
async def test_odd_heads_are_answered_as_the_slow_path_answers_them(
    fast: Proxy, slow: Proxy, connect: Connect, data: bytes
) -> None:
    lane, reference = await both(fast, slow, connect, data)
    assert without_date(lane) == without_date(reference)


# --- desync: the lane never answers while aiohttp holds part of a message -----------------


async def test_a_body_that_looks_like_a_hit_is_a_body(
    fast: Proxy, slow: Proxy, connect: Connect
) -> None:
    """A write whose head comes alone, then a read that is exactly a lane GET: that read
    is the write's body (Content-Length), never a request of its own."""
    smuggled = request(CHAT)
    head = (
        f"POST /finesse/api/Dialogs HTTP/1.1\r\nHost: f\r\nAuthorization: {AUTH}\r\n"
        f"Content-Type: text/plain\r\nContent-Length: {len(smuggled)}\r\n\r\n"
    ).encode()
    answers = []
    for proxy in (fast, slow):
        conn = await connect(proxy)
        await conn.send(head)
        await eventually(partial(_busy, proxy))
        await conn.send(smuggled)
        answers.append(await conn.answer())
    assert b"webproxy; hit" not in answers[0]
    assert answers[0].split(b"\r\n")[0] == answers[1].split(b"\r\n")[0]
    assert hits_of(fast) == 0


async def test_a_chunked_body_ending_in_a_blank_line_is_not_a_boundary(
    fast: Proxy, connect: Connect
) -> None:
    """A chunk whose data ends with CRLF CRLF: the read after it is still the body."""
    conn = await connect(fast)
    head = (
        f"POST /finesse/api/Dialogs HTTP/1.1\r\nHost: f\r\nAuthorization: {AUTH}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    await conn.send(head)
    await eventually(lambda: any(c.busy for c in _protocols(fast)))
    await conn.send(b"4\r\n\r\n\r\n\r\n")
    inner = request(CHAT)
    await conn.send(f"{len(inner):x}\r\n".encode() + inner)  # chunk data: a whole GET head
    await conn.send(b"\r\n0\r\n\r\n")
    answer = await conn.answer()
    assert b"webproxy; hit" not in answer
    assert hits_of(fast) == 0


async def test_a_request_after_a_body_ends_at_a_head_boundary_is_served_in_order(
    fast: Proxy, connect: Connect
) -> None:
    """A GET with a Content-Length body whose last bytes are a blank line, in one read."""
    conn = await connect(fast)
    body = b"\r\n\r\n"
    await conn.send(request(extra=f"Content-Length: {len(body)}\r\n") + body)
    first = await conn.answer()
    await conn.send(request(CHAT))
    second = await conn.answer()
    assert b"<ReasonCodes" in first and b"<ChatConfig>" in second


async def test_pipelined_hits_with_a_partial_third_keep_their_order(
    fast: Proxy, connect: Connect
) -> None:
    conn = await connect(fast)
    third = request(CODES)
    await conn.send(request(CHAT) + request(CODES) + third[:30])
    answers = [await conn.answer() for _ in range(2)]
    await conn.send(third[30:])
    answers.append(await conn.answer())
    assert [b"<ChatConfig>" in a for a in answers] == [True, False, False]
    assert all(b"webproxy; hit" in a for a in answers)
    assert hits_of(fast) == 0


async def test_a_request_split_at_its_blank_line_goes_to_aiohttp(
    fast: Proxy, connect: Connect
) -> None:
    whole = request()
    conn = await connect(fast)
    await conn.send(whole[:-2])
    await eventually(lambda: any(c._head_bytes for c in _protocols(fast)))
    await conn.send(whole[-2:])
    assert b"webproxy; hit" in await conn.answer()
    assert hits_of(fast) == 0


# --- credentials ---------------------------------------------------------------------


async def test_a_credential_finesse_just_refused_gets_nothing_from_the_lane(
    fast: Proxy, sim: Sim, connect: Connect
) -> None:
    conn = await connect(fast)
    await conn.send(request())
    assert b"webproxy; hit" in await conn.answer()
    sim.sim.set_password("10001", "changed")
    await conn.send(request("/finesse/api/User/10001"))  # Finesse: 401, the proxy forgets
    assert (await conn.answer()).startswith(b"HTTP/1.1 401 ")
    await conn.send(request())
    answer = await conn.answer()
    assert b"webproxy; hit" not in answer and answer.startswith(b"HTTP/1.1 401 ")
    assert hits_of(fast) == 1


async def test_another_teams_agent_gets_nothing_from_the_lane(
    fast: Proxy, connect: Connect
) -> None:
    await sign_in(fast, "11001")  # a member of another team: known, but not of team 5000
    conn = await connect(fast)
    await conn.send(request(auth=basic("11001")["Authorization"]))
    assert b"webproxy; hit" not in await conn.answer()
    assert hits_of(fast) == 0


# --- purges, clears, settings changed live --------------------------------------------


@pytest.mark.parametrize("how", ["clear", "purge-write"])
async def test_nothing_stale_after_a_clear_or_a_purge(
    fast: Proxy, connect: Connect, how: str
) -> None:
    conn = await connect(fast)
    await conn.send(request(CHAT))
    assert b"webproxy; hit" in await conn.answer()
    if how == "clear":
        assert (await fast.admin.post("/admin/cache/clear")).status == 200
        await sign_in(fast, "10001")  # a full clear may forget identities
    else:
        admin = basic("admin")["Authorization"]
        body = b"<ChatConfig><primaryNode>https://n.example.com:5280</primaryNode></ChatConfig>"
        head = f"PUT {CHAT} HTTP/1.1\r\nHost: f\r\nAuthorization: {admin}\r\n"
        await conn.send(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        assert (await conn.answer()).startswith(b"HTTP/1.1 2")
    await conn.send(request(CHAT))
    assert b"webproxy; fwd=" in await conn.answer()
    assert hits_of(fast) == 1


async def test_redis_with_the_local_tier_serves_nothing_stale_after_a_write(
    start_twin: Start, connect: Connect, redis_url: str, redis_prefix: str
) -> None:
    store = on_redis(redis_url, redis_prefix, local_max_bytes=1 << 20, local_ttl=60.0)
    proxy = await start_twin(LANE, store=store)
    await proxy.client.get(CHAT, headers=AGENT)  # a read through the tier keeps a copy
    conn = await connect(proxy)
    await conn.send(request(CHAT))
    assert b"webproxy; hit" in await conn.answer()
    admin = basic("admin")["Authorization"]
    body = b"<ChatConfig><primaryNode>https://r.example.com:5280</primaryNode></ChatConfig>"
    head = f"PUT {CHAT} HTTP/1.1\r\nHost: f\r\nAuthorization: {admin}\r\n"
    await conn.send(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
    assert (await conn.answer()).startswith(b"HTTP/1.1 2")
    before = hits_of(proxy)
    await conn.send(request(CHAT))
    answer = await conn.answer()
    assert b"webproxy; fwd=miss" in answer and b"r.example.com" in answer
    assert hits_of(proxy) == before


async def test_cache_disabled_live_turns_the_lane_off(fast: Proxy, connect: Connect) -> None:
    live = fast.app[services_key].live
    settings = live.current
    live.current = replace(settings, cache=replace(settings.cache, enabled=False))
    conn = await connect(fast)
    await conn.send(request())
    answer = await conn.answer()
    assert b"webproxy; hit" not in answer and b"<ReasonCodes" in answer
    assert hits_of(fast) == 0


async def test_the_access_log_switched_on_live_sends_hits_to_the_slow_path(
    fast: Proxy, connect: Connect
) -> None:
    access, root = logging.getLogger("webproxy.access"), logging.getLogger()
    saved = (access.level, access.disabled, root.level, live_levels.current)
    conn = await connect(fast)
    try:
        put = await fast.admin.put("/admin/log", json={"access_log_level": "info"})
        assert put.status == 200
        await conn.send(request())
        assert b"webproxy; hit" in await conn.answer()
        assert hits_of(fast) == 0  # the slow path writes the access line
        put = await fast.admin.put("/admin/log", json={"access_log_level": "off"})
        assert put.status == 200
        await conn.send(request())
        assert b"webproxy; hit" in await conn.answer()
        assert hits_of(fast) == 1
    finally:
        access.setLevel(saved[0])
        access.disabled = saved[1]
        root.setLevel(saved[2])
        live_levels.current = saved[3]


# --- what a lane answer says, and what it counts --------------------------------------


async def test_lane_answers_and_counts_match_the_slow_path_over_time(
    fast: Proxy, slow: Proxy, connect: Connect, clock: ManualClock
) -> None:
    one, other = await connect(fast), await connect(slow)
    base_fast = await (await fast.admin.get("/admin/cache")).json()
    base_slow = await (await slow.admin.get("/admin/cache")).json()
    for step in (0, 7, 30, 200):
        clock.advance(step)
        for target in (CODES, CHAT):
            await one.send(request(target))
            await other.send(request(target))
            assert without_date(await one.answer()) == without_date(await other.answer())
    after_fast = await (await fast.admin.get("/admin/cache")).json()
    after_slow = await (await slow.admin.get("/admin/cache")).json()
    assert after_fast["hits"] - base_fast["hits"] == after_slow["hits"] - base_slow["hits"]
    assert after_fast["misses"] - base_fast["misses"] == after_slow["misses"] - base_slow["misses"]
    scrape_fast = await (await fast.admin.get("/metrics")).text()
    scrape_slow = await (await slow.admin.get("/metrics")).text()
    assert _requests(scrape_fast) == _requests(scrape_slow)


def _requests(scrape: str) -> list[str]:
    return sorted(
        line for line in scrape.splitlines() if line.startswith("webproxy_requests_total{")
    )


# --- the connection, its clocks and its limits ----------------------------------------


async def test_the_head_timer_runs_again_after_a_lane_answer(
    start_twin: Start, connect: Connect
) -> None:
    proxy = await start_twin({**LANE, "client_header_timeout": 0.3})
    conn = await connect(proxy)
    await conn.send(request())
    assert b"webproxy; hit" in await conn.answer()
    await conn.send(request()[:25])  # then a head that never ends
    answer = await conn.answer()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert await conn.closed()


async def test_a_connection_over_the_limit_gets_no_lane_answer(
    start_twin: Start, connect: Connect
) -> None:
    proxy = await start_twin({**LANE, "max_client_connections": 4})
    manager = manager_of(proxy)
    answers = []
    for _ in range(8):
        conn = await connect(proxy)
        with contextlib.suppress(ConnectionError):
            await conn.send(request())
        answers.append(await conn.answer())
        if answers[-1].startswith(b"HTTP/1.1 503 "):
            break
    assert answers[-1].startswith(b"HTTP/1.1 503 ")
    assert hits_of(proxy) == sum(b"webproxy; hit" in a for a in answers)
    assert len(manager.connections) <= 5


async def test_a_client_that_never_reads_holds_a_bounded_buffer_and_is_cut_off(
    start_twin: Start, clock: ManualClock
) -> None:
    """Many single-request reads, never an answer read: the proxy's send buffer stays
    about one answer over the high-water mark, and `send_timeout` aborts the connection."""
    proxy = await start_twin({**LANE, "send_timeout": 0.5})
    server = proxy.client.server
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    others = set(_protocols(proxy))  # the test client's own kept-alive connection
    await loop.sock_connect(sock, (server.host, server.port))
    one = request()
    biggest = 0
    try:
        for _ in range(4000):
            try:
                await asyncio.wait_for(loop.sock_sendall(sock, one), 2)
            except (ConnectionError, TimeoutError):
                break
            await asyncio.sleep(0)  # one read each, when the proxy keeps up
            for protocol in _protocols(proxy):
                if protocol.transport is not None:
                    biggest = max(biggest, protocol.transport.get_write_buffer_size())
        assert biggest < 4 * 64 * 1024
        hits = hits_of(proxy)
        await eventually(lambda: set(_protocols(proxy)) <= others, within=10)
        assert hits > 0  # (the lane did answer some of them)
    finally:
        sock.close()


# --- memory the lane holds ------------------------------------------------------------


@pytest.mark.parametrize("server", [LANE, SLOW], ids=["lane", "slow"])
async def test_a_cleared_entry_is_not_kept_alive_by_the_lane(
    start_twin: Start, connect: Connect, server: dict[str, object]
) -> None:
    """The lane's rendered heads hold their entries (up to `HEADS_KEPT` = 4096 of them,
    each up to 64 KiB): entries the store has dropped (cleared, purged, evicted past
    `store.max_bytes`) stay in memory, outside the store's budget."""
    proxy = await start_twin(server)
    conn = await connect(proxy)
    for i in range(20):  # distinct keys, each stored and then served
        target = f"{CODES}&x={i}"
        for _ in range(2):
            await conn.send(request(target))
            assert (await conn.answer()).startswith(b"HTTP/1.1 200 ")
    store = proxy.app[services_key].store
    assert isinstance(store, MemoryStore)
    entries = [held.value for key, held in store._cache.items() if "&x=" in key]
    assert len(entries) == 20
    cleared = await proxy.admin.post("/admin/cache/clear", params={"resource": "TeamResource"})
    assert cleared.status == 200
    for i in range(20):  # read again: the store drops each cleared entry, and refills
        await conn.send(request(f"{CODES}&x={i}"))
        again = await conn.answer()
        assert (_field(again, b"Cache-Status") or b"").startswith(b"webproxy; fwd=miss")
    gc.collect()
    # this list's reference and getrefcount's argument: no other holder left
    held = [i for i in range(len(entries)) if sys.getrefcount(entries[i]) > 2]
    assert held == []


def _field(answer: bytes, name: bytes) -> bytes | None:
    for line in answer.split(b"\r\n\r\n")[0].split(b"\r\n"):
        field, _, value = line.partition(b":")
        if field.lower() == name.lower():
            return value.strip()
    return None


def _busy(proxy: Proxy) -> bool:
    return any(c.busy for c in _protocols(proxy))


def _protocols(proxy: Proxy) -> list[ClientProtocol]:
    return [c for c in manager_of(proxy).connections if isinstance(c, ClientProtocol)]
