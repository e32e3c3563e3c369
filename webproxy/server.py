"""Start and stop the listeners: the proxy site, the admin site and, for the demo, the simulator."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web

from webproxy.access import AccessLogger
from webproxy.admin import reload_settings
from webproxy.app import make_admin_app, make_proxy_app
from webproxy.appkeys import SettingsSource, Worker, services_key
from webproxy.config import Address, ServerSettings, Settings
from webproxy.listener import ClientLimits, ClientRunner

log = logging.getLogger("webproxy.server")

#: Connections the kernel may queue before accept: a shift start opens hundreds at once,
#: and past the queue a client waits for a SYN retry (a second or more). The kernel caps
#: it at net.core.somaxconn.
BACKLOG = 1024
#: Descriptors kept free of client connections for everything else the process opens.
FD_RESERVE: Final = 64
UNLIMITED_CONNECTIONS: Final = 1 << 30
#: What asyncio's accept loop says at EMFILE/ENFILE (base_events' exception context).
ACCEPT_EXHAUSTED: Final = "socket.accept() out of system resource"


@dataclass
class Listeners:
    """Running sites; `close()` stops them in reverse order of start."""

    runners: list[web.AppRunner] = field(default_factory=list)
    addresses: dict[str, Address] = field(default_factory=dict)
    proxy_app: web.Application | None = None  # set by start_proxy; a reload acts on it

    async def add(
        self,
        name: str,
        app: web.Application | web.AppRunner,
        address: Address,
        *,
        tls: ssl.SSLContext | None = None,
        reuse_port: bool = False,
    ) -> Address:
        """Listen on `address` with `app` (admin, simulator) or a runner made for it (proxy)."""
        if isinstance(app, web.AppRunner):
            runner = app
        else:  # admin, simulator: no aiohttp access log
            runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        self.runners.append(runner)
        site = web.TCPSite(
            runner,
            address.host,
            address.port,
            ssl_context=tls,
            reuse_port=reuse_port or None,
            backlog=BACKLOG,
        )
        await site.start()
        bound = _bound_address(runner, address)
        self.addresses[name] = bound
        return bound

    async def close(self) -> None:
        for runner in reversed(self.runners):
            await runner.cleanup()
        self.runners.clear()


def proxy_runner(
    app: web.Application,
    settings: Settings,
    *,
    access_log: logging.Logger | None = None,
    handler_cancellation: bool = False,
) -> ClientRunner:
    """The proxy listener's runner: every `[server]` limit on every client connection.

    Handlers are not cancelled when their client goes away: a write already sent must
    still be purged when Finesse answers it (`handler_cancellation` is for tests only).
    """
    server = settings.server
    metrics = app[services_key].metrics
    return ClientRunner(
        app,
        limits=ClientLimits.of(server, connection_budget(settings)),
        refused=lambda status: metrics.count_request("other", status),
        fast_lane=app[services_key].fast_lane if server.fast_lane else None,
        shutdown_timeout=server.shutdown_grace,
        access_log_class=AccessLogger,
        access_log=access_log,
        handle_signals=False,
        handler_cancellation=handler_cancellation,
        max_field_size=server.max_header_bytes,
        max_line_size=server.max_header_bytes,
        keepalive_timeout=server.keepalive_timeout,
        auto_decompress=False,  # bodies pass byte for byte
    )


def connection_budget(settings: Settings) -> int:
    """`server.max_client_connections`, or (0) as many as the descriptor limit allows.

    A relayed connection may hold two descriptors (the client's and a long-lived
    upstream one); the REST pool, Redis's pool and a reserve for everything else
    (listeners, logs, /healthz on the admin listener) come off the top. A configured
    value that does not fit is lowered, with a warning.
    """
    wanted = settings.server.max_client_connections
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted or UNLIMITED_CONNECTIONS
    redis = settings.store.max_connections if settings.store.backend == "redis" else 0
    spare = soft - FD_RESERVE - settings.upstream.max_connections - redis
    fits = max(1, spare // 2)
    if wanted and fits < wanted:
        log.warning(
            "server.max_client_connections lowered to %d to fit the descriptor limit (%d)",
            fits,
            soft,
        )
    return min(wanted, fits) if wanted else fits


def raise_descriptor_limit() -> None:
    """Raise the soft descriptor limit to the hard one, as nginx's worker_rlimit_nofile
    and Go's runtime do: a proxy holds two descriptors per relayed connection."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def quiet_accept_errors(loop: asyncio.AbstractEventLoop, interval: float = 10.0) -> None:
    """Log asyncio's "accept() out of system resource" once per `interval`, not once per
    connection waiting in the backlog (up to 1,024 tracebacks a second at EMFILE)."""
    last = [-interval]

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") != ACCEPT_EXHAUSTED:
            loop.default_exception_handler(context)
            return
        now = loop.time()
        if now - last[0] >= interval:
            last[0] = now
            log.warning(
                "out of descriptors, not accepting for a moment: %s", context.get("exception")
            )

    loop.set_exception_handler(handler)


def tls_context(server: ServerSettings) -> ssl.SSLContext | None:
    if not server.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(server.tls_cert, server.tls_key)
    return context


async def start_proxy(
    settings: Settings,
    listeners: Listeners,
    source: SettingsSource | None = None,
    *,
    worker: Worker | None = None,
) -> None:
    """Start the proxy and admin listeners, proxy first (it owns the shared objects).

    `source` reads the configuration again for a reload (SIGHUP or `POST /admin/reload`);
    `worker` is what a worker of a group shares with the others (see `webproxy.workers`).
    """
    proxy_app = make_proxy_app(settings, source=source, worker=worker)
    reuse_port = worker is not None
    runner = proxy_runner(proxy_app, settings, access_log=logging.getLogger("webproxy.access"))
    await listeners.add(
        "proxy",
        runner,
        settings.server.listen,
        tls=tls_context(settings.server),
        reuse_port=reuse_port,
    )
    listeners.proxy_app = proxy_app
    admin = make_admin_app(proxy_app)
    await listeners.add("admin", admin, settings.admin.listen, reuse_port=reuse_port)


async def run_until_stopped(start: Callable[[Listeners], Awaitable[None]]) -> None:
    """Start; reload on SIGHUP; on SIGINT or SIGTERM drain and close everything cleanly.

    Draining: the listening sockets close at once (new connections are refused), open
    WebSockets get 1001 (going away), and requests in flight, long polls included, have
    `server.shutdown_grace` seconds to finish.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    quiet_accept_errors(loop)
    listeners = Listeners()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, _reload, listeners)
    try:
        await start(listeners)
        await stop.wait()
        log.info("draining: no new connections; requests in flight may finish")
    finally:
        loop.remove_signal_handler(signal.SIGHUP)
        await listeners.close()
    log.info("stopped")


def _reload(listeners: Listeners) -> None:
    if listeners.proxy_app is not None:
        reload_settings(listeners.proxy_app)


def _bound_address(runner: web.AppRunner, wanted: Address) -> Address:
    """The address actually bound (port 0 picks one)."""
    for sock_address in runner.addresses:
        if isinstance(sock_address, tuple):
            return Address(wanted.host, int(sock_address[1]))
    return wanted
