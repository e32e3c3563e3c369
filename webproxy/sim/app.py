"""FinesseSimulator: a small Finesse on aiohttp, with latency, faults and request counts.

Middlewares, outermost first: count the request (/sim/stats), apply an injected fault and
the latency, turn ApiError (and unknown /finesse/api routes) into <ApiErrors>, then
authenticate every /finesse/api call but SystemInfo and UserAuthMode. On /finesse/api
the latency is added after the handler has read or written the state, as a slow network
would; elsewhere before it.

`hub` holds the XMPP sessions of every transport and publishes the notifications; with
`xmpp_port` the app also opens a plain XMPP listener (`xmpp_address`), started and
stopped with it (cleanup_ctx).
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator
from typing import Final
from urllib.parse import quote

from aiohttp import web
from aiohttp.typedefs import Handler
from yarl import URL

from webproxy.sim import reply
from webproxy.sim.auth import authenticate, caller_key
from webproxy.sim.bosh import BoshManager
from webproxy.sim.config_api import config_routes
from webproxy.sim.contact_api import ContactRoutes
from webproxy.sim.control import AccountRoutes, ControlRoutes
from webproxy.sim.data import SimData
from webproxy.sim.desktop_api import DesktopRoutes
from webproxy.sim.desktop_files import DesktopFiles
from webproxy.sim.errors import ApiError, for_status
from webproxy.sim.faults import Fault, FaultBook, FaultKind
from webproxy.sim.gadgets import GadgetRoutes
from webproxy.sim.lifetime import Lifetime, drop
from webproxy.sim.message_api import MessageRoutes
from webproxy.sim.pubsub import NotificationHub
from webproxy.sim.state import SimState
from webproxy.sim.static_files import StaticFiles
from webproxy.sim.stats import RequestStats, tracked
from webproxy.sim.system_api import OPEN_PATHS, SystemRoutes
from webproxy.sim.team_api import TeamRoutes
from webproxy.sim.team_resource import TeamResourceRoutes
from webproxy.sim.tomcat import Refused, finesse_path
from webproxy.sim.transport import TransportRoutes
from webproxy.sim.xmpp_tcp import XmppListener

MAX_BODY: Final = 8 * 1024 * 1024


class FinesseSimulator:
    """One simulated Finesse; its state, faults and counts belong to this instance."""

    def __init__(
        self,
        data: SimData | None = None,
        *,
        latency: float = 0.0,
        xmpp_port: int | None = None,
        xmpp_host: str = "127.0.0.1",
    ) -> None:
        self.data = data if data is not None else SimData.default()
        self.state = SimState(self.data)
        self.hub = NotificationHub(self.state)
        self.bosh = BoshManager(self.hub)
        self.xmpp = None if xmpp_port is None else XmppListener(self.hub, xmpp_host, xmpp_port)
        self.latency = latency
        self.faults = FaultBook()
        self.counts = RequestStats()
        self.files = StaticFiles()  # the desktop's and gadgets' static files
        self.lifetime = Lifetime()
        self.built: web.Application | None = None

    @property
    def app(self) -> web.Application:
        """The aiohttp application, built on first use."""
        if self.built is None:
            self.built = self.make_app()
        return self.built

    def inject(self, fault: Fault) -> None:
        """Arm a fault, as POST /sim/faults does."""
        self.faults.add(fault)

    def clear_faults(self) -> None:
        self.faults.clear()

    def stats(self) -> dict[str, int]:
        """Requests served by "METHOD path" (the `requests` part of /sim/stats)."""
        return dict(self.counts.requests)

    def url_stats(self) -> dict[str, int]:
        """Requests by "METHOD path?query", nocache removed (the `urls` part)."""
        return dict(self.counts.urls)

    def reset_stats(self) -> None:
        self.counts.reset()

    def set_password(self, login_id: str, password: str) -> None:
        """Change a user's password, as PATCH /sim/users/{loginId} does."""
        self.state.set_password(login_id, password)

    def move_user(self, login_id: str, team_id: str) -> None:
        """Move a user to another team, as PATCH /sim/users/{loginId} does."""
        self.state.move_user(login_id, team_id)

    @property
    def xmpp_address(self) -> tuple[str, int]:
        """(host, port) of the plain XMPP listener, once the app has started."""
        if self.xmpp is None:
            raise RuntimeError("this simulator has no XMPP listener (xmpp_port=None)")
        return self.xmpp.address

    async def wait_for_requests(self, total: int) -> None:
        """Return once `total` counted requests have arrived since the last reset.

        Counted on arrival, before faults, latency and the handler run: a test can start
        a request, wait here, then act while that request is still in flight.
        """
        await self.counts.wait_for(total)

    def make_app(self) -> web.Application:
        middlewares = [count_requests, apply_faults, answer_errors, require_auth]
        app = TomcatApplication(middlewares=middlewares, client_max_size=MAX_BODY)
        app[simulator_key] = self
        state = self.state
        routes = [
            *config_routes(state),
            ContactRoutes(state),
            SystemRoutes(state),
            TeamRoutes(state),
            TeamResourceRoutes(state),
            DesktopRoutes(state, self.hub),
            MessageRoutes(state),
            TransportRoutes(self.lifetime, self.hub, self.bosh),
            ControlRoutes(self.counts, self.faults),
            AccountRoutes(state),
            DesktopFiles(state, self.files),
            GadgetRoutes(state, self.files),
            self.files,  # last: serves what the two above added
        ]
        for table in routes:
            table.add_to(app.router)
        app.on_startup.append(self.lifetime.start)
        app.on_shutdown.append(self.lifetime.stop)
        app.on_shutdown.append(self.bosh.stop)
        app.cleanup_ctx.append(self.xmpp_listener)
        return app

    async def xmpp_listener(self, app: web.Application) -> AsyncIterator[None]:
        """cleanup_ctx: the plain XMPP listener, when one was asked for."""
        if self.xmpp is not None:
            await self.xmpp.start()
        yield
        if self.xmpp is not None:
            await self.xmpp.close()


