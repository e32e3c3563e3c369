"""A replica whose lookup missed just before another replica stored the key and gave its
fill claim back: it must not fetch the key from Finesse a second time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from tests.conftest import AGENT, ProxyFactory, Sim, settings_for
from tests.functional.finesse import eventually, sign_in, upstream_gets
from tests.functional.test_shared_redis import on_redis
from tests.redisfixture import RedisServer
from webproxy.sim.faults import Fault, FaultKind

CODES = "/finesse/api/TeamResource/5000/ReasonCodes?category=ALL"
CODES_PATH = "/finesse/api/TeamResource/5000/ReasonCodes"
CHAT = "/finesse/api/ChatConfig"
FINESSE_LATENCY = 0.8  # the first replica's fetch: claimed at 0, stored and released at 0.8
LINK_DELAY = 0.5  # the second's lookup reaches Redis at 0.5 (a miss), its claim at 1.0


class SlowLink:
    """A TCP relay to redis-server that hands on what clients send `delay` seconds late
    (each chunk its own delay, in order); Redis's answers pass at once."""

    def __init__(self, port: int, delay: float) -> None:
        self.port, self.delay = port, delay
        self.tasks: set[asyncio.Task[None]] = set()
        self.writers: list[asyncio.StreamWriter] = []

    async def serve(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        from_redis, to_redis = await asyncio.open_connection("127.0.0.1", self.port)
        self.writers += [to_client, to_redis]
        for pipe in (self.late(client, to_redis), self.pipe(from_redis, to_client)):
            task = asyncio.create_task(pipe)
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def late(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def send() -> None:
            while True:
                due, data = await queue.get()
                await asyncio.sleep(max(0.0, due - loop.time()))  # the injected delay
                if not data:  # the client closed: so does the relay, once it has sent all
                    sink.close()
                    return
                sink.write(data)
                await sink.drain()

        sender = asyncio.create_task(send())
        try:
            while True:
                data = await source.read(65536)
                queue.put_nowait((loop.time() + self.delay, data))
                if not data:
                    await sender
                    return
        finally:
            sender.cancel()

    async def pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for writer in self.writers:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


@pytest.fixture
async def slow_redis_url(redis_server: RedisServer) -> AsyncIterator[str]:
    """A URL of the test's redis-server through a SlowLink."""
    link = SlowLink(redis_server.port, LINK_DELAY)
    server = await asyncio.start_server(link.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.close()
        await link.close()
        await server.wait_closed()


async def test_a_key_stored_between_a_lookup_and_its_claim_is_not_fetched_again(
    sim: Sim,
    start_proxy: ProxyFactory,
    redis_url: str,
    slow_redis_url: str,
    redis_prefix: str,
) -> None:
    # the ordinary path's lookup and claim (the fast lane's own read, then a miss handed
    # to that path, would look up once more after the store and find the entry: a hit)
    ordinary: dict[str, object] = {"fast_lane": False}
    first = await start_proxy(
        settings_for(sim.url, store=on_redis(redis_url, redis_prefix), server=ordinary)
    )
    second = await start_proxy(
        settings_for(sim.url, store=on_redis(slow_redis_url, redis_prefix), server=ordinary)
    )
    for proxy in (first, second):
        await sign_in(proxy, "10001")
        await proxy.client.get(CHAT, headers=AGENT)  # a Redis connection open, for the timing
    sim.sim.inject(Fault("/finesse/api/TeamResource", FaultKind.LATENCY, seconds=FINESSE_LATENCY))
    sim.sim.reset_stats()

    filling = asyncio.create_task(first.client.get(CODES, headers=AGENT))
    await eventually(lambda: upstream_gets(sim, CODES_PATH) == 1)  # the first is fetching
    late = await second.client.get(CODES, headers=AGENT)  # misses; claims once it is free
    filled = await filling

    assert (filled.status, late.status) == (200, 200)
    assert filled.headers["Cache-Status"].endswith("stored")
    assert late.headers["Cache-Status"] == "webproxy; fwd=miss; fwd-status=200; detail=collapsed"
    assert await late.read() == await filled.read()
    assert upstream_gets(sim, CODES_PATH) == 1
