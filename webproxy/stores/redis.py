"""RedisStore: the shared cache store, on redis.asyncio with an injected client and key prefix.

Keys: ``<prefix>:entry:<sha256(key) hex>`` holds one entry (a small header naming its label,
counters and generation, then the encoded payload), kept with PX = keep; ``<prefix>:gen:<name>``
holds one generation counter; ``<prefix>:fill:<sha256(key) hex>`` is one fill claim. `get` is
one MGET of the entry and its counters; `put` is one Lua script that compares every counter
and SETs only if none moved; `purge` and `clear` are one INCR each (no KEYS, SCAN or FLUSHDB);
only `stats` scans, for admin use.

On a Redis Cluster (a `RedisCluster` client), where an MGET or a script may not span hash
slots, every counter shares ONE slot through a hash tag, ``{<prefix>}:gen:<name>``, while
entries keep ``<prefix>:entry:<hash>`` and spread over the masters (claims are single-key).
There, `get` is a GET of the entry and an MGET of its counters, sent concurrently: it is as
correct as the one MGET, since the entry's header names the generation it was stored under
and anything but the counters' current values reads as missing. `put` is an MGET of the
counters, then (if none moved from `generation`) a SET with PX: a purge landing between the
two leaves an entry stored under the old generation, which every `get` reads as missing, so
it is never served. `purge` and `clear` stay one INCR; `stats` scans every master.

Generation keys have no TTL and must never be evicted, or a purge could be forgotten: run Redis
with ``maxmemory-policy volatile-lru`` (entries all have a TTL, counters none) or ``noeviction``.

Every redis-py error (RedisClusterException too), OSError and timeout becomes
StoreUnavailable. A purge or clear that could not reach Redis is not lost: the store then
owes a clear, and pays it (INCR of the ``all`` counter) before any later get or put may
succeed, so nothing older is served in between.
A get or put that finds Redis gone (connection refused or reset, not merely slow or busy)
owes a clear too: while Redis was away, another replica's purge may have failed, and this
replica must not serve what that purge covered when Redis comes back with its old data.
`owe_clear` lets the app owe one for a reason of its own: a lost event subscription, which
may mean a failover to a replica that never received a purge the old master acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final, Generic

from cachetools import LRUCache
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from webproxy.errors import StoreUnavailable
from webproxy.stores.base import ALL, Found, LabelStats, StoreStats, V, check_put
from webproxy.stores.batched_reads import BatchedReads
from webproxy.stores.redis_clients import FAILURES

log = logging.getLogger("webproxy.store")

MAGIC: Final = b"wp1:"
PEEK: Final = 256  # bytes read per entry by `stats`; longer headers are read again in full
SCAN_BATCH: Final = 500
DECODED_BYTES: Final = 4 * 1024 * 1024
"""What decoded entries kept (`RedisStore._decoded`) may hold, stored forms included."""
DECODED_ENTRY_BYTES: Final = 64 * 1024
"""Longer stored forms are decoded on every read (kept, a large one would push out many)."""

# KEYS[1] entry, KEYS[2..] counters; ARGV[1] blob, ARGV[2] PX, ARGV[3..] expected values.
PUT_SCRIPT: Final = """
for i = 2, #KEYS do
  if (redis.call('GET', KEYS[i]) or '0') ~= ARGV[i + 1] then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


# KEYS[1] a fill claim, ARGV[1] its holder's token: delete it only if still that holder's.
RELEASE_SCRIPT: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@contextlib.contextmanager
def _unavailable(action: str) -> Iterator[None]:
    """Translate redis-py (cluster errors too), socket and timeout errors into StoreUnavailable."""
    try:
        yield
    except FAILURES as exc:
        raise StoreUnavailable(f"redis {action} failed: {exc!r}") from exc


