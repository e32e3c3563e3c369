"""The Redis clients a shared store needs, built from `[store]`: standalone, Cluster or Sentinel.

`make_clients(store)` is the one entry point. It returns `RedisClients`: `.client` serves the
store and PUBLISH; `subscriber()` gives a fresh client for each subscription attempt of
`RedisEvents`; `aclose()` closes them all. Every client is redis-py's own (`Redis`,
`redis.asyncio.cluster.RedisCluster`, `redis.asyncio.sentinel.Sentinel`); nothing here speaks
the cluster or sentinel protocol.

- Standalone (`redis_url`): a `Redis` on a blocking pool of `max_connections`.
- Cluster (`redis_cluster = true`, `redis_url` names any node): a `RedisCluster`, which finds
  the other nodes and routes each key to its master (a pool of `max_connections` per node,
  which fails at once rather than blocks when full). Classic PUBLISH is broadcast to every
  node of a cluster, so the subscriber is a plain `Redis` on one live node, picked again at
  each attempt so that a dead node is left behind.
- Sentinel (`sentinels` set): the master named `sentinel_master` is asked of the sentinels at
  each new connection, so a failover is followed without a restart; `redis_url` gives only
  the scheme, credentials and database. The subscriber is `master_for(...)` too.

Every client fails fast: connects and replies are bounded by `timeout`, and only a
connection error is retried, once and quickly (a pooled connection may have died with its
server); a timeout is never retried. Subscribers have no read timeout: `RedisEvents` pings
them to notice a silent drop. Replies are bytes (``decode_responses=False``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import SSLConnection, parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialBackoff
from redis.exceptions import (
    ClusterDownError,
    ConnectionError as RedisConnectionError,
    RedisClusterException,
    RedisError,
    SlotNotCoveredError,
)

from webproxy.settings import StoreSettings

RETRIES: Final = 1
FAILURES: Final = (RedisError, RedisClusterException, OSError, TimeoutError)
"""What a call through these clients may raise when Redis fails (redis-py's cluster errors
do not all derive from RedisError: an unreachable cluster raises RedisClusterException)."""


def _retry() -> Retry:
    return Retry(ExponentialBackoff(cap=0.05, base=0.01), RETRIES, (RedisConnectionError,))


def make_redis_client(url: str, *, timeout: float, max_connections: int = 200) -> Redis:
    """Build a client that fails fast: every connect and reply is bounded by `timeout`.

    One quick retry on a connection error only (a pooled connection may have died with a Redis
    restart); a timeout is never retried, so a Redis that hangs costs one `timeout` at most.
    The pool blocks for a free connection (at most `timeout`) rather than failing at once
    when every connection is busy, as redis-py's default pool does past its limit.
    """
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=_retry(),
        health_check_interval=0,
        decode_responses=False,
    )
    return Redis.from_pool(pool)


def make_subscriber_client(url: str, *, timeout: float) -> Redis:
    """A client for one long subscription: connects within `timeout`, then waits for
    messages as long as it takes (`RedisEvents` pings it to notice a silent drop)."""
    return Redis.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=None,
        health_check_interval=0,
        decode_responses=False,
    )


class FailFastCluster(RedisCluster):
    """redis-py's RedisCluster, retrying a connection error (and a topology change) but never
    a timeout, as the standalone client does: a node that hangs costs one `timeout`."""

    ERRORS_ALLOW_RETRY = (  # type: ignore[assignment]  # typed as exactly redis-py's four
        RedisConnectionError,
        ClusterDownError,
        SlotNotCoveredError,
    )


def make_cluster_client(url: str, *, timeout: float, max_connections: int = 200) -> RedisCluster:
    """A RedisCluster found through the node `url` names; each node's pool holds at most
    `max_connections` (past that a command fails at once: redis-py's cluster pool never
    blocks)."""
    return FailFastCluster.from_url(
        url,
        max_connections=max_connections,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), RETRIES),
        health_check_interval=0,
        decode_responses=False,
    )


class BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """redis-py's SentinelConnectionPool (connections follow the master), blocking as
    `make_redis_client`'s pool does when every connection is busy."""


