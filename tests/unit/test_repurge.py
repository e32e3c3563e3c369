"""Delayed purges: each write is purged again at or after its own time, a flood of them
costs at most two runs' worth of waiting."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from tests.functional.finesse import eventually
from webproxy.cache.rules import Purge
from webproxy.repurge import Repurges

TEAMS = (Purge.all_teams(),)


async def test_writes_asking_while_one_waits_are_covered_by_one_more_run() -> None:
    runs: list[float] = []

    async def purge(purges: Sequence[Purge]) -> bool:
        runs.append(asyncio.get_running_loop().time())
        return True

    repurges = Repurges(purge)
    loop = asyncio.get_running_loop()
    first_at = loop.time() + 0.05
    repurges.schedule(TEAMS, 0.05)
    for _ in range(1000):  # a flood of failing writes, all asking for the same purge
        repurges.schedule(TEAMS, 0.1)
    last_at = loop.time() + 0.1
    assert len(repurges) == 1
    await eventually(lambda: len(runs) == 2)
    assert runs[0] >= first_at and runs[1] >= last_at  # the last write is covered too
    assert len(repurges) == 0
    await repurges.close()


async def test_close_cancels_what_still_waits() -> None:
    async def purge(purges: Sequence[Purge]) -> bool:
        raise AssertionError("ran after close")

    repurges = Repurges(purge)
    repurges.schedule(TEAMS, 60.0)
    await repurges.close()
