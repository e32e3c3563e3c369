"""A TCP relay in front of a test's redis-server that can stall Redis's replies or cut
every connection: Redis faults that the test releases (no sleeps)."""

from __future__ import annotations

import asyncio


class StallRelay:
    """A TCP relay in front of Redis. `stall` holds Redis's replies in the relay (what
    the clients sent still reaches Redis); `resume` lets them through, late; `cut` closes
    every connection at once. Counts the bytes clients sent, to see a batch arrive."""

    def __init__(self, redis_port: int) -> None:
        self._redis_port = redis_port
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._flowing = asyncio.Event()
        self._flowing.set()
        self.sent = 0  # bytes clients sent towards Redis
        self.writes = 0  # reads of what clients sent (a batch of commands in one write: one)
        self.held = 0  # bytes of replies waiting for `resume`
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def stall(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def cut(self) -> None:
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self._redis_port
        )
        self._writers += [writer, upstream_writer]

        async def to_redis() -> None:
            while data := await reader.read(65536):
                self.sent += len(data)
                self.writes += 1
                upstream_writer.write(data)
                await upstream_writer.drain()
            upstream_writer.close()

        async def to_client() -> None:
            while data := await upstream_reader.read(65536):
                self.held += len(data)
                await self._flowing.wait()
                self.held -= len(data)
                writer.write(data)
                await writer.drain()
            writer.close()

        await asyncio.gather(to_redis(), to_client(), return_exceptions=True)

    async def stop(self) -> None:
        self.resume()
        if self._server is not None:
            self._server.close()
            self.cut()
            await self._server.wait_closed()
