"""Randomised cross-user differential: no caller ever gets from the proxy a body Finesse
would not give them at that moment, under every spelling, write, password change and move.

Short mode (a few thousand requests per store); the long mode is `bench/cross_user.py`.
The seed is random unless `CROSS_USER_SEED` is set; a failing run prints how to rerun it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpServer
from yarl import URL

from tests.conftest import ProxyFactory, settings_for
from tests.functional.crossuser import (
    CrossUserConfig,
    Endpoints,
    Mix,
    Population,
    run_cross_user,
)
from tests.functional.crossuser.oracle import Answered, Facts, Judge, Verdict, digest
from tests.functional.crossuser.plan import Read, make_plan
from tests.functional.crossuser.population import Credential, Kind, View, team_views, user_view
from webproxy.sim import FinesseSimulator
from webproxy.sim.tomcat import finesse_path

SEED = int(os.environ.get("CROSS_USER_SEED") or secrets.randbelow(2**32))
REQUESTS = int(os.environ.get("CROSS_USER_REQUESTS") or 2000)
IGNORED = ("nocache", "bypassServerCache")


def base(url: URL) -> str:
    return str(url).rstrip("/")


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def finesse(aiohttp_server: AiohttpServer) -> TestServer:
    return await aiohttp_server(FinesseSimulator(Population.build().data).app)


async def test_no_caller_gets_a_body_finesse_would_not_give_them_then(
    finesse: TestServer,
    start_proxy: ProxyFactory,
    store_section: dict[str, object],
    session: aiohttp.ClientSession,
    request: pytest.FixtureRequest,
) -> None:
    upstream = base(finesse.make_url(""))
    proxy = await start_proxy(settings_for(upstream, store=store_section))
    store = str(store_section["backend"])
    config = CrossUserConfig(SEED, REQUESTS, store=store)
    endpoints = Endpoints(
        session, base(proxy.client.make_url("")), base(proxy.admin.make_url("")), upstream
    )
    report = await run_cross_user(config, endpoints)
    rerun = (
        f"CROSS_USER_SEED={SEED} CROSS_USER_REQUESTS={REQUESTS} .venv/bin/pytest -s "
        f"'{request.node.nodeid}' (or .venv/bin/python -m bench.cross_user --seed {SEED} "
        f"--requests {REQUESTS} --store {store})"
    )
    text = "\n".join(report.lines(rerun))
    print(text)
    assert report.failed == 0, text
    assert sum(report.hits.values()) > REQUESTS // 10, text  # the cache was really in play
    assert report.verdicts[Verdict.OK] > REQUESTS // 2, text


class SharingCache:
    """A proxy that shares every 200 by the URL Finesse reads, never purges and never asks
    who is calling: what the suite exists to catch."""

    def __init__(self, upstream: str, session: aiohttp.ClientSession) -> None:
        self.upstream = upstream
        self.session = session
        self.entries: dict[str, bytes] = {}

    async def handle(self, request: web.Request) -> web.Response:
        path, _, query = request.raw_path.partition("?")
        pairs = sorted(p for p in query.split("&") if p.partition("=")[0] not in IGNORED)
        key = f"{finesse_path(path)}?{'&'.join(pairs)}"
        if request.method == "GET" and key in self.entries:
            return web.Response(body=self.entries[key], content_type="application/xml")
        url = URL(self.upstream + request.raw_path, encoded=True)
        headers = {
            k: v for k, v in request.headers.items() if k in ("Authorization", "Content-Type")
        }
        data = await request.read()
        async with self.session.request(request.method, url, headers=headers, data=data) as answer:
            body, status = await answer.read(), answer.status
        if request.method == "GET" and status == 200:
            self.entries[key] = body
        return web.Response(status=status, body=body)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app


async def cleared(request: web.Request) -> web.Response:
    return web.json_response({"cleared": {"scope": "nothing, really"}})


async def test_the_oracle_catches_a_proxy_that_shares_bodies_across_callers(
    finesse: TestServer, aiohttp_server: AiohttpServer, session: aiohttp.ClientSession
) -> None:
    upstream = base(finesse.make_url(""))
    sharing = await aiohttp_server(SharingCache(upstream, session).app())
    admin = web.Application()
    admin.router.add_post("/admin/cache/clear", cleared)
    admin_server = await aiohttp_server(admin)
    endpoints = Endpoints(
        session, base(sharing.make_url("")), base(admin_server.make_url("")), upstream
    )
    config = CrossUserConfig(SEED, 600, mix=Mix(write=0.06))  # many writes: stale bodies
    report = await run_cross_user(config, endpoints)
    text = "\n".join(report.lines("(a deliberately wrong proxy)"))
    print(text)
    assert report.verdicts[Verdict.FOREIGN] > 0, text
    assert report.verdicts[Verdict.STALE] > 0, text


def test_a_plan_is_the_same_for_the_same_seed_and_covers_every_kind() -> None:
    population = Population.build()
    plan = make_plan(SEED, 3000, population)
    assert plan == make_plan(SEED, 3000, population)
    assert plan != make_plan(SEED + 1, 3000, population)
    kinds = {type(op).__name__ for op in plan}
    assert kinds == {"Read", "Write", "Rotate", "Move", "Clear", "Slow"}
    read_kinds = {op.kind for op in plan if isinstance(op, Read)}
    assert len(read_kinds) == 6


MOVER = Credential("11003", "finesse", Kind.MOVER, "11003", "5001")
AGENT = Credential("11001", "finesse", Kind.AGENT, "11001", "5001")
CODES, WRAP_UPS = team_views("5001")[2], team_views("5001")[3]


def answered(who: Credential, view: View, sent: int, done: int, versions: tuple[int, int],
             status: int = 200, body: bytes = b"") -> Answered:  # fmt: skip
    kind = "sign-in" if view.is_user else "own-team"
    login = who.login_id.encode() if view.is_user else None
    return Answered(0, who, view, view.target, kind, sent, done, *versions, status,
                    digest(body), "", login)  # fmt: skip


def judged(reads: list[Answered], *, strict: bool = False) -> list[Verdict]:
    """Team 5001's codes were A, then B from version 1; the mover left 5001 at version 2
    (tick 50); the agent stays."""
    facts = Facts()
    for version, body in enumerate((b"A", b"B", b"B")):
        facts.keep_body(CODES, version, body)
        facts.keep_body(WRAP_UPS, version, b"W")
    facts.changes[MOVER] = [(2, 50)]
    facts.statuses.update({(MOVER, 0, CODES): 200, (MOVER, 1, CODES): 401})
    facts.statuses.update({(MOVER, 1, user_view("11003")): 200, (AGENT, 0, CODES): 200})
    return [v for _, v in Judge(facts, reads, [], strict).verdicts()]


def test_the_oracle_tells_current_lagging_stale_foreign_and_unknown_bodies_apart() -> None:
    assert judged([
        answered(AGENT, CODES, 10, 20, (0, 1), body=b"A"),  # sent before the write landed
        answered(AGENT, CODES, 30, 40, (1, 1), body=b"A"),  # sent after it
        answered(AGENT, CODES, 30, 40, (1, 1), body=b"W"),  # another resource's body
        answered(AGENT, CODES, 30, 40, (1, 1), body=b"?"),
        answered(MOVER, CODES, 60, 65, (2, 2), body=b"B"),  # moved: the proxy can't know yet
        answered(MOVER, CODES, 61, 64, (2, 2), status=401),
        answered(MOVER, user_view("11003"), 70, 75, (2, 2)),  # now it knows
        answered(MOVER, CODES, 80, 85, (2, 2), body=b"B"),
    ]) == [Verdict.OK, Verdict.STALE, Verdict.FOREIGN, Verdict.UNKNOWN, Verdict.LAG,
           Verdict.OK, Verdict.OK, Verdict.FOREIGN]  # fmt: skip


@pytest.mark.parametrize(("strict", "verdict"), [(False, Verdict.LAG), (True, Verdict.FOREIGN)])
def test_an_answer_from_before_a_move_landing_late_is_tolerated_unless_strict(
    strict: bool, verdict: Verdict
) -> None:
    reads = [
        answered(MOVER, CODES, 40, 90, (1, 2), body=b"B"),  # sent before the move, slow
        answered(MOVER, user_view("11003"), 70, 75, (2, 2)),  # the sign-in after the move
        answered(MOVER, CODES, 95, 99, (2, 2), body=b"B"),
    ]
    assert judged(reads, strict=strict) == [Verdict.OK, Verdict.OK, verdict]
