"""Start and stop the listeners: the proxy site, the admin site and, for the demo, the simulator."""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from webproxy.access import AccessLogger
from webproxy.admin import reload_settings
from webproxy.app import make_admin_app, make_proxy_app
from webproxy.appkeys import SettingsSource, Worker
from webproxy.config import Address, ServerSettings, Settings

log = logging.getLogger("webproxy.server")

#: Connections the kernel may queue before accept: a shift start opens hundreds at once,
#: and past the queue a client waits for a SYN retry (a second or more). The kernel caps
#: it at net.core.somaxconn.
BACKLOG = 1024


@dataclass
class Listeners:
    """Running sites; `close()` stops them in reverse order of start."""

    runners: list[web.AppRunner] = field(default_factory=list)
    addresses: dict[str, Address] = field(default_factory=dict)
    proxy_app: web.Application | None = None  # set by start_proxy; a reload acts on it

    async def add(
        self,
        name: str,
        app: web.Application,
        address: Address,
        *,
        tls: ssl.SSLContext | None = None,
        max_header_bytes: int = 8190,
        access_log: logging.Logger | None = None,
        shutdown_grace: float = 5.0,
        reuse_port: bool = False,
    ) -> Address:
        runner = web.AppRunner(
            app,
            shutdown_timeout=shutdown_grace,
            access_log_class=AccessLogger,
            access_log=access_log,
            handle_signals=False,
            max_field_size=max_header_bytes,
            max_line_size=max_header_bytes,
        )
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
    await listeners.add(
        "proxy",
        proxy_app,
        settings.server.listen,
        tls=tls_context(settings.server),
        max_header_bytes=settings.server.max_header_bytes,
        access_log=logging.getLogger("webproxy.access"),
        shutdown_grace=settings.server.shutdown_grace,
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
