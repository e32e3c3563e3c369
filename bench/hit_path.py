"""The cache-hit path against a bare aiohttp server, in requests per server CPU-second.

The standard: "The cache-hit path is measured against a bare aiohttp server that returns
the same bytes from memory, in the same run, as requests per server CPU-second; aim for at
least 0.8x of it with the in-process store." Starts the simulator and one `webproxy serve`
per store of `--stores` (memory; redis; redis with the local tier, on one redis-server),
signs agent 10001 in and warms his team's ReasonCodes through each, then starts
`bench.bare_server` with the memory proxy's hit answer (same body, same headers). Each
server is pinned to one CPU and loaded by the same generator (wrk, else an aiohttp client)
pinned to another, for a fixed time; its CPU time comes from /proc/<pid>/stat.

    .venv/bin/python -m bench.hit_path [--duration 10] [--connections 50] [--stores ...] [--json]
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

from bench.load import LoadFailed, LoadResult, pick_tool, run_load
from bench.processes import (
    Processes,
    Proxy,
    RunStopped,
    StartFailed,
    cpu_seconds,
    run_limits,
    start_proxy,
    start_redis,
    start_simulator,
    two_cpus,
    work_directory,
)

AGENT: Final = "10001"
TEAM: Final = "5000"
#: Every request to either server sends exactly these (Accept is part of the cache key).
HEADERS: Final = {
    "Authorization": "Basic " + base64.b64encode(f"{AGENT}:finesse".encode()).decode(),
    "Accept": "application/xml",
}
PATH: Final = f"/finesse/api/TeamResource/{TEAM}/ReasonCodes"
QUERY: Final = "?category=ALL"
HOP_BY_HOP: Final = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})
BARE_READY: Final = re.compile(r"bare server on (http://\S+)")
#: The run must stay all hits however long it lasts: entries and the sign-in outlive it.
LONG_LIVED: Final = {
    "WEBPROXY_CACHE_TTL_TEAMRESOURCE": "86400",
    "WEBPROXY_CACHE_IDENTITY_TTL": "86400",
}
AIM: Final = 0.8


@dataclass(frozen=True, slots=True)
class StoreSetup:
    """One proxy of the run: its row's name and the store settings it gets."""

    name: str
    redis: bool
    env: Mapping[str, str]


#: The rows `--stores` chooses from; "webproxy" (memory) is the one the standard is about.
STORES: Final = {
    "memory": StoreSetup("webproxy", False, {}),
    "redis": StoreSetup("redis", True, {}),
    "redis+local": StoreSetup(
        "redis+local",
        True,
        {"WEBPROXY_STORE_LOCAL_MAX_BYTES": "16777216", "WEBPROXY_STORE_LOCAL_TTL": "1.0"},
    ),
}


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP answer as urllib read it."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def end_to_end(self) -> dict[str, str]:
        return {k: v for k, v in self.headers if k.lower() not in HOP_BY_HOP}


def http_get(url: str, headers: Mapping[str, str] | None = None) -> Answer:
    """One GET; any status is an Answer (urllib's HTTPError included)."""
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Answer(response.status, tuple(response.headers.items()), response.read())
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, tuple(exc.headers.items()), exc.read())


def http_json(url: str) -> dict[str, object]:
    answer = http_get(url)
    body: dict[str, object] = json.loads(answer.body)
    return body


def counter(data: Mapping[str, object], key: str) -> int:
    value = data.get(key)
    return value if isinstance(value, int) else 0


def is_hit(answer: Answer) -> bool:
    return answer.status == 200 and (answer.header("Cache-Status") or "").startswith(
        "webproxy; hit"
    )


def warm(proxy: Proxy) -> Answer:
    """Sign the agent in, fetch his team's ReasonCodes (stored), and return the hit after."""
    signed = http_get(f"{proxy.url}/finesse/api/User/{AGENT}", HEADERS)
    if signed.status != 200:
        raise StartFailed(f"sign-in of {AGENT} through the proxy answered {signed.status}")
    http_get(proxy.url + PATH + QUERY, HEADERS)
    hit = http_get(proxy.url + PATH + QUERY, HEADERS)
    if not is_hit(hit):
        raise StartFailed(f"no cache hit after warming: {hit.status} {hit.header('Cache-Status')}")
    return hit


def cache_statuses(url: str, count: int) -> list[str]:
    return [str(http_get(url, HEADERS).header("Cache-Status")) for _ in range(count)]


@dataclass(frozen=True, slots=True)
class Setup:
    """How this run loads: the generator, the CPUs (None: not pinned), the work directory."""

    tool: str
    server_cpu: int | None
    load_cpu: int | None
    workdir: Path


