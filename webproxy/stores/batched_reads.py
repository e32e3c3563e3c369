"""Reads asked of Redis within one turn of the event loop, sent together.

Every cache hit on the Redis store reads its entry and counters with one `MGET`. Sent one
by one, each costs a pooled connection's check-out, a command's packing and a round trip
of its own, and under load the pool opens a connection per request in flight. Here the
`MGET`s asked during one turn of the loop wait for the end of that turn and go as one
non-transactional pipeline (at most `MAX_BATCH` commands each): one connection, one write
and one round trip for all of them, each caller getting its own reply or error. A lone read
waits one turn of the loop more than it would have (microseconds).

Not for Redis Cluster: a cluster pipeline splits by slot anyway (`RedisStore` reads there
with a `GET` and an `MGET` of its own).
"""

from __future__ import annotations

import asyncio
from typing import Final

from redis.asyncio import Redis

MAX_BATCH: Final = 128
"""Commands in one pipeline; a busier turn sends several."""


class BatchedReads:
    """`mget` through one pipeline per turn of the event loop, on `client`'s pool."""

    def __init__(self, client: Redis) -> None:
        self._client = client
        self._waiting: list[tuple[list[str], asyncio.Future[list[object]]]] = []
        self._sending: set[asyncio.Task[None]] = set()  # held until done (asyncio keeps weak refs)

    async def mget(self, keys: list[str]) -> list[object]:
        """The values of `keys` (None where absent), read with this turn's other reads."""
        loop = asyncio.get_running_loop()
        if not self._waiting:
            loop.call_soon(self._send_waiting)
        reply: asyncio.Future[list[object]] = loop.create_future()
        self._waiting.append((keys, reply))
        return await reply

    def _send_waiting(self) -> None:
        waiting, self._waiting = self._waiting, []
        for start in range(0, len(waiting), MAX_BATCH):
            task = asyncio.ensure_future(self._send(waiting[start : start + MAX_BATCH]))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[list[str], asyncio.Future[list[object]]]]) -> None:
        try:
            pipe = self._client.pipeline(transaction=False)
            for keys, _ in batch:
                pipe.mget(keys)
            replies = await pipe.execute(raise_on_error=False)
        except asyncio.CancelledError:
            for _, reply in batch:
                reply.cancel()
            raise
        except Exception as exc:
            for _, reply in batch:
                if not reply.done():
                    reply.set_exception(exc)
            return
        for (_, reply), value in zip(batch, replies, strict=True):
            if reply.done():  # its caller was cancelled meanwhile
                continue
            if isinstance(value, Exception):
                reply.set_exception(value)
            else:
                reply.set_result(list(value))

    async def close(self) -> None:
        """Wait for the reads already sent (their callers are waiting for them)."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
