"""Running a plan through the proxy, with one writer and many concurrent readers."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

import aiohttp
from yarl import URL

from tests.functional.crossuser.oracle import (
    LOGIN_ID,
    Answered,
    Event,
    Facts,
    Timeline,
    digest,
)
from tests.functional.crossuser.plan import Clear, Move, Op, Read, Rotate, Slow, Write
from tests.functional.crossuser.population import (
    API,
    ROTATING_USER,
    Credential,
    Population,
    View,
    rotating_credential,
)
from tests.functional.crossuser.spelling import spell
from tests.functional.crossuser.writes import Composer

XML: Final = {"Content-Type": "application/xml"}
DIRECT_AT_ONCE: Final = 16  # oracle reads in flight at once
MAX_SEEN: Final = 10_000  # distinct proxied bodies kept for reports


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where the three parts listen, and the session that reaches them."""

    session: aiohttp.ClientSession
    proxy: str
    admin: str
    sim: str


@dataclass(frozen=True, slots=True)
class Request:
    """What a change sends besides its method and URL."""

    data: str | None = None
    json: dict[str, str] | None = None
    headers: dict[str, str] | None = None


@dataclass
class Runner:
    """Executes a plan: readers in parallel, writes and changes one at a time."""

    endpoints: Endpoints
    population: Population
    concurrency: int
    odd: float = 0.5
    timeline: Timeline = field(default_factory=Timeline)
    facts: Facts = field(default_factory=Facts)
    reads: list[Answered] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    writer: asyncio.Lock = field(default_factory=asyncio.Lock)
    direct_slots: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(DIRECT_AT_ONCE)
    )
    oracle_reads: int = 0
    checked: set[str] = field(default_factory=set)  # user changes that changed no body
    kinds: Counter[str] = field(default_factory=Counter)  # writes, changes, clears by kind
    seen: dict[bytes, bytes] = field(default_factory=dict)  # digest -> proxied body

    # -- oracle reads, straight from the simulator ----------------------------------
    async def direct(self, credential: Credential, target: str) -> tuple[int, bytes]:
        url = URL(self.endpoints.sim + target, encoded=True)
        headers = {"Authorization": credential.authorization}
        self.oracle_reads += 1
        async with self.direct_slots, self.endpoints.session.get(url, headers=headers) as answer:
            return answer.status, await answer.read()

    async def capture_bodies(self) -> dict[View, bytes]:
        """Every cached resource at the current version, read by a member of its team."""
        pop = self.population

        async def one(view: View) -> tuple[View, bytes]:
            reader = pop.admin if view.team is None else pop.representatives[view.team]
            status, body = await self.direct(reader, view.target)
            if status != 200:
                raise AssertionError(f"oracle: {reader.label} got {status} for {view.target}")
            return view, body

        return dict(await asyncio.gather(*(one(v) for v in pop.cached_views)))

    async def keep_bodies(self) -> None:
        version = self.timeline.completed
        for view, body in (await self.capture_bodies()).items():
            self.facts.keep_body(view, version, body)

    async def carry_bodies(self, change: str) -> None:
        """After a password change or a move: no resource changed (checked the first time
        of each in a run; after that the bodies are carried over without asking again)."""
        version, facts = self.timeline.completed, self.facts
        if change not in self.checked:
            self.checked.add(change)
            now = await self.capture_bodies()
            changed = [v.target for v, body in now.items() if digest(body) != facts.latest[v]]
            if changed:
                raise AssertionError(f"oracle: a {change} changed {changed}: cannot carry them")
        for view in self.population.cached_views:
            facts.carry(view, version)

    async def capture_statuses(self, credentials: Iterable[Credential]) -> None:
        """What each credential gets now for everything it may ask, in its current epoch."""
        version = self.timeline.completed
        await asyncio.gather(
            *(
                self.capture_status(c, self.facts.epoch(c, version), v)
                for c in credentials
                for v in self.population.views_of(c)
            )
        )

    async def capture_status(self, credential: Credential, epoch: int, view: View) -> None:
        """The status `credential` gets for `view` now; a 200 body must be the one every
        member gets (the bodies are read with one member per team)."""
        status, body = await self.direct(credential, view.target)
        self.facts.statuses[credential, epoch, view] = status
        latest = self.facts.latest.get(view)
        if status == 200 and latest is not None and digest(body) != latest:
            raise AssertionError(f"oracle: {credential.label} got another {view.target}")

    async def capture_stable(self) -> None:
        """Statuses of every (credential, view) read that is not known yet: credentials
        whose facts never changed, asked once the run is over."""
        wanted = {
            (r.credential, r.view)
            for r in self.reads
            if (r.credential, 0, r.view) not in self.facts.statuses
        }
        changing = [c for c, _ in wanted if c in self.facts.changes]
        if changing:
            raise AssertionError(f"oracle: no statuses kept for {changing[0].label}")
        await asyncio.gather(*(self.capture_status(c, 0, v) for c, v in wanted))

    # -- the plan ---------------------------------------------------------------------
    async def start(self) -> None:
        """Version 0: the bodies, and the statuses of every credential that will change."""
        await self.keep_bodies()
        changing = [*self.population.movers, rotating_credential(0), rotating_credential(1)]
        await self.capture_statuses(changing)

    async def execute(self, plan: list[Op]) -> None:
        ops: Iterator[tuple[int, Op]] = iter(enumerate(plan))

        async def worker() -> None:
            for index, op in ops:  # one shared iterator: ops are issued in plan order
                await self.perform(index, op)

        await asyncio.gather(*(worker() for _ in range(self.concurrency)))

    async def perform(self, index: int, op: Op) -> None:
        match op:
            case Read():
                await self.read(index, op)
            case Write():
                await self.write(index, op)
            case Rotate():
                await self.rotate(index, op)
            case Move():
                await self.move(index, op)
            case Clear():
                await self.clear(index, op)
            case Slow():
                await self.slow(index, op)

    async def read(self, index: int, op: Read) -> None:
        timeline, credential = self.timeline, op.credential
        url = URL(self.endpoints.proxy + op.target, encoded=True)
        headers = {"Authorization": credential.authorization}
        sent, low = timeline.now(), timeline.completed
        async with self.endpoints.session.get(url, headers=headers) as answer:
            body = await answer.read()
        done, high = timeline.now(), timeline.high
        login = LOGIN_ID.search(body) if op.view.is_user and answer.status == 200 else None
        key = digest(body)
        if len(self.seen) < MAX_SEEN:
            self.seen.setdefault(key, body)
        self.reads.append(
            Answered(
                index=index,
                credential=credential,
                view=op.view,
                target=op.target,
                kind=op.kind,
                sent=sent,
                done=done,
                low=low,
                high=high,
                status=answer.status,
                body=key,
                cache_status=answer.headers.get("Cache-Status", ""),
                login_id=login[1] if login else None,
            )
        )

    async def write(self, index: int, op: Write) -> None:
        pop, rng = self.population, random.Random(op.seed)
        async with self.writer:
            composer = Composer(rng, op.number, pop.teams, self.list_config)
            request = await composer.compose(op.kind)
            target = spell(request.target, rng, odd=self.odd)
            headers = {"Authorization": pop.admin.authorization, **XML}
            url = URL(self.endpoints.proxy + target, encoded=True)
            sent = Request(data=request.body, headers=headers)
            await self.change(index, op.kind, request.method, url, target, sent)
            await self.keep_bodies()

    async def list_config(self, path: str) -> bytes:
        status, body = await self.direct(self.population.admin, f"{API}/{path}")
        if status != 200:
            raise AssertionError(f"oracle: the admin got {status} for {path}")
        return body

    async def rotate(self, index: int, op: Rotate) -> None:
        """The rotating user's password changes: the old credential is refused from now."""
        async with self.writer:
            old, new = rotating_credential(op.rotation - 1), rotating_credential(op.rotation)
            change = {"password": new.password}
            await self.change_user(index, "password-change", ROTATING_USER, change, (old, new))
            await self.carry_bodies("password-change")
            await self.capture_statuses([old, new, rotating_credential(op.rotation + 1)])

    async def move(self, index: int, op: Move) -> None:
        async with self.writer:
            moved = [c for c in self.population.movers if c.login_id == op.login_id]
            await self.change_user(index, "move", op.login_id, {"teamId": op.team}, moved)
            await self.carry_bodies("move")
            await self.capture_statuses(moved)

    async def change_user(
        self,
        index: int,
        what: str,
        login_id: str,
        change: dict[str, str],
        changed: Iterable[Credential],
    ) -> None:
        """PATCH /sim/users/{loginId}: what Finesse's own admin tools change (never the proxy)."""
        target = f"/sim/users/{login_id}"
        url = URL(self.endpoints.sim + target)
        done = await self.change(index, what, "PATCH", url, target, Request(json=change))
        if self.events[-1].status != 200:
            raise AssertionError(f"oracle: PATCH {target} {change} answered {self.events[-1]}")
        for credential in changed:
            self.facts.changes.setdefault(credential, []).append((self.timeline.completed, done))

    async def change(
        self, index: int, what: str, method: str, url: URL, target: str, request: Request
    ) -> int:
        """One change of the state, while no other is in flight (the writer lock held);
        returns the tick of its answer."""
        timeline = self.timeline
        timeline.in_flight = True
        sent = timeline.now()
        try:
            async with self.endpoints.session.request(
                method, url, data=request.data, json=request.json, headers=request.headers
            ) as answer:
                await answer.read()
                status = answer.status
        finally:
            timeline.completed += 1
            timeline.in_flight = False
        done = timeline.now()
        self.events.append(
            Event(index, what, f"{method} {target}", sent, done, status, timeline.completed)
        )
        self.kinds[what] += 1
        return done

    async def clear(self, index: int, op: Clear) -> None:
        """POST /admin/cache/clear: not a change of Finesse, so it runs beside everything."""
        timeline = self.timeline
        url = URL(self.endpoints.admin + "/admin/cache/clear").with_query(op.query)
        sent, version = timeline.now(), timeline.completed
        async with self.endpoints.session.post(url) as answer:
            await answer.read()
            status = answer.status
        done = timeline.now()
        self.events.append(Event(index, "clear", op.query, sent, done, status, version))
        self.kinds["cache-clear"] += 1

    async def slow(self, index: int, op: Slow) -> None:
        """Arm a latency fault in the simulator (POST /sim/faults): timing only."""
        fault = {"path": op.path, "kind": "latency", "seconds": op.seconds, "count": op.count}
        url = URL(self.endpoints.sim + "/sim/faults")
        async with self.endpoints.session.post(url, json=fault) as answer:
            await answer.read()
            if answer.status != 201:
                raise AssertionError(f"oracle: the simulator refused the fault {fault}")
        self.kinds["slow-answers"] += 1