def _redis_gone(exc: BaseException) -> bool:
    """The connection was refused, reset or cut: Redis is away (not just slow or busy)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError | ConnectionResetError | BrokenPipeError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@dataclass(frozen=True, slots=True)
class _Header:
    """What an entry was stored with, written before its payload."""

    label: str
    counters: tuple[str, ...]
    generation: tuple[int, ...]


def _pack(header: _Header, payload: bytes) -> bytes:
    text = json.dumps([header.label, header.counters, header.generation], separators=(",", ":"))
    raw = text.encode()
    return MAGIC + len(raw).to_bytes(4, "big") + raw + payload


def _header_end(blob: bytes) -> int | None:
    """Where the payload of `blob` starts, or None if `blob` is not one of our entries."""
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 4:
        return None
    return len(MAGIC) + 4 + int.from_bytes(blob[len(MAGIC) : len(MAGIC) + 4], "big")


def _unpack(blob: bytes) -> tuple[_Header, int] | None:
    """The header of `blob` and where its payload starts, or None if it is malformed."""
    if (end := _header_end(blob)) is None or len(blob) < end:
        return None
    try:
        label, counters, generation = json.loads(blob[len(MAGIC) + 4 : end])
    except (ValueError, TypeError):
        return None
    if not (
        isinstance(label, str)
        and isinstance(counters, list)
        and isinstance(generation, list)
        and all(isinstance(name, str) for name in counters)
        and all(type(value) is int for value in generation)
    ):
        return None
    return _Header(label, tuple(counters), tuple(generation)), end


def _kept_size(kept: tuple[object, int]) -> int:
    """What a decoded entry holds: its stored form (the key) and about as much decoded."""
    return 2 * kept[1]


def _count(raw: object) -> int:
    """A counter's value; a counter never bumped reads 0."""
    if raw is None:
        return 0
    if not isinstance(raw, bytes | str):
        raise StoreUnavailable(f"redis counter read as {raw!r}, not an integer")
    try:
        return int(raw)
    except ValueError as exc:  # only INCR writes counters: someone else wrote this key
        raise StoreUnavailable(f"redis counter holds {raw!r}, not an integer") from exc


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


