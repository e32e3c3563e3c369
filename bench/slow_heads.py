"""What unfinished request heads cost `webproxy serve`: RSS with N of them open.

    .venv/bin/python -m bench.slow_heads [--connections 300] [--head-bytes 2000000]

Starts the simulator and `webproxy serve` (memory store, default limits but a 5 s
`server.client_header_timeout`), then opens `--connections` connections that each send
a request head of many header lines, each under `server.max_header_bytes`, up to
`--head-bytes` (or until the proxy closes it), and never finish it. Prints the proxy's RSS
before, while they are open, and after the proxy has closed them all, what the
connections were answered, and whether a sign-in was served meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import time
import urllib.request
from collections import Counter
from pathlib import Path

from bench.processes import Processes, run_limits, start_proxy, start_simulator, work_directory

LINE = b"X-Pad: " + b"p" * 8000 + b"\r\n"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def unfinished_head(host: str, port: int, head_bytes: int) -> str:
    """Send a head that never ends; what the proxy did about it."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(b"GET /finesse/api/SystemInfo HTTP/1.1\r\nHost: finesse\r\n")
        sent = 0
        while sent < head_bytes:
            writer.write(LINE)
            await writer.drain()
            sent += len(LINE)
        answer = await asyncio.wait_for(reader.read(64), timeout=30)
        return answer.split(b"\r\n", 1)[0].decode(errors="replace") or "closed"
    except (ConnectionError, TimeoutError) as exc:
        return type(exc).__name__
    finally:
        writer.close()


def signs_in(url: str) -> int:
    token = base64.b64encode(b"10001:finesse").decode()
    request = urllib.request.Request(
        f"{url}/finesse/api/User/10001", headers={"Authorization": f"Basic {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


async def measure(url: str, pid: int, connections: int, head_bytes: int) -> None:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    before = rss_mib(pid)
    heads = [
        asyncio.create_task(unfinished_head(host, int(port), head_bytes))
        for _ in range(connections)
    ]
    await asyncio.sleep(1.0)  # the heads are on their way: sample while they are open
    during = rss_mib(pid)
    status = await asyncio.to_thread(signs_in, url)
    outcomes = Counter(await asyncio.gather(*heads))
    after = rss_mib(pid)
    print(f"{connections} unfinished heads of up to {head_bytes:,} bytes each")
    print(f"  RSS before {before:.0f} MiB, while open {during:.0f} MiB, after {after:.0f} MiB")
    print(f"  answered: {dict(outcomes)}")
    print(f"  a sign-in meanwhile: {status}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=300)
    parser.add_argument("--head-bytes", type=int, default=2_000_000)
    args = parser.parse_args()
    with run_limits(300), work_directory(None, "webproxy-heads-") as work:
        with Processes(work) as processes:
            sim = start_simulator(processes, latency_ms=0)
            proxy = start_proxy(processes, sim, env={"WEBPROXY_SERVER_CLIENT_HEADER_TIMEOUT": "5"})
            started = time.monotonic()
            asyncio.run(measure(proxy.url, proxy.pid, args.connections, args.head_bytes))
            print(f"  took {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