def _master_kwargs(url: str) -> dict[str, Any]:
    """What of `url` applies to a master the sentinels name: credentials, db, TLS options."""
    kwargs: dict[str, Any] = dict(parse_url(url))
    for where in ("host", "port", "path"):
        kwargs.pop(where, None)
    if kwargs.pop("connection_class", None) is SSLConnection:
        kwargs["ssl"] = True  # SentinelConnectionPool picks its own TLS connection class
    return kwargs


def _node_url(url: str, host: str, port: int) -> str:
    """`url` with its host and port replaced: the same credentials and TLS, another node."""
    parts = urlsplit(url)
    auth = parts.netloc.rpartition("@")[0]
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return urlunsplit(parts._replace(netloc=f"{auth}@{where}" if auth else where))


class RedisClients:
    """The store's client, a maker of subscribers, and their closing (see the module doc)."""

    def __init__(
        self,
        client: Redis | RedisCluster,
        subscriber: Callable[[], Awaitable[Redis]],
        *,
        sentinel: Sentinel | None = None,
    ) -> None:
        self.client = client
        self.cluster = isinstance(client, RedisCluster)
        self._subscriber = subscriber
        self._sentinel = sentinel

    async def subscriber(self) -> Redis:
        """A new client for one subscription attempt; the caller closes it (`aclose`).

        Raises one of FAILURES if none can be had now.
        """
        return await self._subscriber()

    async def aclose(self) -> None:
        await self.client.aclose()
        if self._sentinel is not None:
            await self._sentinel.aclose()


def make_clients(store: StoreSettings) -> RedisClients:
    """The clients `store` describes: Sentinel if `sentinels` is set, else Cluster if
    `redis_cluster`, else one standalone Redis at `redis_url`."""
    url, timeout = store.redis_url.reveal(), store.timeout
    if store.sentinels:
        return _sentinel_clients(store)
    if store.redis_cluster:
        cluster = make_cluster_client(url, timeout=timeout, max_connections=store.max_connections)
        return RedisClients(cluster, lambda: _live_node(cluster, url, timeout))
    client = make_redis_client(url, timeout=timeout, max_connections=store.max_connections)

    async def standalone() -> Redis:
        return make_subscriber_client(url, timeout=timeout)

    return RedisClients(client, standalone)


async def _live_node(cluster: RedisCluster, url: str, wait: float) -> Redis:
    """A subscriber on one node of `cluster` that answers PING, tried in random order."""
    await cluster.initialize()
    nodes = cluster.get_nodes()
    random.shuffle(nodes)
    failure: BaseException = RedisConnectionError("the cluster lists no node")
    for node in nodes:
        client = make_subscriber_client(_node_url(url, node.host, int(node.port)), timeout=wait)
        try:
            async with asyncio.timeout(wait):
                await client.ping()
            return client
        except FAILURES as exc:
            failure = exc
            with contextlib.suppress(*FAILURES):
                await client.aclose()
    raise failure


def _sentinel_clients(store: StoreSettings) -> RedisClients:
    timeout = store.timeout
    sentinel = Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        [(address.host, address.port) for address in store.sentinels],
        sentinel_kwargs={"socket_timeout": timeout, "socket_connect_timeout": timeout},
        **_master_kwargs(store.redis_url.reveal()),
    )
    client: Redis = sentinel.master_for(
        store.sentinel_master,
        connection_pool_class=BlockingSentinelPool,
        max_connections=store.max_connections,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=_retry(),
        health_check_interval=0,
        decode_responses=False,
    )

    async def subscriber() -> Redis:
        subscribed: Redis = sentinel.master_for(
            store.sentinel_master,
            socket_timeout=None,
            socket_connect_timeout=timeout,
            health_check_interval=0,
            decode_responses=False,
        )
        return subscribed

    return RedisClients(client, subscriber, sentinel=sentinel)
