"""Fixtures for the simulator's tests: a fresh simulator and a client on a real socket."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from webproxy.sim import FinesseSimulator

SimClient = TestClient[web.Request, web.Application]


@pytest.fixture
def sim() -> FinesseSimulator:
    return FinesseSimulator()


@pytest.fixture
async def client(sim: FinesseSimulator, aiohttp_client: AiohttpClient) -> SimClient:
    return await aiohttp_client(sim.app)


@pytest.fixture
def auth() -> Callable[..., dict[str, str]]:
    """Headers with Basic credentials: auth("10001"), auth("admin", "wrong")."""

    def headers(login: str, password: str = "finesse") -> dict[str, str]:
        return {"Authorization": aiohttp.encode_basic_auth(login, password)}

    return headers
