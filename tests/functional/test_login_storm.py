"""Shift start: many desktops of several teams sign in and load their configuration at once."""

from __future__ import annotations

import asyncio

import aiohttp
from pytest_aiohttp import AiohttpServer

from tests.conftest import Proxy, ProxyFactory, basic, settings_for
from webproxy.sim import FinesseSimulator, SimData

TEAMS = 4
AGENTS_PER_TEAM = 50
GLOBALS = ("/finesse/api/ChatConfig", "/finesse/api/ECCVariableConfig", "/finesse/api/MediaDomains")
COLLECTIONS = (
    "ReasonCodes?category=ALL",
    "WrapUpReasons",
    "PhoneBooks",
    "Workflows",
    "MediaPropertiesLayouts",
)


def desktops() -> list[tuple[str, str]]:
    """(loginId, teamId) of every agent, as SimData.generate numbers them."""
    return [
        (str(10000 + team * 1000 + agent), str(5000 + team))
        for team in range(TEAMS)
        for agent in range(1, AGENTS_PER_TEAM + 1)
    ]


async def load_desktop(proxy: Proxy, agent: str, team: str) -> dict[str, bytes]:
    """Sign in, then load everything a desktop loads at start-up; return the bodies."""
    headers = basic(agent)
    signed_in = await proxy.client.get(f"/finesse/api/User/{agent}", headers=headers)
    assert signed_in.status == 200
    paths = [*GLOBALS, *(f"/finesse/api/TeamResource/{team}/{c}" for c in COLLECTIONS)]
    bodies = {}
    for path in paths:
        response = await proxy.client.get(
            f"{path}{'&' if '?' in path else '?'}nocache=1", headers=headers
        )
        assert response.status == 200, (agent, path, response.status)
        bodies[path] = await response.read()
    return bodies


async def expected_bodies(url: str, team: str) -> dict[str, bytes]:
    """What Finesse itself answers a member of `team` (read straight from the simulator)."""
    member = basic(str(10000 + (int(team) - 5000) * 1000 + 1))
    bodies = {}
    async with aiohttp.ClientSession() as session:
        for collection in COLLECTIONS:
            path = f"/finesse/api/TeamResource/{team}/{collection}"
            async with session.get(url + path, headers=member) as response:
                bodies[path] = await response.read()
    return bodies


async def test_two_hundred_desktops_reach_finesse_once_per_cached_url(
    aiohttp_server: AiohttpServer, start_proxy: ProxyFactory, store_section: dict[str, object]
) -> None:
    simulator = FinesseSimulator(SimData.generate(TEAMS, AGENTS_PER_TEAM), latency=0.02)
    server = await aiohttp_server(simulator.app)
    url = str(server.make_url("")).rstrip("/")
    proxy = await start_proxy(settings_for(url, store=store_section))
    results = await asyncio.gather(*(load_desktop(proxy, a, t) for a, t in desktops()))

    cached_gets = {
        line: count
        for line, count in simulator.url_stats().items()
        if line.startswith("GET ") and "/User/" not in line
    }
    assert len(cached_gets) == len(GLOBALS) + TEAMS * len(COLLECTIONS)
    assert set(cached_gets.values()) == {1}

    expected = {str(5000 + t): await expected_bodies(url, str(5000 + t)) for t in range(TEAMS)}
    for (_, team), bodies in zip(desktops(), results, strict=True):
        for path, body in expected[team].items():
            assert bodies[path] == body
