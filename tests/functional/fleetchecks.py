"""What every shared store must show through two replicas, checked alike for Redis, Redis
Cluster and Sentinel (`test_shared_redis.py`, `test_shared_cluster.py`,
`test_shared_sentinel.py`)."""

from __future__ import annotations

import asyncio

from tests.conftest import ADMIN, AGENT, Proxy, Sim
from tests.functional.finesse import upstream_gets
from webproxy.sim.faults import Fault, FaultKind

CODES = "/finesse/api/TeamResource/5000/ReasonCodes?category=ALL"
NEW_CODE = (
    "<ReasonCode><category>NOT_READY</category><code>778</code>"
    "<label>Shared drill</label><forAll>true</forAll></ReasonCode>"
)
XML = {"Content-Type": "application/xml"}


async def a_write_through_one_is_fresh_through_the_other(first: Proxy, second: Proxy) -> None:
    """A ReasonCode write through `first` purges every team, so `second` misses and reads
    the new code."""
    write = await first.client.post(
        "/finesse/api/ReasonCode", data=NEW_CODE, headers={**ADMIN, **XML}
    )
    assert write.status == 200
    fresh = await second.client.get(CODES, headers=AGENT)
    assert fresh.headers["Cache-Status"].startswith("webproxy; fwd=miss")
    assert b"Shared drill" in await fresh.read()


async def misses_at_both_share_one_fetch(sim: Sim, replicas: tuple[Proxy, Proxy]) -> None:
    """Two misses at each replica, while Finesse is slow: one upstream fetch, the three
    others answered from it (`collapsed`), one body."""
    sim.sim.inject(Fault("/finesse/api/TeamResource", FaultKind.LATENCY, seconds=0.5))
    sim.sim.reset_stats()
    answers = await asyncio.gather(
        *(proxy.client.get(CODES, headers=AGENT) for proxy in (*replicas, *replicas))
    )
    assert [answer.status for answer in answers] == [200] * 4
    assert upstream_gets(sim, "/finesse/api/TeamResource/5000/ReasonCodes") == 1
    statuses = sorted(answer.headers["Cache-Status"] for answer in answers)
    assert sum("collapsed" in status for status in statuses) == 3, statuses
    assert len({await answer.read() for answer in answers}) == 1
