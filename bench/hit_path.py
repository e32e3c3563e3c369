"""The cache-hit path against bare aiohttp and nginx, in requests per server CPU-second.

The standard: "The cache-hit path is measured against a bare aiohttp server that returns
the same bytes from memory, in the same run, as requests per server CPU-second; aim for at
least 0.8x of it with the in-process store." Starts the simulator and one `webproxy serve`
per store of `--stores` (memory; redis; redis with the local tier, on one redis-server),
signs agent 10001 in and warms his team's ReasonCodes through each, then starts
`bench.bare_server` with the memory proxy's hit answer (same body, same headers) and, where
nginx is installed, nginx with `proxy_cache` in front of the same simulator (one process,
warmed once; `bench.processes.NGINX_CONFIG`). Each server is pinned to one CPU and loaded
in turn by the same generator (wrk, else an aiohttp client) pinned to another, for a fixed
time; its CPU time comes from /proc/<pid>/stat. `--repeat N` runs it all N times. The
records of a run and the printed table, summary and JSON are in `bench.hit_report`.

    .venv/bin/python -m bench.hit_path [--duration 10] [--repeat 1] [--stores ...] [--json]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bench.hit_probes import (
    HEADERS,
    NGINX_STATUS,
    PATH,
    QUERY,
    Answer,
    cache_statuses,
    counter,
    http_get,
    http_json,
    warm,
    warm_nginx,
)
from bench.hit_report import (
    HitCheck,
    HitReport,
    NginxCheck,
    NginxFigures,
    ProxyFigures,
    ServerRun,
    per_cpu_second,
    print_json,
    print_summary,
    print_table,
    ratio,
    with_ratios,
)
from bench.load import LoadFailed, LoadResult, pick_tool, run_load
from bench.processes import (
    Nginx,
    Processes,
    Proxy,
    RunStopped,
    StartFailed,
    cpu_seconds,
    nginx_binary,
    run_limits,
    start_nginx,
    start_proxy,
    start_redis,
    start_simulator,
    two_cpus,
    work_directory,
)

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
class Setup:
    """How this run loads: the generator, the CPUs (None: not pinned), the work directory."""

    tool: str
    server_cpu: int | None
    load_cpu: int | None
    workdir: Path


def load_server(
    name: str,
    url: str,
    pid: int,
    args: argparse.Namespace,
    setup: Setup,
    *,
    round_: int,
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
        round=round_,
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


@dataclass(frozen=True, slots=True)
class NginxRow:
    """nginx as started and warmed for a run, or why it is not there."""

    nginx: Nginx | None
    warm_up: list[str]
    hit: Answer | None
    note: str | None
    failed: bool


def start_nginx_row(args: argparse.Namespace, procs: Processes, setup: Setup, sim: str) -> NginxRow:
    """nginx in front of the simulator, pinned with the servers and warmed; absent or
    `--no-nginx` is a note, a start or warm-up that fails is a note and a failed check."""
    if args.no_nginx:
        return NginxRow(None, [], None, "no nginx row: --no-nginx", failed=False)
    if nginx_binary() is None:
        note = "no nginx row: nginx is not installed (apt-get install nginx)"
        return NginxRow(None, [], None, note, failed=False)
    try:
        nginx = start_nginx(procs, sim, cpu=setup.server_cpu)
        warm_up, hit = warm_nginx(nginx)
    except StartFailed as exc:
        return NginxRow(None, [], None, f"no nginx row, a FAILURE: {exc}", failed=True)
    return NginxRow(nginx, warm_up, hit, None, failed=False)


def load_round(
    round_: int,
    servers: Sequence[tuple[str, str, int, int | None]],
    args: argparse.Namespace,
    setup: Setup,
) -> list[ServerRun]:
    """One window per server (name, URL, pid, redis-server's pid), in turn, with ratios."""
    return with_ratios(
        [
            load_server(name, url, pid, args, setup, round_=round_, redis_pid=redis)
            for name, url, pid, redis in servers
        ]
    )


def nginx_figures(
    row: NginxRow,
    samples: tuple[list[str], list[str]],
    sim: tuple[Mapping[str, object], Mapping[str, object]],
    runs: Sequence[ServerRun],
    hit: Answer,
) -> NginxFigures | None:
    if row.nginx is None or row.hit is None:
        return None
    mine = [r for r in runs if r.server == "nginx"]
    rate, bare = per_cpu_second(runs, "nginx"), per_cpu_second(runs, "bare")
    upstream = counter(sim[1], "total") - counter(sim[0], "total")
    bad = sum(r.not_2xx_3xx + r.socket_errors for r in mine)
    same_body = row.hit.body == hit.body
    sampled = all(s == "HIT" for s in [*row.warm_up[-1:], *samples[0], *samples[1]])
    check = NginxCheck(
        warm_up=row.warm_up,
        before=samples[0],
        after=samples[1],
        same_body=same_body,
        headers=list(row.hit.end_to_end()),
        upstream_requests=upstream,
        bad_responses=bad,
        all_hits=sampled and same_body and upstream == 0 and bad == 0,
    )
    return NginxFigures(row.nginx.version, rate, ratio(rate, bare), ratio(bare, rate), check)


def proxy_figures(
    name: str,
    runs: Sequence[ServerRun],
    check: HitCheck,
    nginx_rate: float | None,
) -> ProxyFigures:
    rate = per_cpu_second(runs, name)
    return ProxyFigures(
        server=name,
        requests_per_cpu_s=rate,
        ratio=ratio(rate, per_cpu_second(runs, "bare")),
        ratio_to_nginx=ratio(rate, nginx_rate) if nginx_rate is not None else None,
        with_redis_per_cpu_s=(
            per_cpu_second(runs, name, with_redis=True) if name != "webproxy" else None
        ),
        check=check,
    )


def measure(args: argparse.Namespace, procs: Processes, setup: Setup) -> HitReport:
    sim = start_simulator(procs, latency_ms=0, cpu=setup.load_cpu)
    proxies, redis_pid = start_proxies(args, procs, setup, sim)
    hits = {name: warm(proxy) for name, proxy in proxies.items()}
    hit = next(iter(hits.values()))  # the memory proxy's, unless --stores leaves it out
    bare_pid, bare_url, same = start_bare(procs, setup, hit)
    row = start_nginx_row(args, procs, setup, sim)
    servers: list[tuple[str, str, int, int | None]] = [("bare", bare_url, bare_pid, None)]
    servers += [
        (n, p.url, p.pid, redis_pid if n != "webproxy" else None) for n, p in proxies.items()
    ]
    servers += [("nginx", row.nginx.url, row.nginx.pid, None)] if row.nginx else []
    nginx_url = row.nginx.url + PATH + QUERY if row.nginx else None
    samples0 = {n: cache_statuses(p.url + PATH + QUERY, args.samples) for n, p in proxies.items()}
    nginx0 = cache_statuses(nginx_url, args.samples, NGINX_STATUS) if nginx_url else []
    admin0 = {n: http_json(f"{p.admin_url}/admin/cache") for n, p in proxies.items()}
    sim0 = http_json(f"{sim}/sim/stats")
    runs = [run for r in range(1, args.rounds + 1) for run in load_round(r, servers, args, setup)]
    admin1 = {n: http_json(f"{p.admin_url}/admin/cache") for n, p in proxies.items()}
    sim1 = http_json(f"{sim}/sim/stats")
    samples1 = {n: cache_statuses(p.url + PATH + QUERY, args.samples) for n, p in proxies.items()}
    nginx1 = cache_statuses(nginx_url, args.samples, NGINX_STATUS) if nginx_url else []
    nginx = nginx_figures(row, (nginx0, nginx1), (sim0, sim1), runs, hit)
    figures = [
        proxy_figures(
            name,
            runs,
            hit_check(
                (samples0[name], samples1[name]),
                (admin0[name], admin1[name]),
                (sim0, sim1),
                [r for r in runs if r.server == name],
            ),
            nginx.requests_per_cpu_s if nginx else None,
        )
        for name in proxies
    ]
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
        bare_requests_per_cpu_s=per_cpu_second(runs, "bare"),
        proxies=figures,
        aim=AIM,
        machine=machine(),
        nginx=nginx,
        nginx_note=row.note,
        nginx_failed=row.failed,
    )