class RedisStore(Generic[V]):
    """A CacheStore in Redis, shared by every replica using the same `prefix`.

    The client (see `webproxy.stores.redis_clients`, ``decode_responses=False``) belongs to its
    maker, who closes it; `close` leaves it open. A `RedisCluster` client puts the store in
    cluster mode (see above) unless `cluster` says otherwise. An entry whose stored form is
    over `max_entry_bytes` is refused (`put` returns False). `decode` raises ValueError for
    bytes it cannot read; such an entry reads as missing and is deleted best-effort.
    """

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        prefix: str,
        encode: Callable[[V], bytes],
        decode: Callable[[bytes], V],
        max_entry_bytes: int | None = None,
        cluster: bool | None = None,
    ) -> None:
        self._client = client
        self.cluster = isinstance(client, RedisCluster) if cluster is None else cluster
        self._gen_prefix = f"{{{prefix}}}:gen:" if self.cluster else f"{prefix}:gen:"
        self._max_entry_bytes = max_entry_bytes
        self._prefix = prefix
        self._encode = encode
        self._decode = decode
        #: Hits' reads, one pipeline per turn of the loop (not in cluster mode: see there).
        self._reads = (
            BatchedReads(client) if isinstance(client, Redis) and not self.cluster else None
        )
        #: Stored form -> (its header and value, its length): see `_read_entry`.
        self._decoded: LRUCache[bytes, tuple[tuple[_Header, V], int]] = LRUCache(
            DECODED_BYTES, getsizeof=_kept_size
        )
        self._put_script = client.register_script(PUT_SCRIPT)
        self._release_script = client.register_script(RELEASE_SCRIPT)
        self._owed_clear = False
        self._debts = 0  # bumped by every failed purge or clear

    def _entry_key(self, key: str) -> str:
        return f"{self._prefix}:entry:{hashlib.sha256(key.encode()).hexdigest()}"

    def _gen_key(self, counter: str) -> str:
        return self._gen_prefix + counter

    async def get(self, key: str, counters: Sequence[str]) -> Found[V]:
        names = tuple(counters)
        entry_key = self._entry_key(key)
        await self._settle_debt()
        with self._noticing_outage("get"):
            blob, values = await self._read(entry_key, names)
        current = tuple(map(_count, values))
        if blob is None:
            return Found(None, current)
        kept = self._read_entry(blob) if isinstance(blob, bytes) else None
        if kept is None:
            await self._delete_corrupt(entry_key)
            return Found(None, current)
        header, value = kept
        if header.counters != names or header.generation != current:
            return Found(None, current)
        return Found(value, current)

    def _read_entry(self, blob: bytes) -> tuple[_Header, V] | None:
        """The header and decoded value of a stored form (None: unreadable), the same
        bytes read again not decoded again (about 10 µs for a 2 KB entry): kept by
        content, so never stale; whether they are still valid the caller decides."""
        kept = self._decoded.get(blob)
        if kept is not None:
            return kept[0]
        if (unpacked := _unpack(blob)) is None:
            return None
        header, end = unpacked
        try:
            read = header, self._decode(blob[end:])
        except ValueError:
            return None
        if len(blob) <= DECODED_ENTRY_BYTES:
            self._decoded[blob] = (read, len(blob))
        return read

    async def _read(
        self, entry_key: str, names: tuple[str, ...]
    ) -> tuple[object, Sequence[object]]:
        """The entry's stored form (or None) and its counters' raw values: one MGET (with
        the other reads of this turn of the loop, `BatchedReads`), or in cluster mode a GET
        and an MGET of the counters' one slot, sent together."""
        gen_keys = list(map(self._gen_key, names))
        if not self.cluster:
            keys = [entry_key, *gen_keys]
            read = self._reads.mget(keys) if self._reads is not None else self._client.mget(keys)
            raw: Sequence[object] = await read
            return raw[0], raw[1:]
        blob, values = await asyncio.gather(
            self._client.get(entry_key), self._client.mget(gen_keys)
        )
        return blob, values

    async def _delete_corrupt(self, entry_key: str) -> None:
        log.warning("redis entry %s is unreadable; deleting it", entry_key)
        with contextlib.suppress(*FAILURES):
            await self._client.delete(entry_key)

    async def put(
        self,
        key: str,
        value: V,
        *,
        keep: float,
        label: str,
        counters: Sequence[str],
        generation: tuple[int, ...],
    ) -> bool:
        names = tuple(counters)
        check_put(names, generation, keep)
        blob = _pack(_Header(label, names, generation), self._encode(value))
        if self._max_entry_bytes is not None and len(blob) > self._max_entry_bytes:
            return False
        entry_key, px = self._entry_key(key), max(1, math.ceil(keep * 1000))
        gen_keys = list(map(self._gen_key, names))
        await self._settle_debt()
        with self._noticing_outage("put"):
            if self.cluster:
                return await self._check_and_set(entry_key, gen_keys, generation, blob, px)
            args: list[bytes | int | str] = [blob, px, *map(str, generation)]
            stored = await self._put_script(keys=[entry_key, *gen_keys], args=args)
        return bool(stored == 1)

    async def _check_and_set(
        self,
        entry_key: str,
        gen_keys: list[str],
        generation: tuple[int, ...],
        blob: bytes,
        px: int,
    ) -> bool:
        """Cluster mode's `put`: MGET the counters, SET the entry only if none moved (a
        purge between the two leaves an entry that reads as missing; see the module doc)."""
        values = await self._client.mget(gen_keys)
        if tuple(map(_count, values)) != generation:
            return False
        await self._client.set(entry_key, blob, px=px)
        return True

    async def purge(self, counter: str) -> None:
        await self._bump(counter, "purge")

    async def clear(self) -> None:
        debts = self._debts
        await self._bump(ALL, "clear")
        if self._debts == debts:
            self._owed_clear = False

    async def _bump(self, counter: str, action: str) -> None:
        """INCR one counter; if that fails, owe a clear and raise StoreUnavailable."""
        try:
            with _unavailable(action):
                await self._client.incr(self._gen_key(counter))
        except StoreUnavailable:
            self._owed_clear = True
            self._debts += 1
            log.warning("redis %s of %r failed; a clear is owed", action, counter)
            raise

    def owe_clear(self, reason: str) -> None:
        """Owe a clear, paid before any later get or put succeeds: something may have
        been lost that the store cannot see (e.g. the event subscription dropped, as in a
        failover to a replica that missed a purge the old master had acknowledged)."""
        self._owed_clear = True
        self._debts += 1
        log.warning("a clear is owed: %s", reason)

    @contextlib.contextmanager
    def _noticing_outage(self, action: str) -> Iterator[None]:
        """As `_unavailable`; if Redis is gone rather than slow, owe a clear (see above)."""
        try:
            with _unavailable(action):
                yield
        except StoreUnavailable as exc:
            if _redis_gone(exc) and not self._owed_clear:
                self._owed_clear = True
                self._debts += 1
                log.warning("redis is gone; a clear is owed for when it returns")
            raise

    async def _settle_debt(self) -> None:
        """Pay an owed clear before anything is read or written; raise if Redis is away.

        Concurrent callers may each pay (INCR is idempotent enough: a few extra misses), rather
        than queue behind one another while Redis is slow.
        """
        if not self._owed_clear:
            return
        debts = self._debts
        with _unavailable("owed clear"):
            await self._client.incr(self._gen_key(ALL))
        if self._debts == debts:
            self._owed_clear = False
            log.info("redis is back; the owed clear is paid")

    async def stats(self) -> StoreStats:
        """Scan this prefix's entries and count those readable now (admin use only)."""
        pattern = f"{_glob_escape(self._prefix)}:entry:*"
        with _unavailable("stats"):
            keys = [key async for key in self._client.scan_iter(match=pattern, count=SCAN_BATCH)]
            held: list[tuple[_Header, int]] = []
            for start in range(0, len(keys), SCAN_BATCH):
                held += await self._peek(keys[start : start + SCAN_BATCH])
            names = sorted({name for header, _ in held for name in header.counters})
            values = await self._client.mget(list(map(self._gen_key, names))) if names else []
        current = dict(zip(names, map(_count, values), strict=True))
        entries: defaultdict[str, int] = defaultdict(int)
        sizes: defaultdict[str, int] = defaultdict(int)
        for header, size in held:
            if tuple(current[name] for name in header.counters) == header.generation:
                entries[header.label] += 1
                sizes[header.label] += size
        by_label = {label: LabelStats(entries[label], sizes[label]) for label in entries}
        return StoreStats(sum(entries.values()), sum(sizes.values()), by_label)

    async def _peek(self, keys: Sequence[bytes | str]) -> list[tuple[_Header, int]]:
        """Each entry's header and stored size; entries gone or unreadable are left out."""
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            pipe.getrange(key, 0, PEEK - 1)
            pipe.strlen(key)
        replies = await pipe.execute(raise_on_error=False)  # a foreign key's error: skip it
        held: list[tuple[_Header, int]] = []
        for key, head, size in zip(keys, replies[::2], replies[1::2], strict=True):
            if not isinstance(head, bytes) or (end := _header_end(head)) is None:
                continue
            if len(head) < end <= size:  # a header longer than PEEK: read all of it
                head = await self._client.getrange(key, 0, end - 1)
            unpacked = _unpack(head) if isinstance(head, bytes) else None
            if unpacked is not None:
                held.append((unpacked[0], int(size)))
        return held

    async def claim(self, key: str, ttl: float) -> str | None:
        """`SET <prefix>:fill:<hash> <token> NX PX ttl`; a lock its holder's death ends."""
        token = secrets.token_hex(8)
        with _unavailable("claim"):
            taken = await self._client.set(
                self._fill_key(key), token, nx=True, px=max(1, math.ceil(ttl * 1000))
            )
        return token if taken else None

    async def release(self, key: str, token: str) -> None:
        with _unavailable("release"):
            await self._release_script(keys=[self._fill_key(key)], args=[token])

    def _fill_key(self, key: str) -> str:
        return f"{self._prefix}:fill:{hashlib.sha256(key.encode()).hexdigest()}"

    async def ping(self) -> None:
        await self._settle_debt()  # a store that cannot pay an owed clear is not serving
        with _unavailable("ping"):
            await self._client.ping()

    async def close(self) -> None:
        if self._reads is not None:
            await self._reads.close()
