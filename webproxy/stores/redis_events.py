"""Credential events between replicas, over Redis pub/sub on ``<prefix>:events``.

Pub/sub rather than a Stream: nothing is kept in Redis (no digest of a refused credential
waits there for anyone to try passwords against, and nothing to trim), and what a Stream's
replay would give a replica that was away is had more simply: a replica knows when it may
have missed messages (its subscription dropped, or went silent), and then forgets every
identity it learned, as `IdentityBook` does after a gap in its workers' ring.

A message is one kind byte and up to 16 bytes of payload (see `webproxy.fleet`). Each
subscription attempt has a fresh client of its own from `RedisClients.subscriber` (on a
Cluster, one live node, picked again at each attempt: classic PUBLISH reaches every node;
under Sentinel, the master of the moment), with no read timeout but a PING every few
seconds: a subscription that answers none for three of them counts as dropped.

A subscription lost after it was made calls `lost` (the app has the store owe a clear): the
loss may be a failover, and the promoted replica may lack a purge the old master acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Final

from redis.asyncio.client import PubSub

from webproxy.fleet import Event, EventKind
from webproxy.stores.redis_clients import FAILURES, RedisClients

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
    `missed` is called whenever some may have been lost, `lost` when a subscription that was
    made is lost."""

    def __init__(self, clients: RedisClients, *, prefix: str, lost: Missed | None = None) -> None:
        self._client = clients.client  # the store's: publishes share its pool and timeouts
        self._clients = clients  # a fresh subscriber per attempt, waiting without a timeout
        self._lost = lost
        self._live = False  # a subscription is made and not yet known lost
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
        except FAILURES as exc:
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
            except FAILURES as exc:
                log.warning("event subscription lost (%r); identities dropped", exc)
            if self._live:
                self._live = False
                retry = RETRY_AFTER
                if self._lost is not None:
                    self._lost()
            self.settled.set()
            missed()
            await asyncio.sleep(retry)  # a pause before subscribing again, growing to 10 s
            retry = min(retry * 2, MAX_RETRY)

    async def _subscribed(
        self, receive: Receive, missed: Missed, subscribed: Missed | None
    ) -> None:
        subscriber = await self._clients.subscriber()
        try:
            await self._delivering(subscriber.pubsub(), receive, missed, subscribed)
        finally:
            with contextlib.suppress(*FAILURES):
                await subscriber.aclose()

    async def _delivering(
        self, pubsub: PubSub, receive: Receive, missed: Missed, subscribed: Missed | None
    ) -> None:
        try:
            await pubsub.subscribe(self.channel)
            self._live = True
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
            with contextlib.suppress(*FAILURES):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        await asyncio.gather(*self._sending, return_exceptions=True)