def machine() -> str:
    """What `nproc` counts and the CPU model /proc/cpuinfo names, e.g. "2 CPUs, AMD EPYC"."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    models = [line.partition(":")[2].strip() for line in lines if line.startswith("model name")]
    return f"{cpus} CPUs, {models[0] if models else 'CPU model unknown'}"


def pinning(setup: Setup) -> str:
    if setup.server_cpu is None:
        return "not pinned"
    return f"servers on CPU {setup.server_cpu}, load generator on CPU {setup.load_cpu}"


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
    parser.add_argument("--rounds", type=int, default=1, help="windows per server per run (1)")
    parser.add_argument("--repeat", type=int, default=1, help="whole runs, a table each (1)")
    parser.add_argument("--loader", choices=("auto", "wrk", "aiohttp"), default="auto")
    parser.add_argument(
        "--stores",
        type=lambda text: text.split(","),
        default=list(STORES),
        help=f"proxies to load, comma-separated, of {','.join(STORES)} (all)",
    )
    parser.add_argument("--no-nginx", action="store_true", help="leave out the nginx row")
    parser.add_argument("--samples", type=int, default=5, help="Cache-Status samples (5)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    parser.add_argument("--time-limit", type=float, default=180.0, help="hard cap a run, s (180)")
    parser.add_argument("--json", action="store_true", help="print JSON (a list with --repeat)")
    parser.add_argument("--workdir", help="keep process logs here (default: a temp dir)")
    args = parser.parse_args(argv)
    if min(args.connections, args.rounds, args.repeat, args.samples) < 1 or args.duration <= 0:
        parser.error("need duration > 0, connections, rounds, repeat and samples >= 1")
    unknown = [name for name in args.stores if name not in STORES]
    if unknown or not args.stores or len(set(args.stores)) < len(args.stores):
        parser.error(f"--stores: each of {', '.join(STORES)} at most once, got {unknown}")
    windows = 1 + len(args.stores) + (0 if args.no_nginx else 1)
    if args.time_limit < windows * args.rounds * args.duration + 30:
        parser.error(
            f"--time-limit must leave 30 s beyond the {windows} x rounds x duration of load"
        )
    if args.workdir is not None and args.repeat > 1:
        parser.error("--workdir keeps one run's logs: not with --repeat")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    reports: list[HitReport] = []
    try:
        for index in range(args.repeat):
            with run_limits(args.time_limit):
                reports.append(run(args))
            if args.repeat > 1 and not args.json:
                print(f"run {index + 1} of {args.repeat}")
            if not args.json:
                print_table(reports[-1])
    except (StartFailed, LoadFailed) as exc:
        print(f"hit_path: {exc}", file=sys.stderr)
        return 1
    except (RunStopped, KeyboardInterrupt) as exc:
        print(f"hit_path: {str(exc) or 'interrupted'}; processes stopped", file=sys.stderr)
        return 130
    if args.json:
        print_json(reports)
    elif args.repeat > 1:
        print_summary(reports)
    return 0 if all(r.all_hits and r.bare_same_answer for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
