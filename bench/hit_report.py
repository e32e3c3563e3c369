"""bench.hit_path's records and how they are printed: one load window per server, the
ratios between them, the hit checks, the run's report, its table, the summary of `--repeat`
runs and `--json`. The measuring (processes, load windows, CPU time) is in `bench.hit_path`.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace


@dataclass(frozen=True, slots=True)
class ServerRun:
    """One load window on one server: what completed and the server's CPU time meanwhile."""

    server: str
    round: int
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
    ratio_to_bare: float = 0.0  # req/CPU-s against the bare server's window of this round
    ratio_to_nginx: float | None = None  # ... and against nginx's, if it ran


def ratio(mine: float, theirs: float) -> float:
    return round(mine / theirs, 3) if theirs else 0.0


def with_ratios(round_runs: Sequence[ServerRun]) -> list[ServerRun]:
    """One round's windows, each with its ratios to that round's bare and nginx windows."""
    rates = {r.server: r.requests_per_cpu_s for r in round_runs}
    nginx = rates.get("nginx")
    return [
        replace(
            r,
            ratio_to_bare=ratio(r.requests_per_cpu_s, rates["bare"]),
            ratio_to_nginx=ratio(r.requests_per_cpu_s, nginx) if nginx is not None else None,
        )
        for r in round_runs
    ]


def per_cpu_second(runs: Sequence[ServerRun], server: str, *, with_redis: bool = False) -> float:
    mine = [r for r in runs if r.server == server]
    cpu = sum(r.cpu_s + ((r.redis_cpu_s or 0.0) if with_redis else 0.0) for r in mine)
    return round(sum(r.requests for r in mine) / cpu, 1) if cpu > 0 else 0.0


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
    ratio_to_nginx: float | None  # this proxy / nginx, if nginx ran
    with_redis_per_cpu_s: float | None  # requests per CPU-second of proxy + redis-server
    check: HitCheck


@dataclass(frozen=True, slots=True)
class NginxCheck:
    """Evidence that nginx answered the same body, from its cache, in every window."""

    warm_up: list[str]  # X-Cache-Status of the storing fetch and the one after (a HIT)
    before: list[str]  # X-Cache-Status of a few requests before the first window
    after: list[str]  # ... and after the last
    same_body: bool  # the same body bytes as the memory proxy's hit (and the bare server's)
    headers: list[str]  # its end-to-end header names
    upstream_requests: int  # requests the simulator saw during the windows (all servers')
    bad_responses: int
    all_hits: bool


@dataclass(frozen=True, slots=True)
class NginxFigures:
    """nginx's totals over the rounds, against the bare server."""

    version: str
    requests_per_cpu_s: float
    ratio: float  # nginx / bare
    bare_to_nginx: float  # bare / nginx
    check: NginxCheck


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
    machine: str
    nginx: NginxFigures | None
    nginx_note: str | None  # why there is no nginx row (absent, --no-nginx, failed to start)
    nginx_failed: bool  # installed but it did not start or did not cache: a failed check

    @property
    def all_hits(self) -> bool:
        nginx = self.nginx is None or self.nginx.check.all_hits
        return all(p.check.all_hits for p in self.proxies) and nginx and not self.nginx_failed


def print_table(r: HitReport) -> None:
    rounds = f"{r.rounds} round{'s' if r.rounds > 1 else ''}"
    servers = [p.server for p in r.proxies] + (["nginx"] if r.nginx else [])
    print(
        f"hit path: GET {r.url} ({r.body_bytes}-byte body), {r.tool}, {r.connections} "
        f"connections, {r.duration_s:g} s per window, {rounds} "
        f"(bare, then {', '.join(servers)})"
    )
    nginx = f"; {r.nginx.version} (one process, proxy_cache)" if r.nginx else ""
    print(f"  machine       {r.machine}{nginx}")
    print(f"  pinning       {r.pinned}")
    same = "yes" if r.bare_same_answer else "NO"
    print(
        f"  bare server   same body and headers as the proxy's hit: {same} ({', '.join(r.headers)})"
    )
    if r.nginx_note:
        print(f"  nginx         {r.nginx_note}")
    print_windows(r)
    print_totals(r)
    print_checks(r)


