"""Fixtures shared by every test: the simulator, proxy factories (and redis-server, via plugin)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pytest_aiohttp import AiohttpClient, AiohttpServer

from webproxy.app import make_admin_app, make_proxy_app
from webproxy.config import Settings

pytest_plugins: list[str] = []  # TODO tests.redisfixture


def basic(user: str, password: str = "finesse") -> dict[str, str]:
    """An Authorization header for the simulator's users (every password is `finesse`)."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


AGENT = basic("10001")  # an agent of team 5000
ADMIN = basic("admin")


@dataclass
class Sim:
    """A running simulator: steer it through `.sim`, reach it at `.url`."""

    sim: "FinesseSimulator"
    server: TestServer

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")


@pytest.fixture
async def sim(aiohttp_server: AiohttpServer) -> Sim:
    from webproxy.sim import FinesseSimulator, SimData

    simulator = FinesseSimulator(SimData.default())
    return Sim(simulator, await aiohttp_server(simulator.app))


def settings_for(upstream_url: str, **sections: object) -> Settings:
    """Default settings pointed at an upstream; `sections` replace whole sections or fields.

    Example: settings_for(url, upstream={"read_timeout": 0.5}).
    """
    base = Settings()
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


ProxyFactory = Callable[[Settings], Awaitable[Proxy]]


@pytest.fixture
async def start_proxy(aiohttp_client: AiohttpClient) -> AsyncIterator[ProxyFactory]:
    async def start(settings: Settings) -> Proxy:
        app = make_proxy_app(settings)
        server = TestServer(app)
        limit = settings.server.max_header_bytes  # as `webproxy serve` sets them
        await server.start_server(max_field_size=limit, max_line_size=limit)
        client: TestClient[web.Request, None] = await aiohttp_client(server)
        admin = await aiohttp_client(make_admin_app(settings, app))
        return Proxy(client, admin, app)

    yield start


@pytest.fixture
async def proxy(sim: Sim, start_proxy: ProxyFactory) -> Proxy:
    """The proxy, default settings, in front of the simulator."""
    return await start_proxy(settings_for(sim.url))


@pytest.fixture
async def raw_session() -> AsyncIterator[aiohttp.ClientSession]:
    """A client that sends only what the test says: no automatic headers, no decompression."""
    async with aiohttp.ClientSession(
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
    ) as session:
        yield session
