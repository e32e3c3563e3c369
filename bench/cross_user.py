"""The cross-user differential, long: many callers through webproxy, every answer judged.

Starts the Finesse simulator and the proxy (its admin listener too) in this process, as
the tests do (`make_proxy_app`, `proxy_runner`, `Listeners`; with `--store redis`, a
throwaway redis-server), then runs `tests/functional/crossuser` for `--requests`
operations from `--seed`: sign-ins, cached reads under spellings Finesse reads alike,
other teams' reads, bypasses, admin writes, password changes, team moves, cache clears.
Prints what it did, how many reads were hits, and the verdicts; exits 1 if any answer was
a foreign or stale body, a wrong status or a body Finesse never had.

    .venv/bin/python -m bench.cross_user [--requests 100000] [--seed N] [--store memory|redis]
        [--concurrency 24] [--sim-latency-ms 0] [--strict] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import secrets
import sys
from collections.abc import Sequence
from typing import Final

import aiohttp
from prometheus_client import CollectorRegistry

from bench.processes import Processes, StartFailed, start_redis, work_directory
from tests.functional.crossuser import (
    CrossUserConfig,
    Endpoints,
    Population,
    Report,
    run_cross_user,
)
from webproxy.app import make_admin_app, make_proxy_app
from webproxy.config import Address, Secret, Settings
from webproxy.server import Listeners, proxy_runner
from webproxy.sim import FinesseSimulator

LOCALHOST: Final = "127.0.0.1"


def proxy_settings(upstream: str, redis_url: str | None) -> Settings:
    """Defaults, both listeners on free loopback ports, the upstream and the store."""
    base = Settings()
    store = base.store
    if redis_url is not None:
        store = dataclasses.replace(
            store, backend="redis", redis_url=Secret(redis_url), key_prefix="crossuser", timeout=2.0
        )
    return dataclasses.replace(
        base,
        server=dataclasses.replace(base.server, listen=Address(LOCALHOST, 0)),
        admin=dataclasses.replace(base.admin, listen=Address(LOCALHOST, 0)),
        upstream=dataclasses.replace(base.upstream, url=upstream),
        store=store,
    )


async def measure(config: CrossUserConfig, latency: float, redis_url: str | None) -> Report:
    listeners = Listeners()
    try:
        simulator = FinesseSimulator(Population.build().data, latency=latency)
        sim = await listeners.add("sim", simulator.app, Address(LOCALHOST, 0))
        upstream = f"http://{LOCALHOST}:{sim.port}"
        settings = proxy_settings(upstream, redis_url)
        app = make_proxy_app(settings, registry=CollectorRegistry())
        proxy = await listeners.add("proxy", proxy_runner(app, settings), settings.server.listen)
        admin = await listeners.add("admin", make_admin_app(app), settings.admin.listen)
        connector = aiohttp.TCPConnector(limit=2 * config.concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            endpoints = Endpoints(
                session,
                f"http://{LOCALHOST}:{proxy.port}",
                f"http://{LOCALHOST}:{admin.port}",
                upstream,
            )
            return await run_cross_user(config, endpoints)
    finally:
        await listeners.close()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.cross_user", description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=100_000, help="operations (100000)")
    parser.add_argument("--seed", type=int, default=None, help="random unless given")
    parser.add_argument("--store", choices=("memory", "redis"), default="memory")
    parser.add_argument("--concurrency", type=int, default=24, help="requests at once (24)")
    parser.add_argument("--sim-latency-ms", type=float, default=0.0, help="Finesse latency (0)")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="a sign-in or clear after a move ends the old team at once, even with answers "
        "from before the move still to land",
    )
    parser.add_argument("--workdir", help="keep redis-server's directory and log here")
    args = parser.parse_args(argv)
    if args.requests < 1 or not 1 <= args.concurrency <= 30 or args.sim_latency_ms < 0:
        parser.error("need requests >= 1, 1 <= concurrency <= 30, sim-latency-ms >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**32)
    config = CrossUserConfig(
        seed, args.requests, args.concurrency, store=args.store, strict=args.strict
    )
    print(f"cross-user: seed {seed}", flush=True)
    latency = args.sim_latency_ms / 1000
    try:
        with work_directory(args.workdir, "bench-cross-user-") as tmp, Processes(tmp) as procs:
            redis_url = start_redis(procs) if args.store == "redis" else None
            report = asyncio.run(measure(config, latency, redis_url))
    except StartFailed as exc:
        print(f"cross_user: {exc}", file=sys.stderr)
        return 1
    rerun = (
        f".venv/bin/python -m bench.cross_user --seed {seed} --requests {args.requests} "
        f"--store {args.store} --concurrency {args.concurrency}"
        + (f" --sim-latency-ms {args.sim_latency_ms:g}" if args.sim_latency_ms else "")
        + (" --strict" if args.strict else "")
    )
    print("\n".join(report.lines(rerun)))
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
