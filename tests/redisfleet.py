"""A real Redis Cluster and a real Sentinel set for tests: the session-scoped `redis_cluster`
and `redis_sentinels` fixtures, processes on free ports in a temporary directory.

`redis_cluster`: three masters (``--cluster-enabled yes``, no replicas) joined by
``redis-cli --cluster create``, ready once every node's CLUSTER INFO says cluster_state:ok.
`redis_sentinels`: a master, one replica (``--replicaof``) and three ``redis-sentinel``s
(quorum 2, a master is down after 1 s); `kill_master` and `wait_for_new_master` drive a
failover, and `healthy_sentinels` (function scope) restarts a killed node as a replica, so
every test starts with a master, a synced replica and three sentinels that see both.

Every wait polls against a deadline; a missing binary fails with an install hint.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

import pytest

from tests.redisfixture import free_port, pings
from webproxy.settings import Address

START_TIMEOUT: Final = 10.0
SETTLE_TIMEOUT: Final = 30.0
FAILOVER_TIMEOUT: Final = 15.0
PORT_ATTEMPTS: Final = 5
POLL: Final = 0.05  # poll interval inside a deadline loop
MASTER_NAME: Final = "mymaster"
DOWN_AFTER_MS: Final = 1000
FAILOVER_TIMEOUT_MS: Final = 2000
CREATE_OPTIONS: Final = ("--cluster-replicas", "0", "--cluster-yes")


def binary(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found on PATH; install it: apt-get install {package}")
    return found


def end(process: subprocess.Popen[bytes]) -> None:
    """Stop `process` (SIGTERM, then SIGKILL if it lingers) and reap it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=START_TIMEOUT)


