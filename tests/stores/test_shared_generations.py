"""Generations shared by forked workers: one process's purge is every process's purge."""

from __future__ import annotations

import multiprocessing

from webproxy.stores.shared import SharedGenerations


def test_a_bump_in_a_forked_worker_is_read_by_its_siblings() -> None:
    shared = SharedGenerations()
    shared.bump("all")
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=shared.bump, args=("team:5000",)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(10)
        assert worker.exitcode == 0
    assert shared.read(["all", "teams", "team:5000"]) == (1, 0, 2)


def test_names_that_share_a_slot_over_purge_and_never_under_purge() -> None:
    shared = SharedGenerations(slots=1)  # every name in one slot
    shared.bump("team:5000")
    assert shared.read(["team:5000", "team:5001"]) == (1, 1)
