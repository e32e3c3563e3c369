"""The shift-start storm: N agent desktops sign in through webproxy at once and load their config.

Starts the Finesse simulator (T teams, enough agents) and `webproxy serve` as subprocesses,
then each desktop GETs its own User (which teaches the proxy its team) and the eight
resources a Finesse desktop loads, each with Cisco's `nocache=<ms>`. Prints latency,
throughput, and how often Finesse itself was asked: once per distinct cached URL is ideal.

`--replicas N` runs N `webproxy serve` processes on N ports (desktops spread round-robin
over them), `--workers N` forks N workers per replica; `--fleet` runs three Redis fleets in
turn (1 replica, 3 replicas, 1 replica of 2 workers), each on a fresh key prefix of one
redis-server, and prints one row each. Each desktop keeps one connection for its sign-in
and its reads, so they reach the replica, and the worker, that learned who it is.

    .venv/bin/python -m bench.login_storm [--desktops 2000] [--teams 20] [--store redis] [--json]
    .venv/bin/python -m bench.login_storm --store redis --replicas 3 [--workers 2]
    .venv/bin/python -m bench.login_storm --fleet
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import secrets
import statistics
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Final

import aiohttp

from bench.processes import (
    Processes,
    Proxy,
    RunStopped,
    StartFailed,
    run_limits,
    start_proxy,
    start_redis,
    start_simulator,
    work_directory,
)

PASSWORD: Final = "finesse"
API: Final = "/finesse/api"
GLOBAL_RESOURCES: Final = ("ChatConfig", "ECCVariableConfig", "MediaDomains")
TEAM_COLLECTIONS: Final = (
    "ReasonCodes?category=ALL",
    "WrapUpReasons",
    "PhoneBooks",
    "Workflows",
    "MediaPropertiesLayouts",
)
REQUEST_TIMEOUT: Final = aiohttp.ClientTimeout(total=30)
STARTUP_ALLOWANCE: Final = 90.0  # start, stats and stop, on top of --time-limit


@dataclass(frozen=True, slots=True)
class Fleet:
    """What serves the storm: `replicas` `webproxy serve` processes of `workers` each."""

    replicas: int
    workers: int

    @property
    def label(self) -> str:
        replicas = f"{self.replicas} replica{'s' if self.replicas > 1 else ''}"
        return replicas if self.workers == 1 else f"{replicas}, {self.workers} workers"


#: `--fleet`: the configurations run in turn, all on Redis.
FLEETS: Final = (Fleet(1, 1), Fleet(3, 1), Fleet(1, 2))


@dataclass(frozen=True, slots=True)
class Desktop:
    """One agent's desktop: who signs in, in which team, with which Basic credential."""

    login_id: str
    team_id: str

    @property
    def authorization(self) -> str:
        token = base64.b64encode(f"{self.login_id}:{PASSWORD}".encode()).decode()
        return f"Basic {token}"

    def cached_paths(self) -> list[str]:
        team = f"{API}/TeamResource/{self.team_id}"
        return [f"{API}/{name}" for name in GLOBAL_RESOURCES] + [
            f"{team}/{collection}" for collection in TEAM_COLLECTIONS
        ]