@dataclass(frozen=True, slots=True)
class ServerRun:
    """One load window on one server: what completed and the server's CPU time meanwhile."""

    server: str
    requests: int
    seconds: float
    requests_per_s: float
    cpu_s: float
    requests_per_cpu_s: float
    not_2xx_3xx: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    redis_cpu_s: float | None  # redis-server's CPU time in the window, for a Redis store


def load_server(
    name: str,
    url: str,
    pid: int,
    args: argparse.Namespace,
    setup: Setup,
    redis_pid: int | None = None,
) -> ServerRun:
    redis_before = cpu_seconds(redis_pid) if redis_pid is not None else 0.0
    before = cpu_seconds(pid)
    result: LoadResult = run_load(
        setup.tool,
        url + PATH + QUERY,
        HEADERS,
        connections=args.connections,
        duration=args.duration,
        cpu=setup.load_cpu,
        workdir=setup.workdir,
    )
    cpu = cpu_seconds(pid) - before
    redis_cpu = cpu_seconds(redis_pid) - redis_before if redis_pid is not None else None
    return ServerRun(
        server=name,
        requests=result.requests,
        seconds=round(result.seconds, 3),
        requests_per_s=round(result.requests / result.seconds, 1),
        cpu_s=round(cpu, 2),
        requests_per_cpu_s=round(result.requests / cpu, 1) if cpu > 0 else 0.0,
        not_2xx_3xx=result.not_2xx_3xx,
        socket_errors=result.socket_errors,
        p50_ms=round(result.p50_ms, 2),
        p99_ms=round(result.p99_ms, 2),
        redis_cpu_s=round(redis_cpu, 2) if redis_cpu is not None else None,
    )


@dataclass(frozen=True, slots=True)
class HitCheck:
    """Evidence that every proxy answer in its load windows was a cache hit."""

    before: list[str]  # Cache-Status of a few requests before the first window
    after: list[str]  # ... and after the last
    hits: int  # /admin/cache hits counted during the windows
    other_lookups: int  # /admin/cache misses (every non-hit result) during the windows
    upstream_requests: int  # requests Finesse (the simulator) saw during the windows
    bad_responses: int  # non-2xx/3xx answers and socket errors the generator saw
    all_hits: bool


@dataclass(frozen=True, slots=True)
class ProxyFigures:
    """One proxy's totals over the rounds, against the bare server."""

    server: str  # "webproxy" (memory store), "redis", "redis+local"
    requests_per_cpu_s: float
    ratio: float  # this proxy / bare, requests per server CPU-second
    with_redis_per_cpu_s: float | None  # requests per CPU-second of proxy + redis-server
    check: HitCheck


@dataclass(frozen=True, slots=True)
class HitReport:
    """Every printed figure; `--json` prints it as one object."""

    url: str
    body_bytes: int
    tool: str
    connections: int
    duration_s: float
    rounds: int
    pinned: str
    bare_same_answer: bool  # same body bytes and the same end-to-end header names
    headers: list[str]
    runs: list[ServerRun]
    bare_requests_per_cpu_s: float
    proxies: list[ProxyFigures]
    aim: float

    @property
    def all_hits(self) -> bool:
        return all(p.check.all_hits for p in self.proxies)


def per_cpu_second(runs: Sequence[ServerRun], server: str, *, with_redis: bool = False) -> float:
    mine = [r for r in runs if r.server == server]
    cpu = sum(r.cpu_s + ((r.redis_cpu_s or 0.0) if with_redis else 0.0) for r in mine)
    return round(sum(r.requests for r in mine) / cpu, 1) if cpu > 0 else 0.0


def start_bare(procs: Processes, setup: Setup, hit: Answer) -> tuple[int, str, bool]:
    """The bare server, answering the proxy's hit; its pid, URL, and whether it answers alike."""
    response = setup.workdir / "response.json"
    body = base64.b64encode(hit.body).decode()
    headers = list(hit.end_to_end().items())
    response.write_text(json.dumps({"status": hit.status, "headers": headers, "body_b64": body}))
    command = [sys.executable, "-m", "bench.bare_server", "--path", PATH]
    command += ["--response", str(response), "--listen", "127.0.0.1:0"]
    bare, found = procs.start("bare", command, BARE_READY, cpu=setup.server_cpu)
    baseline = http_get(found.group(1) + PATH + QUERY, HEADERS)
    same = baseline.body == hit.body and set(baseline.end_to_end()) == set(hit.end_to_end())
    return bare.pid, found.group(1), same


