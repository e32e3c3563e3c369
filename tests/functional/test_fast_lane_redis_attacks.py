"""Attacks on the fast lane on the Redis store alone (`webproxy.fastlane`, `listener`):
what reaches a connection, the other clients and the process while the lane's read of
the store is out.

Redis is reached through a relay the test stalls and releases (`tests.redisrelay`), so
the read is held out deterministically. Where it makes sense the same bytes go to a
proxy with the lane off (the slow path is the reference), one after the other on the
shared relay, and the two must answer alike; only `Date` is left out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import replace
from functools import partial

import pytest

from tests.conftest import ADMIN, AGENT, ManualClock, Proxy, ProxyFactory, Sim, settings_for
from tests.functional.finesse import eventually
from tests.functional.rawhttp import (
    CHAT,
    CODES,
    Connect,
    Connection,
    RedisStart,
    hits_of,
    manager_of,
    request,
    status_of,
    without_date,
)
from tests.redisrelay import StallRelay
from webproxy.appkeys import services_key
from webproxy.config import Secret
from webproxy.listener import CANCEL_WAIT, ClientProtocol

LANE_OR_SLOW = pytest.mark.parametrize("lane", [True, False], ids=["lane", "slow"])
MISS = f"{CODES}&x=never-stored"


def _protocols(proxy: Proxy) -> list[ClientProtocol]:
    return [c for c in manager_of(proxy).connections if isinstance(c, ClientProtocol)]


def _reading(proxy: Proxy) -> list[ClientProtocol]:
    return [c for c in _protocols(proxy) if c._reading is not None]


def _held_bytes(proxy: Proxy) -> int:
    return sum(len(chunk) for c in _protocols(proxy) for chunk in c._held)


async def _hold_out(proxy: Proxy, relay: StallRelay, conn: Connection, first: bytes) -> None:
    """`first` sent with Redis stalled; back once Redis has answered and the proxy has
    not heard (the lane's read, or the slow path's, is out)."""
    relay.stall()
    await conn.send(first)
    await eventually(lambda: relay.held > 0)
    if manager_of(proxy).fast_lane is not None:
        await eventually(lambda: bool(_reading(proxy)))


async def _send_reads(proxy: Proxy, conn: Connection, chunks: Sequence[bytes]) -> None:
    """Each chunk as a read of its own: on the lane, each waits until the proxy holds it."""
    lane = manager_of(proxy).fast_lane is not None
    for chunk in chunks:
        expected = _held_bytes(proxy) + len(chunk)
        await conn.send(chunk)
        if lane:
            await eventually(partial(_holds, proxy, expected))


def _holds(proxy: Proxy, expected: int) -> bool:
    return _held_bytes(proxy) == expected


async def _answers(conn: Connection, count: int) -> list[bytes]:
    return [without_date(await conn.answer()) for _ in range(count)]


async def _behind_a_read(
    proxy: Proxy, relay: StallRelay, connect: Connect, chunks: Sequence[bytes], count: int
) -> list[bytes]:
    """A hit of CODES held out, `chunks` sent behind it read by read, Redis released;
    the first `count` answers (Date left out), then b"" for each answer past the end."""
    conn = await connect(proxy)
    await _hold_out(proxy, relay, conn, request(CODES))
    await _send_reads(proxy, conn, chunks)
    relay.resume()
    return await _answers(conn, count)


async def _lane_and_slow(
    start_on_redis: RedisStart,
    relay: StallRelay,
    connect: Connect,
    chunks: Sequence[bytes],
    count: int,
    **server: object,
) -> tuple[list[bytes], list[bytes], Proxy]:
    fast = await start_on_redis(True, **server)
    lane = await _behind_a_read(fast, relay, connect, chunks, count)
    slow = await start_on_redis(False, **server)
    reference = await _behind_a_read(slow, relay, connect, chunks, count)
    return lane, reference, fast


# --- what comes behind the read -----------------------------------------------------


async def test_pipelined_heads_split_across_many_reads_behind_the_read_keep_their_order(
    start_on_redis: RedisStart, relay: StallRelay, connect: Connect
) -> None:
    chat, codes = request(CHAT), request(CODES)
    chunks = [chat[:7], chat[7:40], chat[40:] + codes[:20], codes[20:-1], codes[-1:]]
    lane, reference, fast = await _lane_and_slow(start_on_redis, relay, connect, chunks, 3)
    assert lane == reference
    assert [b"<ReasonCodes" in a for a in lane] == [True, False, True]
    assert b"<ChatConfig>" in lane[1]
    assert hits_of(fast) == 1  # the read's own; the split ones went through aiohttp


async def test_whole_hits_behind_the_read_are_each_answered_once_in_order(
    start_on_redis: RedisStart, relay: StallRelay, connect: Connect
) -> None:
    """Each read behind it is one whole lane GET: the lane takes them one after another."""
    chunks = [request(CHAT), request(CODES), request(CHAT)]
    lane, reference, fast = await _lane_and_slow(start_on_redis, relay, connect, chunks, 4)
    assert lane == reference
    assert [b"<ChatConfig>" in a for a in lane] == [False, True, False, True]
    assert hits_of(fast) == 4


async def test_a_post_whose_body_comes_in_later_reads_is_a_body_behind_the_read(
    start_on_redis: RedisStart, relay: StallRelay, connect: Connect
) -> None:
    """A POST head, then its body, which is exactly a lane GET: never a request of its own."""
    smuggled = request(CHAT)
    head = (
        f"POST /finesse/api/Dialogs HTTP/1.1\r\nHost: f\r\nAuthorization: {AGENT['Authorization']}"
        f"\r\nContent-Type: text/plain\r\nContent-Length: {len(smuggled)}\r\n\r\n"
    ).encode()
    chunks = [head, smuggled, request(CODES)]
    lane, reference, fast = await _lane_and_slow(start_on_redis, relay, connect, chunks, 3)
    assert [a.split(b"\r\n")[0] for a in lane] == [a.split(b"\r\n")[0] for a in reference]
    assert not any(b"<ChatConfig>" in a for a in lane)
    assert b"webproxy; hit" in lane[0] and b"webproxy; hit" in lane[2]
    assert hits_of(fast) == 1  # what follows an unfinished body is aiohttp's


async def test_connection_close_behind_the_read_ends_the_connection_after_its_answer(
    start_on_redis: RedisStart, relay: StallRelay, connect: Connect
) -> None:
    chunks = [request(CHAT, extra="Connection: close\r\n")]
    lane, reference, _ = await _lane_and_slow(start_on_redis, relay, connect, chunks, 3)
    assert lane == reference
    assert b"<ChatConfig>" in lane[1] and lane[2] == b""  # nothing after the close


async def test_data_after_connection_close_in_one_read_behind_the_read_is_refused_alike(
    start_on_redis: RedisStart, relay: StallRelay, connect: Connect
) -> None:
    """aiohttp's parser refuses data after a `Connection: close` head in the same feed
    (400, "Data after `Connection: close`"): the held read reaches it whole, as it came."""
    chunks = [request(CHAT, extra="Connection: close\r\n") + request(CODES)]
    lane, reference, _ = await _lane_and_slow(start_on_redis, relay, connect, chunks, 3)
    assert lane == reference
    assert status_of(lane[1]) == 400 and lane[2] == b""


async def test_a_websocket_upgrade_behind_the_read_is_relayed_after_its_answer(
    start_on_redis: RedisStart, relay: StallRelay, connect: Connect
) -> None:
    upgrade = (
        b"GET /ws/ HTTP/1.1\r\nHost: finesse\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    proxy = await start_on_redis(True)
    conn = await connect(proxy)
    await _hold_out(proxy, relay, conn, request(CODES))
    await _send_reads(proxy, conn, [upgrade])
    relay.resume()
    assert b"webproxy; hit" in await conn.answer()
    switched = await asyncio.wait_for(conn.reader.readuntil(b"\r\n\r\n"), 5)
    assert switched.startswith(b"HTTP/1.1 101 ")
    mask = b"\x01\x02\x03\x04"
    text = b"echo me"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(text))
    await conn.send(bytes([0x81, 0x80 | len(text)]) + mask + masked)
    frame = await asyncio.wait_for(conn.reader.readexactly(2 + len(text)), 5)
    assert frame[2:] == text


@LANE_OR_SLOW
async def test_a_client_that_half_closes_while_the_read_is_out_is_treated_as_the_slow_path(
    start_on_redis: RedisStart, relay: StallRelay, connect: Connect, lane: bool
) -> None:
    proxy = await start_on_redis(lane)
    conn = await connect(proxy)
    await _hold_out(proxy, relay, conn, request(CODES))
    conn.writer.write_eof()
    await eventually(lambda: len(_protocols(proxy)) <= 1)  # the test client's own is left
    relay.resume()
    assert await conn.answer() == b""  # aiohttp closes on EOF; so does the lane
    await eventually(lambda: not _reading(proxy))


async def test_a_client_gone_with_reads_held_leaves_no_task_and_logs_no_error(
    start_on_redis: RedisStart,
    relay: StallRelay,
    connect: Connect,
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy = await start_on_redis(True)
    conn = await connect(proxy)
    caplog.set_level(logging.WARNING)
    await _hold_out(proxy, relay, conn, request(CODES))
    await _send_reads(proxy, conn, [request(CHAT), request(CODES)[:20]])
    conn.writer.transport.abort()
    await eventually(lambda: not _reading(proxy) and len(_protocols(proxy)) <= 1)
    relay.resume()
    other = await connect(proxy)
    await other.send(request(CHAT))
    assert b"webproxy; hit" in await other.answer()
    left = [t for t in asyncio.all_tasks() if "_answer_when_read" in repr(t.get_coro())]
    assert left == []
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


@LANE_OR_SLOW
async def test_redis_cut_while_the_read_is_out_is_answered_by_forwarding(
    start_on_redis: RedisStart,
    relay: StallRelay,
    connect: Connect,
    caplog: pytest.LogCaptureFixture,
    lane: bool,
) -> None:
    """The read's connection is cut (redis-py may retry it, or the store owes a clear):
    each request gets its own answer, in order; nothing worse than warnings in the log."""
    proxy = await start_on_redis(lane)
    conn = await connect(proxy)
    caplog.set_level(logging.WARNING)
    await _hold_out(proxy, relay, conn, request(CODES))
    await _send_reads(proxy, conn, [request(CHAT)])
    relay.cut()
    relay.resume()
    first, second = await conn.answer(), await conn.answer()
    assert status_of(first) == status_of(second) == 200
    assert b"<ReasonCodes" in first and b"<ChatConfig>" in second  # (retried, or forwarded)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


# --- over the limits ------------------------------------------------------------------


@LANE_OR_SLOW
async def test_a_head_that_never_ends_behind_the_read_is_cut_off_at_max_head_bytes(
    start_on_redis: RedisStart, relay: StallRelay, connect: Connect, lane: bool
) -> None:
    """Past `max_head_bytes` of the next head behind a request in progress (the lane's
    read of the store, or the ordinary path's), the connection is closed: never more
    held than the limit and one read (asyncio reads at most 256 KiB at once)."""
    limit = 16384
    proxy = await start_on_redis(lane, max_head_bytes=limit)
    conn = await connect(proxy)
    await _hold_out(proxy, relay, conn, request(CODES))
    with contextlib.suppress(ConnectionError):
        for _ in range(32):  # 2 MiB of one head's field line
            await conn.send(b"X-Pad: " + b"p" * 65529)
            assert _held_bytes(proxy) <= limit + 256 * 1024, "held while the read is out"
    await eventually(lambda: not _protocols(proxy)[1:])  # (the test client holds one)
    relay.resume()


@LANE_OR_SLOW
async def test_a_head_over_the_limit_behind_the_read_closes_as_the_slow_path_does(
    start_on_redis: RedisStart, relay: StallRelay, connect: Connect, lane: bool
) -> None:
    proxy = await start_on_redis(lane, max_head_bytes=16384)
    conn = await connect(proxy)
    await _hold_out(proxy, relay, conn, request(CODES))
    pad = b"X-Pad: " + b"p" * 10000 + b"\r\n"
    with contextlib.suppress(ConnectionError):
        await conn.send(request(CHAT)[:-2] + pad + pad)
    relay.resume()
    assert await conn.answer() == b""  # closed, the request in progress unanswered
    assert await conn.closed()


@pytest.mark.parametrize(
    "server",
    [{"keepalive_timeout": 0.2}, {"client_header_timeout": 0.2}],
    ids=["keepalive", "header"],
)
async def test_a_read_outlasting_the_connection_clocks_is_still_answered(
    start_on_redis: RedisStart, relay: StallRelay, connect: Connect, server: dict[str, object]
) -> None:
    """While the lane reads, neither the keep-alive nor the head deadline is armed (so no
    close and no 408 can come, however short they are); after the answer, keep-alive is."""
    proxy = await start_on_redis(True, **server)
    conn = await connect(proxy)
    await conn.send(request(CHAT))  # a first answer arms the keep-alive deadline
    assert b"webproxy; hit" in await conn.answer()
    await _hold_out(proxy, relay, conn, request(CODES))
    (reading,) = _reading(proxy)
    assert reading._keepalive_handle is None and reading._head_timer is None
    relay.resume()
    assert b"webproxy; hit" in await conn.answer()
    assert hits_of(proxy) == 2
    assert reading._keepalive_handle is not None


async def test_a_partial_head_held_behind_the_read_still_times_out(
    start_on_redis: RedisStart, relay: StallRelay, connect: Connect
) -> None:
    proxy = await start_on_redis(True, client_header_timeout=0.3)
    conn = await connect(proxy)
    await _hold_out(proxy, relay, conn, request(CODES))
    await _send_reads(proxy, conn, [request(CHAT)[:25]])
    relay.resume()
    assert b"webproxy; hit" in await conn.answer()
    assert (await conn.answer()).startswith(b"HTTP/1.1 408 ")
    assert await conn.closed()


# --- other connections change things while the read is out ---------------------------


async def _put_chat(proxy: Proxy, node: str) -> None:
    body = f"<ChatConfig><primaryNode>https://{node}:5280</primaryNode></ChatConfig>"
    response = await proxy.client.put(CHAT, data=body, headers=ADMIN)
    assert response.status < 300, await response.text()


@LANE_OR_SLOW
async def test_a_purge_answered_by_another_replica_while_the_read_is_out(
    start_on_redis: RedisStart,
    relay: StallRelay,
    connect: Connect,
    start_proxy: ProxyFactory,
    sim: Sim,
    clock: ManualClock,
    redis_url: str,
    redis_prefix: str,
    lane: bool,
) -> None:
    """Redis read the entry before the purge: the answer may be what it read (the slow
    path's guarantee too), but nothing asked after the purge's answer is stale."""
    proxy = await start_on_redis(lane)
    store = {"backend": "redis", "redis_url": Secret(redis_url), "key_prefix": redis_prefix}
    other = await start_proxy(settings_for(sim.url, store=store), clock)  # direct to Redis
    conn = await connect(proxy)
    await _hold_out(proxy, relay, conn, request(CHAT))
    await _put_chat(other, "purged.example.com")
    relay.resume()
    first = await conn.answer()
    assert b"webproxy; hit" in first and b"purged.example.com" not in first
    await conn.send(request(CHAT))
    after = await conn.answer()
    assert b"webproxy; fwd=miss" in after and b"purged.example.com" in after


@LANE_OR_SLOW
async def test_a_purge_on_the_same_proxy_answered_before_a_later_read(
    start_on_redis: RedisStart, relay: StallRelay, connect: Connect, lane: bool
) -> None:
    """The purge's INCR is held with the read's MGET; once its PUT is answered, a read
    asked behind the held one is never the purged entry."""
    proxy = await start_on_redis(lane)
    conn, writer = await connect(proxy), await connect(proxy)
    await _hold_out(proxy, relay, conn, request(CHAT))
    body = b"<ChatConfig><primaryNode>https://after.example.com:5280</primaryNode></ChatConfig>"
    head = f"PUT {CHAT} HTTP/1.1\r\nHost: f\r\nAuthorization: {ADMIN['Authorization']}\r\n"
    await writer.send(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
    await eventually(lambda: relay.held > 0 and sum(c.busy for c in _protocols(proxy)) >= 2)
    relay.resume()
    assert (await writer.answer()).startswith(b"HTTP/1.1 2")
    assert b"<ChatConfig>" in await conn.answer()
    await conn.send(request(CHAT))
    assert b"after.example.com" in await conn.answer()


@LANE_OR_SLOW
async def test_a_credential_refused_by_finesse_while_the_read_is_out_gets_no_hit(
    start_on_redis: RedisStart, relay: StallRelay, connect: Connect, sim: Sim, lane: bool
) -> None:
    """Both paths ask whether the credential may have the entry once it is read."""
    proxy = await start_on_redis(lane)
    conn, other = await connect(proxy), await connect(proxy)
    await _hold_out(proxy, relay, conn, request(CODES))
    sim.sim.set_password("10001", "changed")
    await other.send(request("/finesse/api/User/10001"))  # no store read: answered now
    assert (await other.answer()).startswith(b"HTTP/1.1 401 ")
    relay.resume()
    answer = await conn.answer()
    assert answer.startswith(b"HTTP/1.1 401 ") and b"webproxy; hit" not in answer
    assert hits_of(proxy) == 0


@LANE_OR_SLOW
async def test_the_cache_disabled_while_the_read_is_out_is_treated_as_the_slow_path(
    start_on_redis: RedisStart, relay: StallRelay, connect: Connect, lane: bool
) -> None:
    """Both paths took the settings as the request came: the read's answer is the hit;
    what is asked after the change is forwarded."""
    proxy = await start_on_redis(lane)
    conn = await connect(proxy)
    await _hold_out(proxy, relay, conn, request(CODES))
    live = proxy.app[services_key].live
    live.current = replace(live.current, cache=replace(live.current.cache, enabled=False))
    relay.resume()
    assert b"webproxy; hit" in await conn.answer()
    await conn.send(request(CODES))
    answer = await conn.answer()
    assert b"webproxy; hit" not in answer and b"<ReasonCodes" in answer


# --- the proxy shutting down while reads are out ---------------------------------------


async def _shut_down_with_a_read_out(
    proxy: Proxy, relay: StallRelay, connect: Connect, target: str
) -> tuple[Connection, asyncio.Task[None]]:
    conn = await connect(proxy)
    await _hold_out(proxy, relay, conn, request(target))
    protocols = [c for c in _protocols(proxy) if c.busy]
    closing = asyncio.create_task(proxy.client.server.close())
    # the runner's pre-shutdown: aiohttp's close, which the lane's protocol keeps for the
    # end of its read
    await eventually(lambda: all(c._close or c._close_after_read for c in protocols))
    return conn, closing


@LANE_OR_SLOW
async def test_a_hit_read_out_when_the_proxy_shuts_down_is_answered_then_closed(
    start_on_redis: RedisStart, relay: StallRelay, connect: Connect, lane: bool
) -> None:
    proxy = await start_on_redis(lane, shutdown_grace=3.0)
    conn, closing = await _shut_down_with_a_read_out(proxy, relay, connect, CODES)
    relay.resume()
    assert b"webproxy; hit" in await conn.answer()
    assert await conn.closed()
    await asyncio.wait_for(closing, 5)


@pytest.mark.parametrize(
    "lane",
    [
        True,
        False,
    ],
    ids=["lane", "slow"],
)
async def test_a_miss_read_out_when_the_proxy_shuts_down_is_still_answered(
    start_on_redis: RedisStart, relay: StallRelay, connect: Connect, lane: bool
) -> None:
    proxy = await start_on_redis(lane, shutdown_grace=3.0)
    conn, closing = await _shut_down_with_a_read_out(proxy, relay, connect, MISS)
    relay.resume()
    answer = await conn.answer()
    assert answer.startswith(b"HTTP/1.1 200 ") and b"webproxy; fwd=miss" in answer
    await asyncio.wait_for(closing, 5)


@LANE_OR_SLOW
async def test_a_read_out_past_the_grace_is_closed_at_the_grace(
    start_on_redis: RedisStart, relay: StallRelay, connect: Connect, lane: bool
) -> None:
    grace = 0.4
    proxy = await start_on_redis(lane, shutdown_grace=grace)
    loop = asyncio.get_running_loop()
    conn, closing = await _shut_down_with_a_read_out(proxy, relay, connect, CODES)
    began = loop.time()
    assert await conn.answer() == b""  # closed, nothing half written
    assert loop.time() - began < grace + CANCEL_WAIT + 0.5
    await eventually(lambda: not _reading(proxy))
    relay.resume()  # the store's pending pipeline ends; the app's cleanup finishes
    await asyncio.wait_for(closing, 5)


# --- the access log switched on while the read is out -----------------------------------


async def test_the_access_log_switched_on_while_the_read_is_out_sends_later_hits_slow(
    start_on_redis: RedisStart, relay: StallRelay, connect: Connect
) -> None:
    access = logging.getLogger("webproxy.access")
    saved = (access.level, access.disabled)
    proxy = await start_on_redis(True)
    conn = await connect(proxy)
    try:
        await _hold_out(proxy, relay, conn, request(CODES))
        await _send_reads(proxy, conn, [request(CHAT)])
        access.disabled = False
        access.setLevel(logging.INFO)
        relay.resume()
        answers = await _answers(conn, 2)
        assert all(b"webproxy; hit" in a for a in answers)
        assert hits_of(proxy) == 1  # the held one went to the slow path, which logs it
    finally:
        access.setLevel(saved[0])
        access.disabled = saved[1]
