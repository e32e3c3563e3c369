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
- the credential digests' key and a ring of credential events (`webproxy.fleet`): a 401
  through any worker, or an admin clear, makes every worker forget that credential;
- the live log levels (`webproxy.logs.SharedLogLevels`): a `PUT /admin/log` on any worker
  signals the supervisor (SIGUSR1), which follows them itself and signals every worker to
  (see `webproxy.log_control`); a worker that starts follows them before it is ready.
Each worker learns identities on its own (desktops keep their connection, so mostly the
one that saw their sign-in serves them); a request another worker does not know yet is
forwarded and Finesse's answer approves it there.

The supervisor restarts a worker that dies (logged; one that dies within a few seconds
of its start waits longer each time, up to 30 s), passes SIGHUP on (`POST /admin/reload`
on any worker asks it to), and on SIGTERM or SIGINT tells every worker to drain and
exits 0 once they have. A worker that fails before it is ready stops the group: exit 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import secrets
import select
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Final

from prometheus_client import multiprocess, values

from webproxy.appkeys import SettingsSource, Worker, services_key
from webproxy.config import Address, Settings
from webproxy.fleet import IdentityEvents
from webproxy.logs import SharedLogLevels
from webproxy.server import Listeners, run_until_stopped, start_proxy
from webproxy.stores.shared import SharedGenerations

log = logging.getLogger("webproxy.server")

HANDLED: Final = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1}
#: The live log levels changed (`PUT /admin/log`): a worker tells the supervisor, which
#: tells every worker.
LOG_LEVELS_CHANGED: Final = signal.SIGUSR1
READY_TIMEOUT: Final = 30.0
PR_SET_PDEATHSIG: Final = 1
QUICK_DEATH: Final = 5.0  # a worker dying this soon after its start is crash-looping
MAX_BACKOFF: Final = 30.0

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
    identity_key: bytes
    identity_events: IdentityEvents
    log_levels: SharedLogLevels
    ready_write: int
    workers: dict[int, int] = field(default_factory=dict)  # pid -> worker index
    started: dict[int, float] = field(default_factory=dict)  # worker index -> monotonic start
    backoff: dict[int, float] = field(default_factory=dict)  # worker index -> next wait
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
        identity_key=secrets.token_bytes(32),
        identity_events=IdentityEvents(),
        log_levels=SharedLogLevels(count),
        ready_write=ready_write,
    )
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)
    code = 0
    try:
        for index in range(count):
            _spawn(group, index, previous)
        if _wait_ready(group, ready_read, count):
            announce(group.proxy_at, group.admin_at)
        else:
            code = 1
            _stop(group)
        _supervise(group, previous)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        for sock in placeholders:
            sock.close()
        os.close(ready_read)
        os.close(ready_write)
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return code


def _supervise(group: Group, mask: Mask) -> None:
    while group.workers:
        info = signal.sigwaitinfo(HANDLED)
        if info.si_signo in (signal.SIGTERM, signal.SIGINT):
            _stop(group)
        elif info.si_signo == signal.SIGHUP:
            _tell(group, signal.SIGHUP)
        elif info.si_signo == LOG_LEVELS_CHANGED:
            group.log_levels.follow(None, group.settings.log)
            _tell(group, LOG_LEVELS_CHANGED)
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
            _pause_if_crash_looping(group, index)
            _spawn(group, index, mask)


def _pause_if_crash_looping(group: Group, index: int) -> None:
    """A worker that died soon after starting waits 1, 2, 4 ... up to 30 s before the next."""
    if time.monotonic() - group.started.get(index, 0.0) > QUICK_DEATH:
        group.backoff.pop(index, None)
        return
    wait = group.backoff.get(index, 1.0)
    group.backoff[index] = min(wait * 2, MAX_BACKOFF)
    log.warning("worker %d is failing at start; waiting %.0fs before the next", index, wait)
    time.sleep(wait)  # signals stay queued (blocked) meanwhile


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
    supervisor = os.getpid()
    pid = os.fork()
    if pid:
        group.workers[pid] = index
        group.started[index] = time.monotonic()
        log.info("worker %d started (pid %d)", index, pid)
        return
    code = 1
    try:  # the worker: never returns into the supervisor's code
        _die_with(supervisor)
        for signum in HANDLED:  # SIGUSR1 would end the worker until its handler is set
            ignored = signum == LOG_LEVELS_CHANGED
            signal.signal(signum, signal.SIG_IGN if ignored else signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        asyncio.run(run_until_stopped(lambda listeners: _start_worker(group, index, listeners)))
        code = 0
    except BaseException:
        log.exception("worker %d failed", index)
    finally:
        logging.shutdown()
        os._exit(code)


def _die_with(supervisor: int) -> None:
    """Have the kernel send this worker SIGTERM if the supervisor dies, even by SIGKILL
    (Linux's PR_SET_PDEATHSIG), so no worker outlives its group."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != supervisor:  # it died before the request was made
        os._exit(1)


async def _start_worker(group: Group, index: int, listeners: Listeners) -> None:
    settings = replace(
        group.settings,
        server=replace(group.settings.server, listen=group.proxy_at),
        admin=replace(group.settings.admin, listen=group.admin_at),
    )
    worker = Worker(
        group.generations,
        group.metrics_dir,
        group.identity_key,
        group.identity_events,
        log_levels=group.log_levels,
        index=index,
    )
    await start_proxy(settings, listeners, partial(_reread, group), worker=worker)
    _follow_log_levels(group.log_levels, index, listeners)
    os.write(group.ready_write, b"R")


def _follow_log_levels(shared: SharedLogLevels, index: int, listeners: Listeners) -> None:
    """Follow the group's live log levels now, and again at each SIGUSR1 (the handler is
    set first, so no change made meanwhile is missed)."""
    app = listeners.proxy_app
    assert app is not None, "start_proxy sets it"

    def follow() -> None:
        shared.follow(index, app[services_key].settings.log)

    asyncio.get_running_loop().add_signal_handler(LOG_LEVELS_CHANGED, follow)
    follow()


def _reread(group: Group) -> Settings:
    """The configuration again, with the ports the group bound where it asked for port 0
    (else every reload would report the listeners as changed)."""
    wanted = group.source()
    if wanted.server.listen == group.settings.server.listen:
        wanted = replace(wanted, server=replace(wanted.server, listen=group.proxy_at))
    if wanted.admin.listen == group.settings.admin.listen:
        wanted = replace(wanted, admin=replace(wanted.admin, listen=group.admin_at))
    return wanted


def _wait_ready(group: Group, ready_read: int, count: int) -> bool:
    """Every worker listening: True. One that died first, or too slow: False (logged)."""
    deadline = time.monotonic() + READY_TIMEOUT
    seen = 0
    while seen < count:
        if time.monotonic() > deadline:
            log.error("workers did not become ready within %.0fs", READY_TIMEOUT)
            return False
        readable, _, _ = select.select([ready_read], [], [], 0.1)
        if readable:
            seen += len(os.read(ready_read, count - seen))
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid:
            group.workers.pop(pid, None)
            code = os.waitstatus_to_exitcode(status)
            log.error("a worker (pid %d) exited with %d before it was ready", pid, code)
            return False
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
