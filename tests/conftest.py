"""Fixtures shared by every test: the simulator, proxy factories (and redis-server, via plugin)."""

from __future__ import annotations

import base64
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web_runner import BaseRunner
from prometheus_client import CollectorRegistry
from pytest_aiohttp import AiohttpClient, AiohttpServer

from webproxy.app import make_admin_app, make_proxy_app
from webproxy.appkeys import Clock
from webproxy.config import Secret, Settings
from webproxy.server import proxy_runner
from webproxy.sim import FinesseSimulator, SimData

if TYPE_CHECKING:  # it imports this module
    from tests.functional.rawhttp import Connection

pytest_plugins = ["tests.redisfixture", "tests.redisfleet"]


def basic(user: str, password: str = "finesse") -> dict[str, str]:
    """An Authorization header for the simulator's users (every password is `finesse`)."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


AGENT = basic("10001")  # an agent of team 5000
ADMIN = basic("admin")


@dataclass
class Sim:
    """A running simulator: steer it through `.sim`, reach it at `.url`."""

    sim: FinesseSimulator
    server: TestServer

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")


@pytest.fixture
async def sim(aiohttp_server: AiohttpServer) -> Sim:
    simulator = FinesseSimulator(SimData.default())
    return Sim(simulator, await aiohttp_server(simulator.app))


def settings_for(upstream_url: str, **sections: object) -> Settings:
    """Default settings pointed at an upstream; `sections` replace whole sections or fields.

    Example: settings_for(url, upstream={"read_timeout": 0.5}).
    `WEBPROXY_SERVER_FAST_LANE=false` in the environment runs every test on the slow path
    (subprocesses read it as configuration too).
    """
    base = Settings()
    if os.environ.get("WEBPROXY_SERVER_FAST_LANE", "").lower() in ("false", "0", "no"):
        base = replace(base, server=replace(base.server, fast_lane=False))  # the slow path
    settings = replace(base, upstream=replace(base.upstream, url=upstream_url))
    for section, changes in sections.items():
        assert isinstance(changes, dict)
        settings = replace(settings, **{section: replace(getattr(settings, section), **changes)})
    return settings


@dataclass
class Proxy:
    """A running proxy and its admin app, each behind a test client."""

    client: TestClient[web.Request, None]
    admin: TestClient[web.Request, web.Application]
    app: web.Application


class ProxyFactory(Protocol):
    def __call__(self, settings: Settings, clock: Clock = ...) -> Awaitable[Proxy]: ...


class ProxyTestServer(TestServer):
    """A test server whose listener is `webproxy serve`'s: the same runner and limits."""

    def __init__(self, app: web.Application, settings: Settings) -> None:
        super().__init__(app)
        self.settings = settings

    async def _make_runner(self, **kwargs: object) -> BaseRunner:
        return proxy_runner(self.app, self.settings)


@pytest.fixture
async def start_proxy(aiohttp_client: AiohttpClient) -> AsyncIterator[ProxyFactory]:
    async def start(settings: Settings, clock: Clock = time.time) -> Proxy:
        app = make_proxy_app(settings, registry=CollectorRegistry(), clock=clock)
        server = ProxyTestServer(app, settings)
        await server.start_server()
        client: TestClient[web.Request, None] = await aiohttp_client(server)
        admin = await aiohttp_client(make_admin_app(app))
        return Proxy(client, admin, app)

    yield start


@pytest.fixture
async def proxy(sim: Sim, start_proxy: ProxyFactory) -> Proxy:
    """The proxy, default settings, in front of the simulator."""
    return await start_proxy(settings_for(sim.url))


@pytest.fixture(params=["memory", "redis"])
def store_section(request: pytest.FixtureRequest) -> dict[str, object]:
    """The `[store]` settings of each backend; redis gets a real server and its own prefix."""
    if request.param == "memory":
        return {"backend": "memory"}
    url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("redis_prefix")
    # a generous timeout: a loaded CI machine must not turn a hit into a forwarded miss
    return {"backend": "redis", "redis_url": Secret(url), "key_prefix": prefix, "timeout": 2.0}


class ManualClock:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def raw_session() -> AsyncIterator[aiohttp.ClientSession]:
    """A client that sends only what the test says: no automatic headers, no decompression."""
    async with aiohttp.ClientSession(
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
    ) as session:
        yield session


@pytest.fixture
async def connect() -> AsyncIterator[Callable[[Proxy], Awaitable[Connection]]]:
    """Opens raw connections to a proxy (`tests.functional.rawhttp`); closes them after."""
    from tests.functional.rawhttp import open_connection

    opened: list[Connection] = []

    async def open_one(proxy: Proxy) -> Connection:
        opened.append(await open_connection(proxy))
        return opened[-1]

    yield open_one
    for connection in opened:
        connection.writer.close()
        with contextlib.suppress(ConnectionError):
            await connection.writer.wait_closed()