@dataclass(slots=True)
class Tally:
    """What the desktops saw: latencies (s) by kind, statuses, Cache-Status kinds."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {"sign_in": [], "cached": []})
    statuses: Counter[str] = field(default_factory=Counter)
    cache_status: Counter[str] = field(default_factory=Counter)


def make_desktops(count: int, teams: int) -> list[Desktop]:
    """Desktops spread round-robin over the teams, so every team storms at once."""
    return [
        Desktop(str(10000 + (k % teams) * 1000 + k // teams + 1), str(5000 + k % teams))
        for k in range(count)
    ]


def expected_urls(teams: int) -> list[str]:
    """The cached URLs as /sim/stats names them (`nocache` removed): 3 + 5 per team."""
    urls = [f"GET {API}/{name}" for name in GLOBAL_RESOURCES]
    for i in range(teams):
        urls += [f"GET {API}/TeamResource/{5000 + i}/{c}" for c in TEAM_COLLECTIONS]
    return urls


def with_nocache(path: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}nocache={int(time.time() * 1000)}"


def cache_kind(value: str | None) -> str:
    """A short name for a Cache-Status: hit, miss+stored, collapsed, uncacheable, ..."""
    if value is None:
        return "none"
    params = [part.strip() for part in value.split(";")[1:]]
    if "hit" in params:
        return "hit"
    for part in params:
        if part.startswith("detail="):
            return part.removeprefix("detail=").strip('"')
    forwarded = next((p.removeprefix("fwd=") for p in params if p.startswith("fwd=")), "other")
    return f"{forwarded}+stored" if "stored" in params else forwarded


async def timed_get(
    session: aiohttp.ClientSession, base: str, path: str, desktop: Desktop, kind: str, tally: Tally
) -> None:
    started = time.perf_counter()
    headers = {"Authorization": desktop.authorization, "Accept": "application/xml"}
    try:
        async with session.get(base + with_nocache(path), headers=headers) as response:
            await response.read()
            status = str(response.status)
            cache_status = response.headers.get("Cache-Status")
    except (aiohttp.ClientError, TimeoutError) as exc:
        status, cache_status = type(exc).__name__, None
    tally.latencies[kind].append(time.perf_counter() - started)
    tally.statuses[status] += 1
    if kind == "cached":
        tally.cache_status[cache_kind(cache_status)] += 1


class Lanes:
    """Keep-alive connections, one per desktop at a time: a desktop's sign-in and reads
    go over one connection, so they reach one replica and, with `--workers`, the one
    worker the kernel gave that connection: the process that learned who the caller is
    (each process learns identities from the User reads it serves). A freed lane is
    reused by the next desktop of the same replica, so the storm keeps about
    `concurrency` connections open, as one shared pool of that size would."""

    def __init__(self) -> None:
        self._free: dict[str, list[aiohttp.ClientSession]] = {}
        self._opened: list[aiohttp.ClientSession] = []

    @contextlib.asynccontextmanager
    async def take(self, base: str) -> AsyncIterator[aiohttp.ClientSession]:
        free = self._free.setdefault(base, [])
        session = free.pop() if free else self._open()
        try:
            yield session
        finally:
            free.append(session)

    def _open(self) -> aiohttp.ClientSession:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1), timeout=REQUEST_TIMEOUT
        )
        self._opened.append(session)
        return session

    async def close(self) -> None:
        for session in self._opened:
            await session.close()


async def desktop_starts(
    lanes: Lanes, base: str, desktop: Desktop, slots: asyncio.Semaphore, tally: Tally
) -> None:
    """Sign in (GET the caller's own User), then load the eight resources in turn."""
    async with slots, lanes.take(base) as session:
        await timed_get(session, base, f"{API}/User/{desktop.login_id}", desktop, "sign_in", tally)
        for path in desktop.cached_paths():
            await timed_get(session, base, path, desktop, "cached", tally)


async def storm(
    bases: Sequence[str],
    desktops: Sequence[Desktop],
    concurrency: int,
    time_limit: float,
    tally: Tally,
) -> tuple[float, bool]:
    """Run every desktop (at most `concurrency` at once), desktop k through `bases[k % n]`;
    wall seconds, and whether all ended."""
    slots = asyncio.Semaphore(concurrency)
    lanes = Lanes()
    started = time.perf_counter()
    try:
        async with asyncio.timeout(time_limit):
            async with asyncio.TaskGroup() as group:
                for k, desktop in enumerate(desktops):
                    base = bases[k % len(bases)]
                    group.create_task(desktop_starts(lanes, base, desktop, slots, tally))
    except TimeoutError:
        return time.perf_counter() - started, False
    finally:
        await lanes.close()
    return time.perf_counter() - started, True


async def read_json(url: str, method: str = "GET") -> dict[str, object]:
    async with (
        aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as session,
        session.request(method, url) as response,
    ):
        response.raise_for_status()
        if response.status == 204:
            return {}
        body: dict[str, object] = await response.json()
        return body


def percentiles(seconds: Sequence[float]) -> dict[str, float | None]:
    """p50, p90, p99 in milliseconds (None without data)."""
    if not seconds:
        return {"p50": None, "p90": None, "p99": None}
    cuts = statistics.quantiles(seconds, n=100, method="inclusive") if len(seconds) > 1 else []
    pick = {q: (cuts[q - 1] if cuts else seconds[0]) for q in (50, 90, 99)}
    return {f"p{q}": round(v * 1000, 2) for q, v in pick.items()}


@dataclass(frozen=True, slots=True)
class Upstream:
    """Finesse's side, from /sim/stats: what reached it during the storm."""

    total: int
    user_gets: int
    cached_urls: int  # distinct cached URLs the desktops asked for: 3 + 5 per team
    cached_gets: int  # GETs of those that reached Finesse (ideal: one per URL)
    fetched_once: int
    max_per_url: int
    min_per_url: int
    not_once: dict[str, int]


@dataclass(frozen=True, slots=True)
class StormReport:
    """Every printed figure; `--json` prints it as one object."""

    desktops: int
    teams: int
    concurrency: int
    store: str
    replicas: int
    workers: int  # per replica
    sim_latency_ms: float
    finished: bool
    requests: int
    requests_planned: int
    errors: dict[str, int]  # by status code, or by exception name
    wall_s: float
    requests_per_s: float
    latency_ms: dict[str, dict[str, float | None]]  # all, sign_in, cached -> p50, p90, p99
    cache_status: dict[str, int]  # cached reads by Cache-Status: hit, stored, collapsed, ...
    upstream: Upstream
    proxy_cache: dict[str, object]  # hits, misses, hit_ratio: GET /admin/cache, all replicas
    unbound_reads: int  # cached reads whose replica did not know the caller (`unauthorized`)


def upstream_figures(stats: dict[str, object], teams: int) -> Upstream:
    urls = stats.get("urls")
    counts = {str(k): int(v) for k, v in urls.items()} if isinstance(urls, dict) else {}
    per_url = {url: counts.get(url, 0) for url in expected_urls(teams)}
    total = stats.get("total")
    return Upstream(
        total=total if isinstance(total, int) else -1,
        user_gets=sum(n for url, n in counts.items() if url.startswith(f"GET {API}/User/")),
        cached_urls=len(per_url),
        cached_gets=sum(per_url.values()),
        fetched_once=sum(1 for n in per_url.values() if n == 1),
        max_per_url=max(per_url.values(), default=0),
        min_per_url=min(per_url.values(), default=0),
        not_once={url: n for url, n in per_url.items() if n != 1},
    )


async def proxy_cache(proxies: Sequence[Proxy]) -> dict[str, object]:
    """Hits, misses and hit ratio over every replica's GET /admin/cache (one replica's
    figures cover its workers)."""
    hits = misses = 0
    for proxy in proxies:
        cache = await read_json(f"{proxy.admin_url}/admin/cache")
        hits += int(str(cache.get("hits") or 0))
        misses += int(str(cache.get("misses") or 0))
    if len(proxies) == 1:
        return {k: cache.get(k) for k in ("hits", "misses", "hit_ratio")}
    ratio = round(hits / (hits + misses), 4) if hits + misses else None
    return {"hits": hits, "misses": misses, "hit_ratio": ratio}


async def measure(
    args: argparse.Namespace, proxies: Sequence[Proxy], sim_url: str, fleet: Fleet, store: str
) -> StormReport:
    desktops = make_desktops(args.desktops, args.teams)
    await read_json(f"{sim_url}/sim/stats", "DELETE")
    tally = Tally()
    bases = [proxy.url for proxy in proxies]
    wall, finished = await storm(bases, desktops, args.concurrency, args.time_limit, tally)
    requests = sum(tally.statuses.values())
    return StormReport(
        desktops=args.desktops,
        teams=args.teams,
        concurrency=args.concurrency,
        store=store,
        replicas=fleet.replicas,
        workers=fleet.workers,
        sim_latency_ms=args.sim_latency_ms,
        finished=finished,
        requests=requests,
        requests_planned=args.desktops * (1 + len(GLOBAL_RESOURCES) + len(TEAM_COLLECTIONS)),
        errors={status: n for status, n in sorted(tally.statuses.items()) if status != "200"},
        wall_s=round(wall, 3),
        requests_per_s=round(requests / wall, 1),
        latency_ms={
            "all": percentiles(tally.latencies["sign_in"] + tally.latencies["cached"]),
            "sign_in": percentiles(tally.latencies["sign_in"]),
            "cached": percentiles(tally.latencies["cached"]),
        },
        cache_status=dict(tally.cache_status),
        upstream=upstream_figures(await read_json(f"{sim_url}/sim/stats"), args.teams),
        proxy_cache=await proxy_cache(proxies),
        unbound_reads=tally.cache_status.get("unauthorized", 0),
    )


def print_table(r: StormReport) -> None:
    up, pc = r.upstream, r.proxy_cache
    fleet = Fleet(r.replicas, r.workers)
    served = "" if fleet == Fleet(1, 1) else f", {fleet.label}"
    print(
        f"login storm: {r.desktops} desktops, {r.teams} teams, concurrency {r.concurrency}, "
        f"{r.store} store{served}, simulator latency {r.sim_latency_ms:g} ms"
    )
    done = "all finished" if r.finished else "TIME LIMIT REACHED: partial figures"
    print(f"  requests          {r.requests} of {r.requests_planned} ({done})")
    print(f"  errors by status  {r.errors or 'none'}")
    print(f"  wall time         {r.wall_s} s")
    print(f"  requests/s        {r.requests_per_s}")
    for kind, p in r.latency_ms.items():
        print(f"  latency {kind:<9} p50 {p['p50']} ms, p90 {p['p90']} ms, p99 {p['p99']} ms")
    print(f"  Cache-Status      {r.cache_status} (cached reads)")
    print(
        f"  upstream          {up.total} requests: {up.user_gets} User GETs, "
        f"{up.cached_gets} GETs of the {up.cached_urls} cached URLs (3 + 5 x {r.teams} teams)"
    )
    shown = ", ".join(
        f"{url.removeprefix('GET ')}: {n}" for url, n in list(up.not_once.items())[:4]
    )
    more = f" and {len(up.not_once) - 4} more" if len(up.not_once) > 4 else ""
    not_once = f"; not once: {shown}{more}" if up.not_once else ""
    print(
        f"  per cached URL    {up.fetched_once} of {up.cached_urls} fetched exactly once, "
        f"max {up.max_per_url}{not_once}"
    )
    print(
        f"  proxy cache       hits {pc['hits']}, misses {pc['misses']}, "
        f"hit ratio {pc['hit_ratio']} (GET /admin/cache)"
    )


def print_fleet(reports: Sequence[StormReport]) -> None:
    """`--fleet`: one row per configuration."""
    r = reports[0]
    print(
        f"login storm fleet: {r.desktops} desktops, {r.teams} teams, concurrency "
        f"{r.concurrency}, redis store (one redis-server, a fresh key prefix per row), "
        f"simulator latency {r.sim_latency_ms:g} ms"
    )
    print(
        "  fleet                  req/s  cached p50  cached p99  sign-in p99"
        "  fetches/URL max  min  not 1  unbound  errors"
    )
    for r in reports:
        up, cached, sign_in = r.upstream, r.latency_ms["cached"], r.latency_ms["sign_in"]
        errors = sum(r.errors.values()) + (0 if r.finished else r.requests_planned - r.requests)
        print(
            f"  {Fleet(r.replicas, r.workers).label:<20} {r.requests_per_s:>8} "
            f"{cached['p50']!s:>11} {cached['p99']!s:>11} {sign_in['p99']!s:>12} "
            f"{up.max_per_url:>16} {up.min_per_url:>4} {len(up.not_once):>6} "
            f"{r.unbound_reads:>8} {errors:>7}"
        )
    for r in reports:
        if r.upstream.not_once:
            shown = ", ".join(
                f"{u.removeprefix('GET ')}: {n}" for u, n in r.upstream.not_once.items()
            )
            print(f"  not once ({Fleet(r.replicas, r.workers).label}): {shown}")


def start_fleet(
    procs: Processes, sim: str, redis_url: str | None, fleet: Fleet, prefix: str
) -> list[Proxy]:
    """The replicas, on one Redis key prefix; several share a `cache.fleet_key`, so a
    credential refused through one is forgotten by all. Logs: `webproxy-<prefix>[-n].log`."""
    env = {"WEBPROXY_STORE_KEY_PREFIX": prefix}
    if fleet.replicas > 1:
        env["WEBPROXY_CACHE_FLEET_KEY"] = secrets.token_hex(16)
    return [
        start_proxy(
            procs,
            sim,
            redis_url=redis_url,
            env=env,
            workers=fleet.workers,
            name=f"webproxy-{prefix}" + (f"-{n}" if fleet.replicas > 1 else ""),
        )
        for n in range(fleet.replicas)
    ]


def start_simulation(args: argparse.Namespace, procs: Processes) -> str:
    agents = math.ceil(args.desktops / args.teams)
    data = procs.workdir / "simdata.json"
    data.write_text(json.dumps({"generate": {"teams": args.teams, "agentsPerTeam": agents}}))
    return start_simulator(procs, latency_ms=args.sim_latency_ms, data=data)


def run(args: argparse.Namespace) -> StormReport:
    with work_directory(args.workdir, "bench-storm-") as tmp, Processes(tmp) as procs:
        sim = start_simulation(args, procs)
        redis_url = start_redis(procs) if args.store == "redis" else None
        fleet = Fleet(args.replicas, args.workers)
        proxies = start_fleet(procs, sim, redis_url, fleet, prefix="webproxy")
        return asyncio.run(measure(args, proxies, sim, fleet, args.store))


def run_fleets(args: argparse.Namespace) -> list[StormReport]:
    """Each of FLEETS in turn on one simulator and one redis-server, a fresh key prefix
    each; a configuration's proxies are stopped before the next starts."""
    reports = []
    with work_directory(args.workdir, "bench-storm-") as tmp, Processes(tmp) as procs:
        sim = start_simulation(args, procs)
        redis_url = start_redis(procs)
        for n, fleet in enumerate(FLEETS):
            proxies = start_fleet(procs, sim, redis_url, fleet, prefix=f"storm{n}")
            reports.append(asyncio.run(measure(args, proxies, sim, fleet, "redis")))
            for proxy in proxies:
                procs.stop_pid(proxy.pid)
    return reports


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.login_storm", description=__doc__.split("\n")[0])
    parser.add_argument("--desktops", type=int, default=2000, help="agent desktops (2000)")
    parser.add_argument("--teams", type=int, default=20, help="teams they belong to (20)")
    parser.add_argument("--concurrency", type=int, default=200, help="desktops at once (200)")
    parser.add_argument("--store", choices=("memory", "redis"), default="memory")
    parser.add_argument("--replicas", type=int, default=1, help="webproxy processes (1)")
    parser.add_argument("--workers", type=int, default=1, help="workers per replica (1)")
    parser.add_argument(
        "--fleet", action="store_true", help="1 replica, 3 replicas, 1 of 2 workers, on Redis"
    )
    parser.add_argument("--sim-latency-ms", type=float, default=20.0, help="Finesse latency (20)")
    parser.add_argument("--time-limit", type=float, default=60.0, help="storm seconds cap (60)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--workdir", help="keep data and process logs here (default: a temp dir)")
    args = parser.parse_args(argv)
    if not 1 <= args.teams or not 1 <= args.desktops <= 999 * args.teams:
        parser.error("need teams >= 1 and 1 <= desktops <= 999 x teams")
    if args.concurrency < 1 or args.time_limit <= 0 or args.sim_latency_ms < 0:
        parser.error("need concurrency >= 1, time-limit > 0, sim-latency-ms >= 0")
    if args.replicas < 1 or args.workers < 1:
        parser.error("need replicas >= 1 and workers >= 1")
    if args.fleet and (args.replicas, args.workers, args.store) != (1, 1, "memory"):
        parser.error("--fleet runs its own configurations: no --replicas, --workers or --store")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    runs = len(FLEETS) if args.fleet else 1
    try:
        with run_limits(runs * (args.time_limit + STARTUP_ALLOWANCE)):
            reports = run_fleets(args) if args.fleet else [run(args)]
    except StartFailed as exc:
        print(f"login_storm: {exc}", file=sys.stderr)
        return 1
    except aiohttp.ClientError as exc:
        print(f"login_storm: cannot read the figures: {exc!r}", file=sys.stderr)
        return 1
    except (RunStopped, KeyboardInterrupt) as exc:
        print(f"login_storm: {str(exc) or 'interrupted'}; processes stopped", file=sys.stderr)
        return 130
    if args.json:
        shown = [asdict(r) for r in reports]
        print(json.dumps(shown if args.fleet else shown[0], indent=2))
    elif args.fleet:
        print_fleet(reports)
    else:
        print_table(reports[0])
    return 0 if all(r.finished for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