def print_windows(r: HitReport) -> None:
    redis = any(run.redis_cpu_s is not None for run in r.runs)
    print(
        "  server      requests    req/s   CPU s  req/CPU-s  x bare"
        + ("  x nginx" if r.nginx else "")
        + "  p50 ms  p99 ms  bad"
        + ("  redis CPU s" if redis else "")
    )
    for run in r.runs:
        to_nginx = f" {run.ratio_to_nginx:>8}" if run.ratio_to_nginx is not None else ""
        redis_cpu = f"{run.redis_cpu_s:>13}" if run.redis_cpu_s is not None else ""
        print(
            f"  {run.server:<11} {run.requests:>8} {run.requests_per_s:>8} {run.cpu_s:>7} "
            f"{run.requests_per_cpu_s:>10} {run.ratio_to_bare:>7}{to_nginx} {run.p50_ms:>7} "
            f"{run.p99_ms:>7} {run.not_2xx_3xx + run.socket_errors:>4}{redis_cpu}"
        )


def print_totals(r: HitReport) -> None:
    rates = ", ".join(f"{p.server} {p.requests_per_cpu_s}" for p in r.proxies)
    nginx = f", nginx {r.nginx.requests_per_cpu_s}" if r.nginx else ""
    print(f"  per CPU-s     bare {r.bare_requests_per_cpu_s}, {rates}{nginx}")
    for p in r.proxies:
        aim = f" (aim: >= {r.aim})" if p.server == "webproxy" else ""
        to_nginx = f"; / nginx = {p.ratio_to_nginx}" if p.ratio_to_nginx is not None else ""
        with_redis = (
            f"; {p.with_redis_per_cpu_s} per CPU-s of proxy + redis-server"
            if p.with_redis_per_cpu_s is not None
            else ""
        )
        print(f"  ratio         {p.server} / bare = {p.ratio}{aim}{to_nginx}{with_redis}")
    if r.nginx:
        print(
            f"  ratio         nginx / bare = {r.nginx.ratio}; "
            f"bare / nginx = {r.nginx.bare_to_nginx}"
        )


def print_checks(r: HitReport) -> None:
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
    if r.nginx:
        n = r.nginx.check
        label, width = ("all hits nginx:", 21) if len(r.proxies) > 1 else ("all hits nginx", 13)
        print(
            f"  {label:<{width}} {'yes' if n.all_hits else 'NO'}: X-Cache-Status "
            f"{' then '.join(n.warm_up)} warming, HIT {n.before.count('HIT')}/{len(n.before)} "
            f"before, {n.after.count('HIT')}/{len(n.after)} after; body as the proxy's hit: "
            f"{'yes' if n.same_body else 'NO'} ({', '.join(n.headers)}); "
            f"Finesse saw {n.upstream_requests} requests; {n.bad_responses} bad responses"
        )


def server_totals(r: HitReport) -> dict[str, tuple[float, float, float | None]]:
    """Per server over one run's rounds: req/CPU-s, x bare, x nginx (None without nginx)."""
    nginx = r.nginx.requests_per_cpu_s if r.nginx else None
    bare = r.bare_requests_per_cpu_s
    rates = {"bare": bare, **{p.server: p.requests_per_cpu_s for p in r.proxies}}
    rates |= {"nginx": nginx} if nginx is not None else {}
    return {
        name: (rate, ratio(rate, bare), ratio(rate, nginx) if nginx is not None else None)
        for name, rate in rates.items()
    }


def spread(values: Sequence[float]) -> str:
    return f"{round(statistics.median(values), 3)} ({min(values)}-{max(values)})"


def print_summary(reports: Sequence[HitReport]) -> None:
    """Median (min-max) over the runs of each server's req/CPU-s and ratios."""
    totals = [server_totals(r) for r in reports]
    print(f"summary of {len(reports)} runs: median (min-max) per server")
    print(f"  {'server':<11} {'req/CPU-s':>27} {'x bare':>22} {'x nginx':>22}")
    for name in totals[0]:
        mine = [t[name] for t in totals if name in t]
        to_nginx = [n for _, _, n in mine if n is not None]
        print(
            f"  {name:<11} {spread([m[0] for m in mine]):>27} {spread([m[1] for m in mine]):>22}"
            f" {spread(to_nginx) if to_nginx else '-':>22}"
        )


def print_json(reports: Sequence[HitReport]) -> None:
    """`--json`: the report as one object, or a list of them for more than one run."""
    shown = [asdict(report) for report in reports]
    print(json.dumps(shown if len(reports) > 1 else shown[0], indent=2))
