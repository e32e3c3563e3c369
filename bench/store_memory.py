"""What the memory store's entries really cost, against what its budget counts.

    .venv/bin/python -m bench.store_memory [--max-bytes N] [--entries N]

Fills a `MemoryStore` sized as the proxy sizes it (`entry_cost`: the entry's objects by
`sys.getsizeof` in 16-byte blocks, the key, and `HELD_OVERHEAD` for the store's own
structures) with small answers under long keys (the worst case: overhead dominates), many
times over its budget, and prints memory traced by tracemalloc against what the budget
counted, then RSS grown against `max_bytes`.
"""

from __future__ import annotations

import argparse
import asyncio
import tracemalloc

from tests.stores.test_memory_bound import TEAM, fill
from webproxy.app import entry_cost
from webproxy.stores.memory import HELD_OVERHEAD, MemoryStore


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


async def traced(max_bytes: int, count: int) -> tuple[int, int]:
    """Memory traced while `count` entries churn through a store of `max_bytes`, and what
    its budget counted for those it kept."""
    store = MemoryStore(max_bytes, sizeof=entry_cost)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    await fill(store, count)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return held, (await store.stats()).bytes


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-bytes", type=int, default=64 * 1024 * 1024)
    parser.add_argument("--entries", type=int, default=200_000)
    args = parser.parse_args()
    held, counted = await traced(4 * 1024 * 1024, 40_000)
    print(f"tracemalloc, 40,000 entries through 4 MiB: {held:,} bytes held, {counted:,} counted"
          f" ({held / counted:.2f}x; HELD_OVERHEAD = {HELD_OVERHEAD} per entry)")  # fmt: skip
    store = MemoryStore(args.max_bytes, sizeof=entry_cost)
    rss_before = rss_bytes()
    await fill(store, args.entries)
    grown = rss_bytes() - rss_before
    stats = await store.stats()
    print(f"filled with {args.entries:,} entries of {TEAM.label}: {stats.entries:,} kept,"
          f" {stats.bytes:,} bytes counted against max_bytes = {args.max_bytes:,}")  # fmt: skip
    print(f"RSS grew {grown:,} bytes = {grown / args.max_bytes:.2f}x max_bytes")


if __name__ == "__main__":
    asyncio.run(main())
