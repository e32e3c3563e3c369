"""`webproxy serve --workers N`: a supervisor and N forked worker processes on one port.

Every worker binds the proxy and admin addresses itself with SO_REUSEPORT, so the kernel
spreads connections over them. The supervisor binds each address first (not listening)
to fix the port when 0 was asked for and to keep it reserved while workers come and go.

What the workers share, so that the group behaves as one proxy:
- generation counters in shared memory (`stores.shared`): with the memory store, each
  worker has its own entries, but a purge or clear in one invalidates them in all; with
  Redis, the store itself is shared;
- Prometheus multiprocess mode: every worker writes its metrics to files in one folder,
  and `/metrics` on any worker reports the whole group.
Each worker learns identities on its own (desktops keep their connection, so mostly the
one that saw their sign-in serves them); a request another worker does not know yet is
forwarded and Finesse's answer approves it there.

The supervisor restarts a worker that dies (logged), passes SIGHUP on, and on SIGTERM or
SIGINT tells every worker to drain and exits 0 once they have.
"""

from __future__ import annotations

import asyncio
import logging
import os
import select
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Final

from prometheus_client import multiprocess, values

from webproxy.appkeys import SettingsSource, Worker
from webproxy.config import Address, Settings
from webproxy.server import Listeners, run_until_stopped, start_proxy
from webproxy.stores.shared import SharedGenerations

log = logging.getLogger("webproxy.server")

HANDLED: Final = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
READY_TIMEOUT: Final = 30.0

Mask = set[signal.Signals | int]


@dataclass
class Group:
    """The supervisor's view of its workers."""

    settings: Settings
    source: SettingsSource
    proxy_at: Address
    admin_at: Address
    generations: SharedGenerations
    metrics_dir: str
    ready_write: int
    workers: dict[int, int] = field(default_factory=dict)  # pid -> worker index
    stopping: bool = False


def serve_workers(
    settings: Settings, source: SettingsSource, announce: Callable[[Address, Address], None]
) -> int:
    """Run the group until SIGTERM or SIGINT; 0 once every worker has drained."""
    count = settings.server.workers
    placeholders = [_reserve(settings.server.listen), _reserve(settings.admin.listen)]
    metrics_dir = tempfile.mkdtemp(prefix="webproxy-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # prometheus-client's own switch
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    ready_read, ready_write = os.pipe()
    group = Group(
        settings=settings,
        source=source,
        proxy_at=_bound(placeholders[0], settings.server.listen),
        admin_at=_bound(placeholders[1], settings.admin.listen),
        generations=SharedGenerations(),
        metrics_dir=metrics_dir,
        ready_write=ready_write,
    )
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)
    try:
        for index in range(count):
            _spawn(group, index, previous)
        if _wait_ready(ready_read, count):
            announce(group.proxy_at, group.admin_at)
        else:
            log.error("workers did not become ready within %.0fs", READY_TIMEOUT)
            _stop(group)
        _supervise(group, previous)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        for sock in placeholders:
            sock.close()
        os.close(ready_read)
        os.close(ready_write)
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _supervise(group: Group, mask: Mask) -> None:
    while group.workers:
        info = signal.sigwaitinfo(HANDLED)
        if info.si_signo in (signal.SIGTERM, signal.SIGINT):
            _stop(group)
        elif info.si_signo == signal.SIGHUP:
            _tell(group, signal.SIGHUP)
        else:
            _reap(group, mask)


def _reap(group: Group, mask: Mask) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        index = group.workers.pop(pid, None)
        if index is None:
            continue
        multiprocess.mark_process_dead(pid, group.metrics_dir)  # type: ignore[no-untyped-call]
        if not group.stopping:
            code = os.waitstatus_to_exitcode(status)
            log.warning("worker %d (pid %d) exited with %d; starting another", index, pid, code)
            _spawn(group, index, mask)


def _stop(group: Group) -> None:
    if not group.stopping:
        group.stopping = True
        log.info("stopping %d workers", len(group.workers))
        _tell(group, signal.SIGTERM)


def _tell(group: Group, signum: signal.Signals) -> None:
    for pid in group.workers:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass  # already gone; reaped next


def _spawn(group: Group, index: int, mask: Mask) -> None:
    pid = os.fork()
    if pid:
        group.workers[pid] = index
        return
    code = 1
    try:  # the worker: never returns into the supervisor's code
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for signum in HANDLED:
            signal.signal(signum, signal.SIG_DFL)
        asyncio.run(run_until_stopped(lambda listeners: _start_worker(group, listeners)))
        code = 0
    except BaseException:
        log.exception("worker %d failed", index)
    finally:
        logging.shutdown()
        os._exit(code)


async def _start_worker(group: Group, listeners: Listeners) -> None:
    settings = replace(
        group.settings,
        server=replace(group.settings.server, listen=group.proxy_at),
        admin=replace(group.settings.admin, listen=group.admin_at),
    )
    worker = Worker(group.generations, group.metrics_dir)
    await start_proxy(settings, listeners, group.source, worker=worker)
    os.write(group.ready_write, b"R")


def _wait_ready(ready_read: int, count: int) -> bool:
    loop_deadline = READY_TIMEOUT
    seen = 0
    while seen < count:
        readable, _, _ = select.select([ready_read], [], [], loop_deadline)
        if not readable:
            return False
        seen += len(os.read(ready_read, count - seen))
    return True


def _reserve(address: Address) -> socket.socket:
    """Bind (without listening) with SO_REUSEPORT: fixes port 0, keeps the port ours."""
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((address.host, address.port))
    return sock


def _bound(sock: socket.socket, address: Address) -> Address:
    return Address(address.host, int(sock.getsockname()[1]))
