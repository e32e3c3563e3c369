"""Fills: waiters for a key another process fills are woken once it is filled, never lost."""

from __future__ import annotations

from webproxy.fills import Fills, key_hash
from webproxy.fleet import Event

KEY = "/finesse/api/ChatConfig"


async def test_a_fill_that_ends_before_the_wait_begins_still_wakes_a_watcher() -> None:
    fills = Fills()
    with fills.watching(KEY) as watch:
        fills.wake(key_hash(KEY))  # the filled event, heard while the claim was refused
        assert await watch.wait(patience=0.01)
    assert len(fills) == 0


async def test_a_wait_without_a_fill_gives_up_after_its_patience() -> None:
    fills = Fills()
    assert not await fills.wait(KEY, patience=0.01)
    assert len(fills) == 0


async def test_a_fill_here_wakes_every_waiter_and_tells_the_fleet() -> None:
    told: list[Event] = []
    fills = Fills(publish=told.append)
    with fills.watching(KEY) as first, fills.watching(KEY) as second:
        fills.filled(KEY)
        assert await first.wait(0.01) and await second.wait(0.01)
    assert [event.payload for event in told] == [key_hash(KEY)]
    assert len(fills) == 0
