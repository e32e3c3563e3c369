"""A real redis-server for tests: the session-scoped `redis_server` fixture and its helpers."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Final

import pytest

from tests.redisrelay import StallRelay

START_TIMEOUT: Final = 10.0
PORT_ATTEMPTS: Final = 5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pings(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server process on 127.0.0.1; `stop` and `start` it for outage tests."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self._binary = binary
        self._workdir = workdir
        self._process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def launch(self) -> None:
        """Start on a free port, trying another if the chosen one was taken meanwhile."""
        for _ in range(PORT_ATTEMPTS):
            self.port = free_port()
            if self._try_start():
                return
        raise RuntimeError(f"redis-server did not start; see {self._workdir / 'redis.log'}")

    def start(self) -> None:
        """Start again on the same port and wait until it answers PING."""
        if not self._try_start():
            raise RuntimeError(f"redis-server did not restart on port {self.port}")

    def _try_start(self) -> bool:
        command = [self._binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self._workdir)]
        command += ["--logfile", str(self._workdir / "redis.log")]
        self._process = process = subprocess.Popen(command)
        deadline = time.monotonic() + START_TIMEOUT
        while process.poll() is None and time.monotonic() < deadline:
            if pings(self.port) and process.poll() is None:  # ours answered, not a squatter
                return True
            time.sleep(0.01)  # poll interval, bounded by the deadline
        self.stop()
        return False

    def stop(self) -> None:
        """Terminate the process and wait for it to exit."""
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=START_TIMEOUT)
            self._process = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server not found on PATH; install it: apt-get install redis-server")
    server = RedisServer(binary, tmp_path_factory.mktemp("redis"))
    server.launch()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The running server's URL (restarted first if an earlier test stopped it)."""
    if not redis_server.running:
        redis_server.start()
    return redis_server.url


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix no other test uses."""
    return f"wptest:{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def relay(redis_server: RedisServer, redis_url: str) -> AsyncIterator[StallRelay]:
    """A relay in front of the test's redis-server that the test can stall or cut."""
    started = StallRelay(redis_server.port)
    await started.start()
    yield started
    await started.stop()
