"""`webproxy serve --workers 2`: one port, two processes, one cache as far as purges go."""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from tests.conftest import ADMIN, Sim, basic
from tests.functional.finesse import eventually
from tests.functional.serving import Served, serving
from webproxy.sim.faults import Fault, FaultKind

CHAT = "/finesse/api/ChatConfig"
JSON_ACCESS_LOG = {"WEBPROXY_LOG_ACCESS": "info", "WEBPROXY_LOG_FORMAT": "json"}


def access_lines(served: Served) -> list[dict[str, object]]:
    lines = (json.loads(line) for line in served.stderr if line.startswith("{"))
    return [line for line in lines if line.get("logger") == "webproxy.access"]


async def desktop_reads(
    served: Served, path: str, reads: int, *, sign_in: bool = True
) -> tuple[int, list[str]]:
    """On one new connection: sign in, then read `path`; which worker, and what it did.

    Each connection's requests carry their own `nocache` value, which the access log
    shows, to find their lines among everyone's.
    """
    marker = f"nocache={uuid.uuid4().hex}"
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as client:
        agent = basic("10001")
        if sign_in:
            user = f"{served.proxy}/finesse/api/User/10001?{marker}"
            async with client.get(user, headers=agent) as r:
                assert r.status == 200
        for _ in range(reads):
            async with client.get(f"{served.proxy}{path}?{marker}", headers=agent) as r:
                assert r.status == 200

    def mine() -> list[dict[str, object]]:
        return [line for line in access_lines(served) if marker in str(line["path"])]

    await eventually(lambda: len(mine()) == sign_in + reads)
    workers = {line["worker"] for line in mine()}
    assert len(workers) == 1, "one connection, one worker"
    return int(str(workers.pop())), [str(line["cache"]) for line in mine()[sign_in:]]


async def first_reads_on_each_worker(
    served: Served, path: str, *, sign_in: bool = True
) -> dict[int, str]:
    """New connections until both workers have answered; each worker's first cache result."""
    first: dict[int, str] = {}
    for _ in range(200):
        worker, results = await desktop_reads(served, path, 1, sign_in=sign_in)
        first.setdefault(worker, results[0])
        if len(first) == 2:
            return first
    raise AssertionError(f"only workers {sorted(first)} answered")


async def warm_both(served: Served) -> None:
    warmed: set[int] = set()
    for _ in range(200):
        worker, results = await desktop_reads(served, CHAT, 2)
        if results[-1] == "hit":
            warmed.add(worker)
        if len(warmed) == 2:
            return
    raise AssertionError(f"only workers {sorted(warmed)} hold an entry")


async def clear_by_admin(served: Served, client: aiohttp.ClientSession) -> None:
    async with client.post(f"{served.admin}/admin/cache/clear") as r:
        assert r.status == 200


async def write_chat_config(served: Served, client: aiohttp.ClientSession) -> None:
    body = "<ChatConfig><primaryNode>https://chat9.example</primaryNode></ChatConfig>"
    headers = {**ADMIN, "Content-Type": "application/xml"}
    async with client.put(f"{served.proxy}{CHAT}", data=body, headers=headers) as r:
        assert r.status == 200


@pytest.mark.parametrize("purge", [clear_by_admin, write_chat_config], ids=["admin", "write"])
async def test_a_purge_through_one_worker_reaches_every_workers_memory_store(
    sim: Sim, purge: Callable[[Served, aiohttp.ClientSession], Awaitable[None]]
) -> None:
    args = ["--upstream", sim.url, "--workers", "2"]
    async with serving(args, JSON_ACCESS_LOG) as served, aiohttp.ClientSession() as client:
        await warm_both(served)
        await purge(served, client)
        first = await first_reads_on_each_worker(served, CHAT)
        assert set(first.values()) == {"miss"}, first
        served.signal(signal.SIGTERM)
        assert await served.exit_code() == 0


async def test_a_credential_refused_through_one_worker_gets_nothing_cached_from_any(
    sim: Sim,
) -> None:
    args = ["--upstream", sim.url, "--workers", "2"]
    async with serving(args, JSON_ACCESS_LOG) as served, aiohttp.ClientSession() as client:
        await warm_both(served)  # signed in, and ChatConfig a hit, on both workers
        sim.sim.inject(Fault("/finesse/api/User/10001/Dialogs", FaultKind.STATUS, status=401))
        dialogs = f"{served.proxy}/finesse/api/User/10001/Dialogs"
        async with client.get(dialogs, headers=basic("10001")) as refused:
            assert refused.status == 401  # say, the password was changed: one worker saw it
        first = await first_reads_on_each_worker(served, CHAT, sign_in=False)
        assert set(first.values()) == {"unauthorized"}, first  # Finesse asked again, on both
        served.signal(signal.SIGTERM)
        assert await served.exit_code() == 0


async def test_a_dead_worker_is_replaced_and_the_scrape_covers_the_group(sim: Sim) -> None:
    args = ["--upstream", sim.url, "--workers", "2"]
    async with serving(args, JSON_ACCESS_LOG) as served, aiohttp.ClientSession() as client:
        await warm_both(served)
        victim = int(str(access_lines(served)[-1]["worker"]))
        os.kill(victim, signal.SIGKILL)
        await eventually(lambda: any("exited with -9" in line for line in served.stderr), 10)
        await eventually(lambda: sum("started (pid" in line for line in served.stderr) == 3, 10)
        first = await first_reads_on_each_worker(served, CHAT)
        assert victim not in first
        async with client.get(f"{served.admin}/metrics") as r:
            scrape = await r.text()
        answered = len(access_lines(served))
        total = sum(
            float(line.rsplit(" ", 1)[1])
            for line in scrape.splitlines()
            if line.startswith("webproxy_requests_total{")
        )
        assert total == answered  # every worker's requests, the dead one's included
        served.signal(signal.SIGTERM)
        assert await served.exit_code() == 0


def alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped, is not)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return not any(line.startswith("State:\tZ") for line in status)
    except FileNotFoundError:
        return False


async def test_workers_do_not_outlive_a_killed_supervisor(sim: Sim) -> None:
    async with serving(["--upstream", sim.url, "--workers", "2"]) as served:
        await eventually(lambda: sum("started (pid" in line for line in served.stderr) == 2)
        pids = [
            int(line.rsplit("pid ", 1)[1].rstrip(")\n"))
            for line in served.stderr
            if "started (pid" in line
        ]
        served.signal(signal.SIGKILL)
        await served.exit_code()
        await eventually(lambda: not any(alive(pid) for pid in pids), 15)