def launch(
    command_for: Callable[[int], list[str]], what: str
) -> tuple[int, subprocess.Popen[bytes]]:
    """Start `command_for(port)` on a free port (another if that one was taken meanwhile)
    and wait until it answers PING."""
    for _ in range(PORT_ATTEMPTS):
        port = free_port()
        process = subprocess.Popen(command_for(port), stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while process.poll() is None and time.monotonic() < deadline:
            if pings(port) and process.poll() is None:  # ours answered, not a squatter
                return port, process
            time.sleep(POLL)
        end(process)
    raise RuntimeError(f"{what} did not start")


def wait_until(condition: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {within} s waiting for {what}")
        time.sleep(POLL)


class Cli:
    """`redis-cli` against one port; replies as text lines (raw mode: one value a line)."""

    def __init__(self, binary: str) -> None:
        self.binary = binary

    def ask(self, port: int, *command: str) -> list[str]:
        try:
            done = subprocess.run(
                [self.binary, "-h", "127.0.0.1", "-p", str(port), *command],
                capture_output=True,
                timeout=2.0,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return []
        return done.stdout.decode(errors="replace").splitlines() if done.returncode == 0 else []


def data_node(server: str, workdir: Path, port: int, *extra: str) -> list[str]:
    """The command line of a redis-server with nothing saved, logging to `workdir`."""
    command = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(workdir)]
    return [*command, "--logfile", str(workdir / f"redis-{port}.log"), *extra]


def keys_on(cli: Cli, port: int, pattern: str) -> list[str]:
    """The keys matching `pattern` on the server at `port` (SCAN, through redis-cli)."""
    return cli.ask(port, "--scan", "--pattern", pattern)


class ClusterFleet:
    """Three cluster masters; `url` names one of them, as `store.redis_url` would."""

    def __init__(self, workdir: Path) -> None:
        self._server = binary("redis-server", "redis-server")
        self._cli = Cli(binary("redis-cli", "redis-tools"))
        self._workdir = workdir
        self.ports: list[int] = []
        self._processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def launch(self) -> None:
        for _ in range(3):
            port, process = launch(self._node, "a cluster node")
            self.ports.append(port)
            self._processes.append(process)
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        created = subprocess.run(
            [self._cli.binary, "--cluster", "create", *nodes, *CREATE_OPTIONS],
            capture_output=True,
            timeout=SETTLE_TIMEOUT,
            check=False,
        )
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout!r}")
        wait_until(self._ok, SETTLE_TIMEOUT, "cluster_state:ok on every node")

    def _node(self, port: int) -> list[str]:
        bus = free_port()  # a clash makes the start fail, and `launch` tries other ports
        config = self._workdir / f"nodes-{port}.conf"
        return data_node(
            self._server,
            self._workdir,
            port,
            *("--cluster-enabled", "yes", "--cluster-config-file", str(config)),
            *("--cluster-port", str(bus), "--cluster-node-timeout", "2000"),
        )

    def _ok(self) -> bool:
        return all(
            "cluster_state:ok" in self._cli.ask(port, "CLUSTER", "INFO") for port in self.ports
        )

    def masters_holding(self, pattern: str) -> set[int]:
        """The ports of the masters holding a key matching `pattern`."""
        return {port for port in self.ports if keys_on(self._cli, port, pattern)}

    def stop(self) -> None:
        for process in self._processes:
            end(process)
        self._processes.clear()


class SentinelFleet:
    """Two data nodes (one master, one replica) watched by three sentinels."""

    def __init__(self, workdir: Path) -> None:
        self._server = binary("redis-server", "redis-server")
        self._sentinel = binary("redis-sentinel", "redis-sentinel")
        self._cli = Cli(binary("redis-cli", "redis-tools"))
        self._workdir = workdir
        self._data: dict[int, subprocess.Popen[bytes] | None] = {}
        self._sentinels: list[subprocess.Popen[bytes]] = []
        self.sentinel_ports: list[int] = []
        self._first_master = 0

    @property
    def sentinels(self) -> tuple[Address, ...]:
        """As `store.sentinels` lists them."""
        return tuple(Address("127.0.0.1", port) for port in self.sentinel_ports)

    def launch(self) -> None:
        master, process = launch(
            lambda port: data_node(self._server, self._workdir, port), "master"
        )
        self._data[master] = process
        self._first_master = master
        self._start_replica_of(master)
        for _ in range(3):
            port, sentinel = launch(self._sentinel_command, "redis-sentinel")
            self.sentinel_ports.append(port)
            self._sentinels.append(sentinel)
        self.wait_healthy()

    def _start_replica_of(self, master: int, port: int | None = None) -> None:
        def command(chosen: int) -> list[str]:
            replicating = ("--replicaof", "127.0.0.1", str(master))
            return data_node(self._server, self._workdir, chosen, *replicating)

        if port is None:
            port, process = launch(command, "replica")
        else:
            process = subprocess.Popen(command(port), stdout=subprocess.DEVNULL)
            wait_until(lambda: pings(port), START_TIMEOUT, f"redis-server again on {port}")
        self._data[port] = process

    def _sentinel_command(self, port: int) -> list[str]:
        config = self._workdir / f"sentinel-{port}.conf"
        lines = [
            f"port {port}",
            "bind 127.0.0.1",
            f"dir {self._workdir}",
            f"logfile {self._workdir / f'sentinel-{port}.log'}",
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self._first_master} 2",
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
            f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}",
            f"sentinel parallel-syncs {MASTER_NAME} 1",
        ]
        config.write_text("\n".join(lines) + "\n")
        return [self._sentinel, str(config)]

    def master_port(self) -> int:
        """The master the sentinels name (the first that answers)."""
        for port in self.sentinel_ports:
            answer = self._cli.ask(port, "SENTINEL", "get-master-addr-by-name", MASTER_NAME)
            if len(answer) == 2:
                return int(answer[1])
        raise RuntimeError("no sentinel names a master")

    def _masters_named(self) -> set[int | None]:
        named: set[int | None] = set()
        for port in self.sentinel_ports:
            answer = self._cli.ask(port, "SENTINEL", "get-master-addr-by-name", MASTER_NAME)
            named.add(int(answer[1]) if len(answer) == 2 else None)
        return named

    def replica_port(self) -> int:
        """The data node that is not the master."""
        master = self.master_port()
        return next(port for port in self._data if port != master)

    def keys_on(self, port: int, pattern: str) -> list[str]:
        return keys_on(self._cli, port, pattern)

    def wait_replicated(self, pattern: str) -> None:
        """Poll until the replica holds a key matching `pattern` (replication is async)."""
        replica = self.replica_port()
        wait_until(lambda: bool(self.keys_on(replica, pattern)), START_TIMEOUT, pattern)

    def kill_master(self) -> int:
        """SIGKILL the master (a crash: nothing flushed, no goodbye); return its port."""
        port = self.master_port()
        process = self._data[port]
        assert process is not None, "the master named by the sentinels is not running"
        process.kill()
        process.wait(timeout=START_TIMEOUT)
        self._data[port] = None
        return port

    def wait_for_new_master(self, old: int) -> int:
        """Poll until every sentinel names one master other than `old`; return its port."""

        def promoted() -> bool:
            named = self._masters_named()
            return len(named) == 1 and None not in named and old not in named

        wait_until(promoted, FAILOVER_TIMEOUT, f"a master other than {old}")
        new = self.master_port()
        wait_until(
            lambda: "role:master" in self._cli.ask(new, "INFO", "replication"),
            FAILOVER_TIMEOUT,
            f"{new} to act as master",
        )
        return new

    def heal(self) -> None:
        """Restart any stopped data node as a replica of the master, then wait until healthy."""
        master = self.master_port()
        for port, process in list(self._data.items()):
            if process is None or process.poll() is not None:
                self._start_replica_of(master, port)
        self.wait_healthy()

    def wait_healthy(self) -> None:
        """One master with its replica online, seen so by all three sentinels."""
        wait_until(self._healthy, SETTLE_TIMEOUT, "a healthy sentinel set")

    def _healthy(self) -> bool:
        named = self._masters_named()
        if len(named) != 1 or None in named:
            return False
        master = self.master_port()
        replication = self._cli.ask(master, "INFO", "replication")
        if "role:master" not in replication or "connected_slaves:1" not in replication:
            return False
        if not any(line.startswith("slave0:") and "state=online" in line for line in replication):
            return False
        return all(self._sees_all(port) for port in self.sentinel_ports)

    def _sees_all(self, sentinel: int) -> bool:
        state = self._fields(self._cli.ask(sentinel, "SENTINEL", "master", MASTER_NAME))
        if state.get("flags") != "master" or state.get("num-other-sentinels") != "2":
            return False
        replicas = self._cli.ask(sentinel, "SENTINEL", "replicas", MASTER_NAME)
        flags = [replicas[i + 1] for i, line in enumerate(replicas[:-1]) if line == "flags"]
        return flags == ["slave"]

    @staticmethod
    def _fields(lines: list[str]) -> dict[str, str]:
        return dict(zip(lines[::2], lines[1::2], strict=False))

    def stop(self) -> None:
        for process in [*self._sentinels, *self._data.values()]:
            if process is not None:
                end(process)
        self._sentinels.clear()
        self._data.clear()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterFleet]:
    fleet = ClusterFleet(tmp_path_factory.mktemp("cluster"))
    try:
        fleet.launch()
        yield fleet
    finally:
        fleet.stop()


@pytest.fixture(scope="session")
def redis_sentinels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelFleet]:
    fleet = SentinelFleet(tmp_path_factory.mktemp("sentinel"))
    try:
        fleet.launch()
        yield fleet
    finally:
        fleet.stop()


@pytest.fixture
def healthy_sentinels(redis_sentinels: SentinelFleet) -> SentinelFleet:
    """The sentinel set, healed of an earlier test's failover."""
    redis_sentinels.heal()
    return redis_sentinels
