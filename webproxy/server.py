"""Start and stop the listeners: the proxy site, the admin site and, for the demo, the simulator."""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from webproxy.app import make_admin_app, make_proxy_app
from webproxy.config import Address, ServerSettings, Settings

log = logging.getLogger("webproxy.server")


@dataclass
class Listeners:
    """Running sites; `close()` stops them in reverse order of start."""

    runners: list[web.AppRunner] = field(default_factory=list)
    addresses: dict[str, Address] = field(default_factory=dict)

    async def add(
        self,
        name: str,
        app: web.Application,
        address: Address,
        *,
        tls: ssl.SSLContext | None = None,
        max_header_bytes: int = 8190,
    ) -> Address:
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            max_field_size=max_header_bytes,
            max_line_size=max_header_bytes,
        )
        await runner.setup()
        self.runners.append(runner)
        site = web.TCPSite(runner, address.host, address.port, ssl_context=tls)
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


async def start_proxy(settings: Settings, listeners: Listeners) -> None:
    """Start the proxy and admin listeners, proxy first (it owns the shared objects)."""
    proxy_app = make_proxy_app(settings)
    await listeners.add(
        "proxy",
        proxy_app,
        settings.server.listen,
        tls=tls_context(settings.server),
        max_header_bytes=settings.server.max_header_bytes,
    )
    await listeners.add("admin", make_admin_app(proxy_app), settings.admin.listen)


async def run_until_stopped(start: Callable[[Listeners], Awaitable[None]]) -> None:
    """Start, then wait for SIGINT or SIGTERM, then close everything cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    listeners = Listeners()
    try:
        await start(listeners)
        await stop.wait()
        log.info("stopping")
    finally:
        await listeners.close()


def _bound_address(runner: web.AppRunner, wanted: Address) -> Address:
    """The address actually bound (port 0 picks one)."""
    for sock_address in runner.addresses:
        if isinstance(sock_address, tuple):
            return Address(wanted.host, int(sock_address[1]))
    return wanted
