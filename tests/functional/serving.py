"""`webproxy serve` as a real child process, for life-cycle and logging tests."""

from __future__ import annotations

import asyncio
import os
import re
import resource
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field

READY = re.compile(rb"webproxy: proxy on (\S+), admin on (\S+),")


@dataclass
class Served:
    """A running `webproxy serve`: its addresses, and everything it wrote to stderr."""

    process: asyncio.subprocess.Process
    proxy: str
    admin: str
    stderr: list[str] = field(default_factory=list)

    def signal(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)

    async def exit_code(self, within: float = 15.0) -> int:
        async with asyncio.timeout(within):
            return await self.process.wait()


@asynccontextmanager
async def serving(
    args: Sequence[str], env: dict[str, str] | None = None, *, descriptors: int | None = None
) -> AsyncIterator[Served]:
    """Start `python -m webproxy serve ARGS` on free ports; kill it if the test fails.

    `descriptors`: the process's soft and hard RLIMIT_NOFILE, set before it starts.
    """
    environ = {k: v for k, v in os.environ.items() if not k.startswith("WEBPROXY_")}
    environ.update(env or {})

    def limit_descriptors() -> None:
        if descriptors is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (descriptors, descriptors))

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "webproxy", "serve",
        "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=environ,
        preexec_fn=limit_descriptors,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    try:
        async with asyncio.timeout(20):
            line = await process.stdout.readline()
        ready = READY.search(line)
        assert ready, f"no ready line: {line!r}"
        served = Served(process, f"http://{ready[1].decode()}", f"http://{ready[2].decode()}")
        reader = asyncio.create_task(_collect(process.stderr, served.stderr))
        yield served
        with suppress(TimeoutError):
            async with asyncio.timeout(5):
                await reader
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _collect(stream: asyncio.StreamReader, into: list[str]) -> None:
    async for line in stream:
        into.append(line.decode(errors="replace"))
