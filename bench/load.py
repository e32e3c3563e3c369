"""hit_path's load generator: `wrk` with a Lua script, else a multi-connection aiohttp client.

Either way it runs as its own process (pinned to a CPU if asked), sends GETs to one URL
with fixed request headers over a fixed number of keep-alive connections for a fixed
time, and reports a `LoadResult`. The fallback client is this module's `main`:

    python -m bench.load URL --headers '{"Authorization": "Basic ..."}' --connections 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

import aiohttp

from bench.processes import PIN_SCRIPT, ROOT, child_environment

MARK: Final = "BENCH-LOAD "
WRK_SCRIPT: Final = """\
wrk.method = "GET"
%(headers)s
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%(mark)s{"tool": "wrk", "requests": %%d, "seconds": %%.6f, "not_2xx_3xx": %%d, '
    .. '"socket_errors": %%d, "p50_ms": %%.3f, "p99_ms": %%.3f}\\n',
    summary.requests, summary.duration / 1e6, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""
CLIENT_TIMEOUT: Final = 5.0
SLACK: Final = 30.0  # seconds past --duration before a stuck generator is killed


class LoadFailed(RuntimeError):
    """The generator overran its time or reported no result."""


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one load run completed: `not_2xx_3xx` counts responses with status >= 400 (wrk)
    or other than 200 (aiohttp client)."""

    tool: str
    requests: int
    seconds: float
    not_2xx_3xx: int
    socket_errors: int
    p50_ms: float
    p99_ms: float


def pick_tool(wanted: str) -> str:
    """`wrk` if asked or (for `auto`) on PATH, else `aiohttp`."""
    if wanted == "auto":
        return "wrk" if shutil.which("wrk") else "aiohttp"
    return wanted


def wrk_script(headers: Mapping[str, str]) -> str:
    """The Lua script: these request headers, and a `done` hook printing a LoadResult."""
    lines = [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    return WRK_SCRIPT % {"headers": "\n".join(lines), "mark": MARK}


def run_load(
    tool: str,
    url: str,
    headers: Mapping[str, str],
    *,
    connections: int,
    duration: float,
    cpu: int | None,
    workdir: Path,
) -> LoadResult:
    """GET `url` with `headers` for `duration` seconds; blocks until the generator exits."""
    if tool == "wrk":
        script = workdir / "load.lua"
        script.write_text(wrk_script(headers))
        command = ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "-s", str(script), url]
    else:
        command = [sys.executable, "-m", "bench.load", url, "--headers", json.dumps(headers)]
        command += ["--connections", str(connections), "--duration", str(duration)]
    if cpu is not None:
        command = [sys.executable, "-c", PIN_SCRIPT, str(cpu), *command]
    try:
        done = subprocess.run(
            command,
            cwd=ROOT,
            env=child_environment(),
            capture_output=True,
            text=True,
            timeout=duration + SLACK,  # run() kills the generator when this expires
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise LoadFailed(f"{tool} still running {duration + SLACK:g} s after it started") from exc
    for line in done.stdout.splitlines():
        if line.startswith(MARK):
            return LoadResult(**json.loads(line.removeprefix(MARK)))
    raise LoadFailed(f"{tool} reported nothing (exit {done.returncode}): {done.stderr[-2000:]}")


async def hammer(
    url: str, headers: Mapping[str, str], connections: int, duration: float
) -> LoadResult:
    """The fallback generator: `connections` workers, each GET after GET until time is up."""
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        end = started + duration

        async def worker() -> None:
            while (now := time.perf_counter()) < end:
                try:
                    async with session.get(url, headers=headers) as response:
                        await response.read()
                        statuses[str(response.status)] += 1
                except (aiohttp.ClientError, TimeoutError) as exc:
                    statuses[type(exc).__name__] += 1
                latencies.append(time.perf_counter() - now)

        async with asyncio.TaskGroup() as group:
            for _ in range(connections):
                group.create_task(worker())
        seconds = time.perf_counter() - started
    latencies.sort()
    socket_errors = sum(n for status, n in statuses.items() if not status.isdigit())
    return LoadResult(
        tool="aiohttp",
        requests=sum(statuses.values()) - socket_errors,
        seconds=seconds,
        not_2xx_3xx=sum(
            n for status, n in statuses.items() if status.isdigit() and status != "200"
        ),
        socket_errors=socket_errors,
        p50_ms=latencies[len(latencies) // 2] * 1000 if latencies else 0.0,
        p99_ms=latencies[len(latencies) * 99 // 100] * 1000 if latencies else 0.0,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.load", description=__doc__.split("\n")[0])
    parser.add_argument("url")
    parser.add_argument("--headers", default="{}", help="request headers, a JSON object")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args(argv)
    headers = {str(k): str(v) for k, v in json.loads(args.headers).items()}
    result = asyncio.run(hammer(args.url, headers, args.connections, args.duration))
    print(MARK + json.dumps(asdict(result)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
