"""The processes a benchmark runs (simulator, webproxy, redis-server, ...), always stopped.

Every child runs in its own session, logs to a file in the run's work directory (so a full
pipe can never stall it) and is found ready by a line it prints, within a deadline.
`Processes` stops them all, newest first, however the run ends: normally, on an error, on
Ctrl-C, or on SIGTERM and the hard time limit, which `run_limits` turns into `RunStopped`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Final

LOCALHOST: Final = "127.0.0.1"
ROOT: Final = Path(__file__).resolve().parent.parent  # `-m bench.*` resolves from here
READY_TIMEOUT: Final = 20.0
STOP_TIMEOUT: Final = 10.0
POLL_INTERVAL: Final = 0.02
REDIS_PORT_ATTEMPTS: Final = 5
#: Run argv[2:] pinned to the CPU in argv[1]; exec keeps the pid, every thread inherits it.
PIN_SCRIPT: Final = (
    "import os, sys; os.sched_setaffinity(0, {int(sys.argv[1])}); "
    "os.execvp(sys.argv[2], sys.argv[2:])"
)
SIM_READY: Final = re.compile(r"Finesse simulator on http://(\S+)")
PROXY_READY: Final = re.compile(r"webproxy: proxy on (\S+), admin on (\S+),")


class StartFailed(RuntimeError):
    """A process exited or stayed silent before printing its ready line."""


class RunStopped(BaseException):
    """SIGTERM or the hard time limit: unwind (as Ctrl-C does) so every process is stopped."""


@dataclass(frozen=True, slots=True)
class Proxy:
    """A running `webproxy serve`: its base URLs and its pid (its supervisor's, with workers)."""

    url: str
    admin_url: str
    pid: int


class Processes:
    """Children started for one run; leaving the `with` block stops them, newest first."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def __enter__(self) -> Processes:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop_all()

    def spawn(
        self,
        name: str,
        command: Sequence[str],
        *,
        cpu: int | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start `command` (pinned to `cpu` if given), its output going to `<name>.log`."""
        argv = [*command]
        if cpu is not None:
            argv = [sys.executable, "-c", PIN_SCRIPT, str(cpu), *argv]
        with (self.workdir / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_environment() | dict(env or {}),
                cwd=ROOT,
                start_new_session=True,  # Ctrl-C reaches us only; we stop them in order
            )
        self.children.append((name, process))
        return process

    def start(
        self,
        name: str,
        command: Sequence[str],
        ready: re.Pattern[str],
        *,
        cpu: int | None = None,
        env: Mapping[str, str] | None = None,
    ) -> tuple[subprocess.Popen[bytes], re.Match[str]]:
        """Spawn, then wait for a log line matching `ready`; StartFailed if none in time."""
        process = self.spawn(name, command, cpu=cpu, env=env)
        log = self.workdir / f"{name}.log"
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            found = ready.search(log.read_text(errors="replace"))
            if found is not None:
                return process, found
            if process.poll() is not None:
                break
            time.sleep(POLL_INTERVAL)  # polling a log file, bounded by the deadline
        raise StartFailed(f"{name} did not start; its log ends:\n{tail(log)}")

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        """SIGTERM, then SIGKILL if it has not exited within STOP_TIMEOUT."""
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.children = [(n, p) for n, p in self.children if p is not process]

    def stop_pid(self, pid: int) -> None:
        """Stop the child with this pid, if it is one of ours."""
        for _, process in list(self.children):
            if process.pid == pid:
                self.stop(process)

    def stop_all(self) -> None:
        for _, process in reversed(self.children):
            self.stop(process)


def child_environment() -> dict[str, str]:
    """Ours minus any WEBPROXY_* setting (runs must not depend on the shell), unbuffered."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBPROXY_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"


def start_simulator(
    processes: Processes, *, latency_ms: float, data: Path | None = None, cpu: int | None = None
) -> str:
    """`webproxy sim` on a free port; its base URL."""
    command = [sys.executable, "-m", "webproxy", "sim", "--listen", f"{LOCALHOST}:0"]
    command += ["--latency-ms", str(latency_ms)]
    if data is not None:
        command += ["--data", str(data)]
    _, found = processes.start("sim", command, SIM_READY, cpu=cpu)
    return f"http://{found.group(1)}"


def start_proxy(
    processes: Processes,
    upstream: str,
    *,
    redis_url: str | None = None,
    env: Mapping[str, str] | None = None,
    cpu: int | None = None,
    workers: int = 1,
    name: str = "webproxy",
) -> Proxy:
    """`webproxy serve` on free ports (memory store unless `redis_url`); `env` adds
    WEBPROXY_* settings, for example `{"WEBPROXY_CACHE_TTL_TEAMRESOURCE": "3600"}`.
    `workers` > 1 forks that many workers on the one port (`pid` is their supervisor's);
    `name` names its log file, `<name>.log`, and must differ between proxies of one run."""
    command = [sys.executable, "-m", "webproxy", "serve", "--upstream", upstream]
    command += ["--listen", f"{LOCALHOST}:0", "--admin-listen", f"{LOCALHOST}:0"]
    command += ["--store", "memory"] if redis_url is None else ["--store", "redis"]
    command += [] if redis_url is None else ["--redis-url", redis_url]
    command += [] if workers == 1 else ["--workers", str(workers)]
    process, found = processes.start(name, command, PROXY_READY, cpu=cpu, env=env)
    return Proxy(f"http://{found.group(1)}", f"http://{found.group(2)}", process.pid)


def start_redis(processes: Processes, *, cpu: int | None = None) -> str:
    """A throwaway redis-server (no persistence) on a free port (pinned to `cpu` if given);
    its URL. Its Popen is `processes.children`' entry named "redis"."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise StartFailed(
            "redis-server not found on PATH; install it: apt-get install redis-server"
        )
    for _ in range(REDIS_PORT_ATTEMPTS):
        port = free_port()
        command = [binary, "--port", str(port), "--bind", LOCALHOST, "--save", ""]
        command += ["--appendonly", "no", "--dir", str(processes.workdir)]
        process = processes.spawn("redis", command, cpu=cpu)
        deadline = time.monotonic() + READY_TIMEOUT
        while process.poll() is None and time.monotonic() < deadline:
            if pings(port) and process.poll() is None:  # ours answered, not a squatter
                return f"redis://{LOCALHOST}:{port}/0"
            time.sleep(POLL_INTERVAL)  # polling PING, bounded by the deadline
        processes.stop(process)
    raise StartFailed(f"redis-server did not start; see {processes.workdir / 'redis.log'}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOCALHOST, 0))
        port: int = sock.getsockname()[1]
        return port


def pings(port: int) -> bool:
    try:
        with socket.create_connection((LOCALHOST, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def work_directory(keep: str | None, prefix: str) -> Iterator[Path]:
    """`keep` (created, left in place with the logs) or a temporary directory."""
    if keep is not None:
        path = Path(keep)
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)


def two_cpus() -> tuple[int, int] | None:
    """Two CPUs this process may use (server, load generator), or None if it cannot pin."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[0], cpus[1]) if len(cpus) >= 2 else None


@contextlib.contextmanager
def run_limits(seconds: float) -> Iterator[None]:
    """Raise RunStopped on SIGTERM or once `seconds` have passed (the hard time limit)."""

    def stop(signum: int, frame: FrameType | None) -> None:
        reason = "time limit" if signum == signal.SIGALRM else signal.Signals(signum).name
        raise RunStopped(f"stopped: {reason}")

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGALRM)}
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
