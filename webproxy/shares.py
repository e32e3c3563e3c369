"""Each client address's share of the REST upstream pool: `server.max_upstream_per_client`.

The pool (`upstream.max_connections`) is shared by every desktop; without a share, a few
hundred slow clients from one address could hold all of it and every sign-in would wait.
A client is its IPv4 address, or its IPv6 /64 (one home or office network gets many
addresses). A request over its share waits for one of its own to finish, as long as it
would wait for a pool connection (`upstream.connect_timeout`), then gets 429: what one
address does beyond its share queues behind itself, never in front of anyone else.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from webproxy.errors import TooManyForClient


def client_of(remote: str | None) -> str:
    """The address a share is kept for: IPv4 as is, IPv6 as its /64 network."""
    if remote is None or ":" not in remote:
        return remote or "unknown"
    try:
        address = ipaddress.IPv6Address(remote.partition("%")[0])
    except ValueError:
        return remote
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, 64), strict=False))


@dataclass
class _Client:
    share: asyncio.Semaphore
    users: int = field(default=0)  # holding or waiting: the entry goes when none is left


class Shares:
    """Upstream exchanges open per client; `limit` 0 means no limit."""

    def __init__(self, limit: int, wait: float) -> None:
        self.limit = limit
        self.wait = wait
        self._clients: dict[str, _Client] = {}

    def __len__(self) -> int:
        return len(self._clients)

    @asynccontextmanager
    async def hold(self, remote: str | None) -> AsyncIterator[None]:
        """One exchange for `remote` while the block runs; TooManyForClient if its share
        stays taken for `wait` seconds."""
        if not self.limit:
            yield
            return
        name = client_of(remote)
        client = self._clients.get(name)
        if client is None:
            client = self._clients[name] = _Client(asyncio.Semaphore(self.limit))
        client.users += 1
        try:
            if client.share.locked():
                try:
                    async with asyncio.timeout(self.wait):
                        await client.share.acquire()
                except TimeoutError:
                    raise TooManyForClient(f"{self.limit} upstream requests open") from None
            else:
                await client.share.acquire()  # free: returns without yielding
            try:
                yield
            finally:
                client.share.release()
        finally:
            client.users -= 1
            if not client.users:
                del self._clients[name]
