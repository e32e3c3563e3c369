"""The fast lane on the Redis store alone (`webproxy.fastlane`, `listener`): a hit is
answered once the store has read the entry, byte for byte as the slow path answers it;
while the read is out the connection is busy and what comes meanwhile waits, in order;
a store that fails hands the request to aiohttp, which answers for it. Redis is reached
through a relay the test stalls and releases (`tests.redisrelay`)."""

from __future__ import annotations

from tests.conftest import Sim
from tests.functional.finesse import eventually
from tests.functional.rawhttp import (
    CHAT,
    CODES,
    Connect,
    RedisStart,
    hits_of,
    request,
    without_date,
)
from tests.redisrelay import StallRelay


async def test_a_redis_hit_is_answered_in_the_lane_as_the_slow_path_answers_it(
    start_on_redis: RedisStart, connect: Connect, sim: Sim
) -> None:
    fast, slow = await start_on_redis(True), await start_on_redis(False)
    one, other = await connect(fast), await connect(slow)
    sim.sim.reset_stats()
    for target in (CODES, CHAT, CODES):
        await one.send(request(target))
        await other.send(request(target))
        lane, reference = await one.answer(), await other.answer()
        assert b"webproxy; hit" in lane
        assert without_date(lane) == without_date(reference)
    assert hits_of(fast) == 3
    assert sim.sim.stats() == {}


async def test_what_comes_while_the_store_reads_waits_and_is_answered_in_order(
    start_on_redis: RedisStart, connect: Connect, relay: StallRelay
) -> None:
    proxy = await start_on_redis(True)
    conn = await connect(proxy)
    relay.stall()
    await conn.send(request(CODES))
    await eventually(lambda: relay.held > 0)  # Redis answered; the proxy has not heard yet
    await conn.send(request(CHAT) + request(CODES))  # pipelined behind the read
    relay.resume()
    answers = [await conn.answer() for _ in range(3)]
    assert [b"<ReasonCodes" in a for a in answers] == [True, False, True]
    assert b"<ChatConfig>" in answers[1]
    assert hits_of(proxy) == 1  # the two behind it went through aiohttp


async def test_a_store_that_fails_during_the_read_hands_the_request_to_aiohttp(
    start_on_redis: RedisStart, connect: Connect, relay: StallRelay
) -> None:
    fast = await start_on_redis(True, store_timeout=0.5)
    slow = await start_on_redis(False, store_timeout=0.5)
    one, other = await connect(fast), await connect(slow)
    relay.stall()  # every read now outlasts the store's timeout
    await one.send(request(CODES))
    await other.send(request(CODES))
    lane, reference = await one.answer(), await other.answer()
    assert b"webproxy; hit" not in lane
    assert without_date(lane) == without_date(reference)
    assert hits_of(fast) == 0
    relay.resume()


async def test_a_client_gone_while_the_store_reads_leaves_the_others_served(
    start_on_redis: RedisStart, connect: Connect, relay: StallRelay
) -> None:
    proxy = await start_on_redis(True)
    gone = await connect(proxy)
    relay.stall()
    await gone.send(request(CODES))
    await eventually(lambda: relay.held > 0)
    gone.writer.close()
    relay.resume()
    other = await connect(proxy)
    await other.send(request(CODES))
    assert b"webproxy; hit" in await other.answer()
    await eventually(lambda: hits_of(proxy) >= 1)
