"""One cross-user run: plan, execute, judge, and the figures it prints."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Final

from tests.functional.crossuser.oracle import FAILURES, Answered, Judge, Verdict
from tests.functional.crossuser.plan import Mix, make_plan
from tests.functional.crossuser.population import Population
from tests.functional.crossuser.run import Endpoints, Runner

SHOWN: Final = 10  # findings printed in full


@dataclass(frozen=True, slots=True)
class CrossUserConfig:
    seed: int
    requests: int
    concurrency: int = 24
    mix: Mix = field(default_factory=Mix)
    store: str = "memory"
    strict: bool = False  # see oracle.Judge.strict


@dataclass
class Report:
    """Everything a run prints; `failed` is the number of foreign, stale, wrong-status and
    unknown answers together."""

    config: CrossUserConfig
    seconds: float
    reads: Counter[str]  # by read kind
    hits: Counter[str]  # by read kind, Cache-Status hit
    others: Counter[str]  # writes by kind, password changes, moves, clears
    by_caller: Counter[str]  # reads by credential kind
    verdicts: Counter[Verdict]
    findings: list[tuple[Answered, Verdict]]
    bodies: dict[bytes, bytes]
    oracle_reads: int
    across: int  # reads that were in flight while the state changed

    @property
    def failed(self) -> int:
        return sum(n for v, n in self.verdicts.items() if v in FAILURES)

    @property
    def requests(self) -> int:
        return sum(self.reads.values()) + sum(self.others.values())

    def lines(self, rerun: str) -> list[str]:
        c, v = self.config, self.verdicts
        cached = {k: n for k, n in self.reads.items() if k not in ("sign-in", "peer-user")}
        out = [
            f"cross-user: seed {c.seed}, {c.store} store, {self.requests} requests "
            f"({c.concurrency} at once{', strict' if c.strict else ''}) in {self.seconds:.1f} s, "
            f"{self.oracle_reads} oracle reads straight from the simulator",
            "  reads by kind     " + _counts(self.reads),
            f"  hits              {sum(self.hits.values())} of {sum(cached.values())} reads "
            "of cached resources: " + _counts(self.hits),
            "  reads by caller   " + _counts(self.by_caller),
            "  writes and more   " + _counts(self.others),
            f"  reads across a change of Finesse's state: {self.across}",
            f"  verdicts          ok {v[Verdict.OK]}, lag {v[Verdict.LAG]} (old facts of a "
            "changed credential, before the proxy could know)",
            f"  foreign bodies    {v[Verdict.FOREIGN]}",
            f"  stale bodies      {v[Verdict.STALE]}",
            f"  wrong statuses    {v[Verdict.STATUS]}",
            f"  unknown bodies    {v[Verdict.UNKNOWN]}",
        ]
        for read, verdict in self.findings[:SHOWN]:
            out.append(f"  {verdict.upper()}: {describe(read, self.bodies)}")
        if self.failed:
            out.append(f"  rerun: {rerun}")
        return out


def describe(read: Answered, bodies: dict[bytes, bytes]) -> str:
    body = bodies.get(read.body, b"?")[:300].decode(errors="replace")
    return (
        f"op {read.index} {read.kind}: {read.credential.label} ({read.credential.kind}) "
        f"GET {read.target} (Finesse reads {read.view.target}) -> {read.status} "
        f"[{read.cache_status}] versions {read.low}..{read.high}, ticks {read.sent}..{read.done}; "
        f"body {body!r}"
    )


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {n}" for k, n in sorted(counter.items())) or "none"


async def run_cross_user(config: CrossUserConfig, endpoints: Endpoints) -> Report:
    """Plan `config.requests` operations from `config.seed`, run them, judge every answer."""
    population = Population.build()
    plan = make_plan(config.seed, config.requests, population, config.mix)
    runner = Runner(endpoints, population, config.concurrency, config.mix.odd)
    started = time.perf_counter()
    await runner.start()
    await runner.execute(plan)
    await runner.capture_stable()
    seconds = time.perf_counter() - started
    clears = [e for e in runner.events if e.what == "clear" and e.status == 200]
    verdicts = Judge(runner.facts, runner.reads, clears, config.strict).verdicts()
    return Report(
        config=config,
        seconds=seconds,
        reads=Counter(r.kind for r in runner.reads),
        hits=Counter(r.kind for r in runner.reads if r.hit),
        others=runner.kinds,
        by_caller=Counter(str(r.credential.kind) for r in runner.reads),
        verdicts=Counter(v for _, v in verdicts),
        findings=[(r, v) for r, v in verdicts if v in FAILURES],
        bodies={**runner.facts.texts, **runner.seen},
        oracle_reads=runner.oracle_reads,
        across=sum(1 for r in runner.reads if r.low < r.high),
    )