def hit_check(
    samples: tuple[list[str], list[str]],
    admin: tuple[Mapping[str, object], Mapping[str, object]],
    sim: tuple[Mapping[str, object], Mapping[str, object]],
    proxy_runs: Sequence[ServerRun],
) -> HitCheck:
    """Compare the proxy's and the simulator's counters from before and after the windows."""
    before, after = samples
    hits = counter(admin[1], "hits") - counter(admin[0], "hits")
    other = counter(admin[1], "misses") - counter(admin[0], "misses")
    upstream = counter(sim[1], "total") - counter(sim[0], "total")
    bad = sum(r.not_2xx_3xx + r.socket_errors for r in proxy_runs)
    sampled_hits = all(s.startswith("webproxy; hit") for s in before + after)
    completed = sum(r.requests for r in proxy_runs)
    return HitCheck(
        before=before,
        after=after,
        hits=hits,
        other_lookups=other,
        upstream_requests=upstream,
        bad_responses=bad,
        all_hits=sampled_hits and other == 0 and upstream == 0 and bad == 0 and hits >= completed,
    )


def start_proxies(
    args: argparse.Namespace, procs: Processes, setup: Setup, sim: str
) -> tuple[dict[str, Proxy], int | None]:
    """One proxy per `--stores` entry (Redis ones on one redis-server, pinned with the
    servers, a key prefix each); the proxies by row name, and redis-server's pid."""
    redis_url = redis_pid = None
    if any(STORES[name].redis for name in args.stores):
        redis_url = start_redis(procs, cpu=setup.server_cpu)
        redis_pid = next(p.pid for name, p in procs.children if name == "redis")
    proxies = {}
    for name in args.stores:
        store = STORES[name]
        env = {**LONG_LIVED, **store.env}
        if store.redis:
            env["WEBPROXY_STORE_KEY_PREFIX"] = f"hitpath-{name.replace('+', '-')}"
        proxies[store.name] = start_proxy(
            procs,
            sim,
            redis_url=redis_url if store.redis else None,
            env=env,
            cpu=setup.server_cpu,
            name="webproxy" if name == "memory" else f"webproxy-{name}",
        )
    return proxies, redis_pid


def measure(args: argparse.Namespace, procs: Processes, setup: Setup) -> HitReport:
    sim = start_simulator(procs, latency_ms=0, cpu=setup.load_cpu)
    proxies, redis_pid = start_proxies(args, procs, setup, sim)
    hits = {name: warm(proxy) for name, proxy in proxies.items()}
    hit = next(iter(hits.values()))  # the memory proxy's, unless --stores leaves it out
    bare_pid, bare_url, same = start_bare(procs, setup, hit)
    samples0 = {n: cache_statuses(p.url + PATH + QUERY, args.samples) for n, p in proxies.items()}
    admin0 = {n: http_json(f"{p.admin_url}/admin/cache") for n, p in proxies.items()}
    sim0 = http_json(f"{sim}/sim/stats")
    runs: list[ServerRun] = []
    for _ in range(args.rounds):
        runs.append(load_server("bare", bare_url, bare_pid, args, setup))
        for name, proxy in proxies.items():
            redis = redis_pid if name != "webproxy" else None
            runs.append(load_server(name, proxy.url, proxy.pid, args, setup, redis))
    admin1 = {n: http_json(f"{p.admin_url}/admin/cache") for n, p in proxies.items()}
    sim1 = http_json(f"{sim}/sim/stats")
    samples1 = {n: cache_statuses(p.url + PATH + QUERY, args.samples) for n, p in proxies.items()}
    bare_rate = per_cpu_second(runs, "bare")
    figures = []
    for name in proxies:
        mine = [r for r in runs if r.server == name]
        rate = per_cpu_second(runs, name)
        check = hit_check(
            (samples0[name], samples1[name]), (admin0[name], admin1[name]), (sim0, sim1), mine
        )
        figures.append(
            ProxyFigures(
                server=name,
                requests_per_cpu_s=rate,
                ratio=round(rate / bare_rate, 3) if bare_rate else 0.0,
                with_redis_per_cpu_s=(
                    per_cpu_second(runs, name, with_redis=True) if name != "webproxy" else None
                ),
                check=check,
            )
        )
    return HitReport(
        url=PATH + QUERY,
        body_bytes=len(hit.body),
        tool=setup.tool,
        connections=args.connections,
        duration_s=args.duration,
        rounds=args.rounds,
        pinned=pinning(setup),
        bare_same_answer=same,
        headers=list(hit.end_to_end()),
        runs=runs,
        bare_requests_per_cpu_s=bare_rate,
        proxies=figures,
        aim=AIM,
    )


def pinning(setup: Setup) -> str:
    if setup.server_cpu is None:
        return "not pinned"
    return f"servers on CPU {setup.server_cpu}, load generator on CPU {setup.load_cpu}"


