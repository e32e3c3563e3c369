"""The fast lane (`webproxy.fastlane`): fresh REST hits answered before aiohttp builds a
request, byte for byte as the slow path answers them, and every request it is not certain
of handed to aiohttp unchanged, in order. Raw sockets, so each read is the test's."""

from __future__ import annotations

import pytest

from tests.conftest import AGENT, Proxy, ProxyFactory, Sim, basic, settings_for
from tests.functional.finesse import eventually, sign_in
from tests.functional.rawhttp import (
    AUTH,
    CHAT,
    CODES,
    Connect,
    Connection,
    lane_of,
    manager_of,
    request,
    without_date,
)
from tests.functional.test_shared_redis import on_redis

#: On here whatever WEBPROXY_SERVER_FAST_LANE says (it turns the lane off for other tests).
LANE: dict[str, object] = {"fast_lane": True}


@pytest.fixture
async def warm(sim: Sim, start_proxy: ProxyFactory, store_section: dict[str, object]) -> Proxy:
    proxy = await start_proxy(settings_for(sim.url, store=store_section, server=LANE))
    await sign_in(proxy, "10001")
    for target in (CODES, CHAT):
        response = await proxy.client.get(target, headers=AGENT)
        assert response.headers["Cache-Status"].endswith("stored")
    return proxy


@pytest.fixture
async def slow_twin(sim: Sim, start_proxy: ProxyFactory) -> Proxy:
    """The same proxy with the fast lane off, warmed alike."""
    proxy = await start_proxy(settings_for(sim.url, server={"fast_lane": False}))
    await sign_in(proxy, "10001")
    for target in (CODES, CHAT):
        await proxy.client.get(target, headers=AGENT)
    return proxy


@pytest.fixture
async def conn(warm: Proxy, connect: Connect) -> Connection:
    return await connect(warm)


@pytest.mark.parametrize("store_section", ["memory"], indirect=True)
async def test_the_fast_lane_answers_as_the_slow_path_does(
    warm: Proxy, slow_twin: Proxy, sim: Sim, connect: Connect
) -> None:
    fast, slow = await connect(warm), await connect(slow_twin)
    sim.sim.reset_stats()
    for target in (CODES, CHAT, CODES):
        await fast.send(request(target))
        await slow.send(request(target))
        assert await fast.answer() == await slow.answer()
    assert lane_of(warm).hits == 3
    assert sim.sim.stats() == {}


async def test_a_fresh_hit_is_answered_in_the_lane(warm: Proxy, conn: Connection) -> None:
    await conn.send(request())
    answer = await conn.answer()
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nCache-Status: webproxy; hit; ttl=" in answer
    assert lane_of(warm).hits == 1  # Redis alone too: the lane waits for the store's read


@pytest.mark.parametrize("store_section", ["memory"], indirect=True)
async def test_pipelined_requests_keep_their_order_through_aiohttp(
    warm: Proxy, conn: Connection
) -> None:
    await conn.send(request(CODES) + request(CHAT) + request(CODES))
    answers = [await conn.answer() for _ in range(3)]
    assert [b"<ReasonCodes" in a for a in answers] == [True, False, True]
    assert b"<ChatConfig>" in answers[1]
    assert lane_of(warm).hits == 0


@pytest.mark.parametrize("store_section", ["memory"], indirect=True)
async def test_a_request_split_across_reads_goes_to_aiohttp(warm: Proxy, conn: Connection) -> None:
    whole = request()
    await conn.send(whole[:20])
    connections = manager_of(warm).connections
    await eventually(lambda: any(getattr(c, "_head_bytes", 0) == 20 for c in connections))
    await conn.send(whole[20:])
    assert b"webproxy; hit" in await conn.answer()
    await conn.send(request())  # and the connection is clean again after it
    assert b"webproxy; hit" in await conn.answer()
    assert lane_of(warm).hits == 1


@pytest.mark.parametrize(
    ("extra", "version"),
    [
        ("Connection: close\r\n", "1.1"),
        ("", "1.0"),
        ("Expect: 100-continue\r\n", "1.1"),
        ("Content-Length: 0\r\n", "1.1"),
        ("X-HTTP-Method-Override: DELETE\r\n", "1.1"),
        (f"Authorization: {AUTH}\r\n", "1.1"),  # a second credential: 400 on the slow path
        ("Accept: b\r\n", "1.1"),
        ("Host: other\r\n", "1.1"),
    ],
    ids=["connection-close", "http-1.0", "expect", "content-length", "override", "two-auth",
         "two-accept", "two-host"],
)  # fmt: skip
@pytest.mark.parametrize("store_section", ["memory"], indirect=True)
async def test_requests_the_lane_is_not_sure_of_go_to_aiohttp(
    warm: Proxy, slow_twin: Proxy, extra: str, version: str, connect: Connect
) -> None:
    fast, slow = await connect(warm), await connect(slow_twin)
    await fast.send(request(extra=extra, version=version))
    await slow.send(request(extra=extra, version=version))
    assert without_date(await fast.answer()) == without_date(await slow.answer())
    assert lane_of(warm).hits == 0


