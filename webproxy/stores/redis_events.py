"""Credential events between replicas, over Redis pub/sub on ``<prefix>:events``.

Pub/sub rather than a Stream: nothing is kept in Redis (no digest of a refused credential
waits there for anyone to try passwords against, and nothing to trim), and what a Stream's
replay would give a replica that was away is had more simply: a replica knows when it may
have missed messages (its subscription dropped, or went silent), and then forgets every
identity it learned, as `IdentityBook` does after a gap in its workers' ring.

A message is one kind byte and up to 16 bytes of payload (see `webproxy.fleet`). The
subscriber has a connection of its own, with no read timeout but a PING every few seconds:
a subscription that answers none for three of them counts as dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

from webproxy.fleet import Event, EventKind

log = logging.getLogger("webproxy.store")

Receive = Callable[[Event], None]
Missed = Callable[[], None]

MAX_PAYLOAD: Final = 64  # a digest, a team id or a counter's name
PING_EVERY: Final = 5.0
RETRY_AFTER: Final = 1.0
MAX_RETRY: Final = 10.0


def encode_event(event: Event) -> bytes:
    return bytes([event.kind]) + event.payload


def decode_event(message: bytes) -> Event | None:
    """The event in a message, or None for one that is not ours."""
    if not message or len(message) > 1 + MAX_PAYLOAD or message[0] not in tuple(EventKind):
        return None
    return Event(EventKind(message[0]), message[1:])


class RedisEvents:
    """Publishes events for every replica, and delivers theirs (and its own) to `receive`;
    `missed` is called whenever some may have been lost."""

    def __init__(self, client: Redis, subscriber: Redis, *, prefix: str) -> None:
        self._client = client  # the store's: publishes share its pool and timeouts
        self._subscriber = subscriber  # its own: the subscription waits without a timeout
        self.channel = f"{prefix}:events"
        self._sending: set[asyncio.Task[None]] = set()
        self.settled = asyncio.Event()  # set once the first subscription is made or failed

    def publish(self, event: Event) -> None:
        """Send `event` in a task of its own (callers are synchronous); a failure means
        other replicas may not hear it: they will, as a gap, when Redis answers again."""
        task = asyncio.create_task(self._publish(event))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _publish(self, event: Event) -> None:
        try:
            await self._client.publish(self.channel, encode_event(event))
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("could not tell other replicas (%s): %r", event.kind.name, exc)

    async def listen(
        self, receive: Receive, missed: Missed, subscribed: Missed | None = None
    ) -> None:
        """Deliver events until cancelled, subscribing again after every loss; `subscribed`
        is called each time a subscription is made (after `missed`)."""
        retry = RETRY_AFTER
        while True:
            try:
                await self._subscribed(receive, missed, subscribed)
                retry = RETRY_AFTER
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("event subscription lost (%r); identities dropped", exc)
            self.settled.set()
            missed()
            await asyncio.sleep(retry)  # a pause before subscribing again, growing to 10 s
            retry = min(retry * 2, MAX_RETRY)

    async def _subscribed(
        self, receive: Receive, missed: Missed, subscribed: Missed | None
    ) -> None:
        pubsub = self._subscriber.pubsub()
        try:
            await pubsub.subscribe(self.channel)
            missed()  # whatever came before this subscription was not heard
            if subscribed is not None:
                subscribed()
            self.settled.set()
            last_pong = time.monotonic()
            next_ping = last_pong + PING_EVERY
            while True:
                message = await pubsub.get_message(timeout=1.0)
                now = time.monotonic()
                if message is not None:
                    if message["type"] == "pong":
                        last_pong = now
                    elif message["type"] == "message":
                        event = decode_event(message["data"])
                        if event is not None:
                            receive(event)
                if now >= next_ping:
                    await pubsub.ping()
                    next_ping = now + PING_EVERY
                if now - last_pong > 3 * PING_EVERY:
                    return  # silent: treat as lost
        finally:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        await asyncio.gather(*self._sending, return_exceptions=True)