def print_table(r: HitReport) -> None:
    rounds = f"{r.rounds} round{'s' if r.rounds > 1 else ''}"
    print(
        f"hit path: GET {r.url} ({r.body_bytes}-byte body), {r.tool}, {r.connections} "
        f"connections, {r.duration_s:g} s per window, {rounds} "
        f"(bare, then {', '.join(p.server for p in r.proxies)})"
    )
    print(f"  pinning       {r.pinned}")
    same = "yes" if r.bare_same_answer else "NO"
    print(
        f"  bare server   same body and headers as the proxy's hit: {same} ({', '.join(r.headers)})"
    )
    redis = any(run.redis_cpu_s is not None for run in r.runs)
    print(
        "  server      requests    req/s   CPU s  req/CPU-s  p50 ms  p99 ms  bad"
        + ("  redis CPU s" if redis else "")
    )
    for run in r.runs:
        redis_cpu = f"{run.redis_cpu_s:>13}" if run.redis_cpu_s is not None else ""
        print(
            f"  {run.server:<11} {run.requests:>8} {run.requests_per_s:>8} {run.cpu_s:>7} "
            f"{run.requests_per_cpu_s:>10} {run.p50_ms:>7} {run.p99_ms:>7} "
            f"{run.not_2xx_3xx + run.socket_errors:>4}{redis_cpu}"
        )
    rates = ", ".join(f"{p.server} {p.requests_per_cpu_s}" for p in r.proxies)
    print(f"  per CPU-s     bare {r.bare_requests_per_cpu_s}, {rates}")
    for p in r.proxies:
        aim = f" (aim: >= {r.aim})" if p.server == "webproxy" else ""
        with_redis = (
            f"; {p.with_redis_per_cpu_s} per CPU-s of proxy + redis-server"
            if p.with_redis_per_cpu_s is not None
            else ""
        )
        print(f"  ratio         {p.server} / bare = {p.ratio}{aim}{with_redis}")
    for p in r.proxies:
        c = p.check
        hits_before = sum(s.startswith("webproxy; hit") for s in c.before)
        hits_after = sum(s.startswith("webproxy; hit") for s in c.after)
        label, width = ("all hits", 13) if len(r.proxies) == 1 else (f"all hits {p.server}:", 21)
        print(
            f"  {label:<{width}} {'yes' if c.all_hits else 'NO'}: Cache-Status hit {hits_before}/"
            f"{len(c.before)} before, {hits_after}/{len(c.after)} after (e.g. {c.after[:1]}); "
            f"/admin/cache +{c.hits} hits, +{c.other_lookups} other lookups; "
            f"Finesse saw {c.upstream_requests} requests; {c.bad_responses} bad responses"
        )


def run(args: argparse.Namespace) -> HitReport:
    cpus = None if args.no_pin else two_cpus()
    with work_directory(args.workdir, "bench-hit-") as tmp, Processes(tmp) as procs:
        setup = Setup(
            tool=pick_tool(args.loader),
            server_cpu=cpus[0] if cpus else None,
            load_cpu=cpus[1] if cpus else None,
            workdir=tmp,
        )
        return measure(args, procs, setup)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.hit_path", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per window (10)")
    parser.add_argument("--connections", type=int, default=50, help="keep-alive connections (50)")
    parser.add_argument("--rounds", type=int, default=1, help="bare+webproxy windows (1)")
    parser.add_argument("--loader", choices=("auto", "wrk", "aiohttp"), default="auto")
    parser.add_argument(
        "--stores",
        type=lambda text: text.split(","),
        default=list(STORES),
        help=f"proxies to load, comma-separated, of {','.join(STORES)} (all)",
    )
    parser.add_argument("--samples", type=int, default=5, help="Cache-Status samples (5)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    parser.add_argument("--time-limit", type=float, default=180.0, help="hard cap, s (180)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--workdir", help="keep process logs here (default: a temp dir)")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.connections < 1 or args.rounds < 1 or args.samples < 1:
        parser.error("need duration > 0, connections >= 1, rounds >= 1, samples >= 1")
    unknown = [name for name in args.stores if name not in STORES]
    if unknown or not args.stores or len(set(args.stores)) < len(args.stores):
        parser.error(f"--stores: each of {', '.join(STORES)} at most once, got {unknown}")
    windows = 1 + len(args.stores)
    if args.time_limit < windows * args.rounds * args.duration + 30:
        parser.error(
            f"--time-limit must leave 30 s beyond the {windows} x rounds x duration of load"
        )
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with run_limits(args.time_limit):
            report = run(args)
    except (StartFailed, LoadFailed) as exc:
        print(f"hit_path: {exc}", file=sys.stderr)
        return 1
    except (RunStopped, KeyboardInterrupt) as exc:
        print(f"hit_path: {str(exc) or 'interrupted'}; processes stopped", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(asdict(report), indent=2))
    else:
        print_table(report)
    return 0 if report.all_hits and report.bare_same_answer else 1


if __name__ == "__main__":
    sys.exit(main())