simulator_key: Final = web.AppKey("simulator", FinesseSimulator)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # aiohttp discourages subclasses

    class TomcatApplication(web.Application):
        """Routes each request by the path Tomcat and Finesse read (`sim.tomcat`): a
        spelling Finesse reads as another path is handled as that path; one Tomcat
        refuses gets 400 before any handler or count."""

        async def _handle(self, request: web.Request) -> web.StreamResponse:
            raw_path, _, query = request.raw_path.partition("?")
            try:
                path = finesse_path(raw_path)
            except Refused:
                return web.Response(status=400, text="Bad Request")
            if path != raw_path:
                encoded = quote(path, safe="/;=+,!$&'()*:@~")
                target = URL.build(path=encoded, query_string=query, encoded=True)
                request = request.clone(rel_url=target)
            return await super()._handle(request)


def is_api(path: str) -> bool:
    return path.startswith("/finesse/api/") or path == "/finesse/api"


@web.middleware
async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    if tracked(request.path):
        url = request.rel_url
        request.app[simulator_key].counts.count(request.method, url.raw_path, url.raw_query_string)
    return await handler(request)


@web.middleware
async def apply_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The first matching fault, then the latency (after the handler on /finesse/api)."""
    sim = request.app[simulator_key]
    fault = sim.faults.take(request.path) if tracked(request.path) else None
    kind = None if fault is None else fault.kind
    if kind is FaultKind.HANG:
        return await sim.lifetime.hang(request)
    if kind is FaultKind.DROP:
        return drop(request)
    delay = fault.seconds if fault is not None and kind is FaultKind.LATENCY else 0.0
    api = is_api(request.path)
    if not api:
        await sim.lifetime.pause(delay)
    if fault is not None and kind is FaultKind.STATUS:
        response: web.StreamResponse = reply.error(for_status(fault.status))
    else:
        response = await handler(request)
    if api:
        await sim.lifetime.pause(delay + sim.latency)
    return response


@web.middleware
async def answer_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """ApiError -> <ApiErrors>; unknown /finesse/api paths and methods likewise."""
    try:
        return await handler(request)
    except ApiError as err:
        return reply.error(err)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as exc:
        if not is_api(request.path):
            raise
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return reply.error(ApiError(exc.status, exc.reason, exc.reason, request.path, allow))


@web.middleware
async def require_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """HTTP Basic on every /finesse/api call except SystemInfo and UserAuthMode."""
    if is_api(request.path) and request.path not in OPEN_PATHS:
        logins = request.app[simulator_key].state.logins
        request[caller_key] = authenticate(logins, request.headers.get("Authorization"))
    return await handler(request)


async def run_simulator(
    host: str, port: int, data: SimData | None = None, latency: float = 0.0
) -> None:
    """Serve a FinesseSimulator on host:port until cancelled, then shut down cleanly."""
    runner = web.AppRunner(FinesseSimulator(data, latency=latency).app, shutdown_timeout=5.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