@pytest.mark.parametrize("store_section", ["memory"], indirect=True)
async def test_a_hit_then_a_miss_on_one_connection(warm: Proxy, conn: Connection, sim: Sim) -> None:
    await conn.send(request(CODES))
    assert b"webproxy; hit" in await conn.answer()
    await conn.send(request("/finesse/api/TeamResource/5000/WrapUpReasons"))
    miss = await conn.answer()
    assert b"webproxy; fwd=miss" in miss and b"<WrapUpReasons" in miss
    await conn.send(request(CODES))
    assert b"webproxy; hit" in await conn.answer()
    assert lane_of(warm).hits == 2


@pytest.mark.parametrize("store_section", ["memory"], indirect=True)
async def test_a_caller_finesse_has_not_accepted_gets_nothing_from_the_lane(
    warm: Proxy, conn: Connection
) -> None:
    for auth in (basic("10001", "wrong")["Authorization"], basic("11001")["Authorization"]):
        await conn.send(request(auth=auth))
        answer = await conn.answer()
        assert b"webproxy; hit" not in answer
    assert lane_of(warm).hits == 0


@pytest.mark.parametrize("store_section", ["memory"], indirect=True)
async def test_after_a_write_the_lane_serves_nothing_stale(warm: Proxy, conn: Connection) -> None:
    await conn.send(request(CHAT))
    assert b"webproxy; hit" in await conn.answer()
    admin = basic("admin")["Authorization"]
    body = b"<ChatConfig><primaryNode>https://new.example.com:5280</primaryNode></ChatConfig>"
    head = f"PUT {CHAT} HTTP/1.1\r\nHost: f\r\nAuthorization: {admin}\r\n"
    await conn.send(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
    assert (await conn.answer()).startswith(b"HTTP/1.1 2")
    await conn.send(request(CHAT))
    answer = await conn.answer()
    assert b"webproxy; fwd=miss" in answer and b"new.example.com" in answer
    assert lane_of(warm).hits == 1


async def test_keep_alive_is_kept_from_the_last_lane_answer(
    sim: Sim, start_proxy: ProxyFactory, connect: Connect
) -> None:
    proxy = await start_proxy(settings_for(sim.url, server={**LANE, "keepalive_timeout": 0.5}))
    await sign_in(proxy, "10001")
    await proxy.client.get(CODES, headers=AGENT)
    conn = await connect(proxy)
    for _ in range(3):
        await conn.send(request())
        assert b"webproxy; hit" in await conn.answer()
    assert lane_of(proxy).hits == 3
    assert await conn.closed()  # idle past keepalive_timeout: closed by the proxy


async def test_a_head_over_the_limit_is_refused_even_when_it_would_hit(
    sim: Sim, start_proxy: ProxyFactory, connect: Connect
) -> None:
    proxy = await start_proxy(settings_for(sim.url, server={**LANE, "max_head_bytes": 512}))
    await sign_in(proxy, "10001")
    await proxy.client.get(CODES, headers=AGENT)
    conn = await connect(proxy)
    await conn.send(request(extra=f"X-Padding: {'p' * 600}\r\n"))
    assert (await conn.answer()).startswith(b"HTTP/1.1 431 ")
    assert lane_of(proxy).hits == 0


@pytest.mark.parametrize("store_section", ["memory"], indirect=True)
async def test_lane_hits_are_counted_when_the_metrics_are_read(
    warm: Proxy, conn: Connection
) -> None:
    before = await (await warm.admin.get("/admin/cache")).json()
    for _ in range(3):
        await conn.send(request())
        assert b"webproxy; hit" in await conn.answer()
    after = await (await warm.admin.get("/admin/cache")).json()
    assert after["hits"] - before["hits"] == 3
    assert after["resources"]["TeamResource"]["lookups"]["hit"] == 3
    scrape = await (await warm.admin.get("/metrics")).text()
    assert 'webproxy_requests_total{route="api",status="200"}' in scrape


async def test_redis_behind_the_local_tier_answers_in_the_lane(
    sim: Sim, start_proxy: ProxyFactory, connect: Connect, redis_url: str, redis_prefix: str
) -> None:
    store = on_redis(redis_url, redis_prefix, local_max_bytes=1 << 20, local_ttl=60.0)
    proxy = await start_proxy(settings_for(sim.url, store=store, server=LANE))
    await sign_in(proxy, "10001")
    for _ in range(2):  # the miss stores in Redis; a read through the tier keeps a copy
        await proxy.client.get(CODES, headers=AGENT)
    conn = await connect(proxy)
    before = lane_of(proxy).hits  # the second read above may have been the lane's already
    await conn.send(request())
    assert b"webproxy; hit" in await conn.answer()
    assert lane_of(proxy).hits == before + 1
    cleared = await proxy.admin.post("/admin/cache/clear", params={"resource": "TeamResource"})
    assert cleared.status == 200  # (a resource clear leaves identities alone)
    await conn.send(request())
    assert b"webproxy; fwd=miss" in await conn.answer()  # the clear reached the copy
    assert lane_of(proxy).hits == before + 1
