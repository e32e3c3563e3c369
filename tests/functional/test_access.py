"""A cached body only ever goes to a request Finesse itself would answer with it."""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN, AGENT, Proxy, ProxyFactory, Sim, basic, settings_for
from tests.functional.finesse import sign_in, upstream_gets

TEAM_B_CODES = "/finesse/api/TeamResource/5001/ReasonCodes?category=ALL"
TEAM_B_PATH = "/finesse/api/TeamResource/5001/ReasonCodes"


@pytest.fixture
async def warm(sim: Sim, start_proxy: ProxyFactory, store_section: dict[str, object]) -> Proxy:
    """A proxy whose cache holds team 5001's reason codes and ChatConfig."""
    proxy = await start_proxy(settings_for(sim.url, store=store_section))
    await sign_in(proxy, "11001")
    for path in (TEAM_B_CODES, "/finesse/api/ChatConfig"):
        response = await proxy.client.get(path, headers=basic("11001"))
        assert response.headers["Cache-Status"].endswith("stored")
    return proxy


async def refused_by_finesse(proxy: Proxy, sim: Sim, headers: dict[str, str]) -> None:
    """The request reached Finesse, which refused it; no cached body came back."""
    before = upstream_gets(sim, TEAM_B_PATH)
    response = await proxy.client.get(TEAM_B_CODES, headers=headers)
    assert response.status == 401
    assert b"ApiErrors" in await response.read()
    assert response.headers["Cache-Status"] == (
        "webproxy; fwd=uri-miss; fwd-status=401; detail=unauthorized"
    )
    assert upstream_gets(sim, TEAM_B_PATH) == before + 1


async def test_an_agent_of_another_team_gets_finesses_401(warm: Proxy, sim: Sim) -> None:
    await sign_in(warm, "10001")
    await refused_by_finesse(warm, sim, AGENT)


async def test_a_request_without_credentials_gets_finesses_401(warm: Proxy, sim: Sim) -> None:
    await refused_by_finesse(warm, sim, {})


async def test_a_wrong_password_gets_finesses_401(warm: Proxy, sim: Sim) -> None:
    await refused_by_finesse(warm, sim, basic("11001", "wrong"))


async def test_a_supervisor_reading_another_teams_agent_binds_nothing(
    warm: Proxy, sim: Sim
) -> None:
    supervisor = basic("10000")  # supervises team 5000
    read = await warm.client.get("/finesse/api/User/11001", headers=supervisor)
    assert read.status in (200, 401)  # whatever Finesse says, it must not make 10000 a 5001 member
    await refused_by_finesse(warm, sim, supervisor)


async def test_an_administrator_reading_an_agent_binds_nothing(warm: Proxy, sim: Sim) -> None:
    read = await warm.client.get("/finesse/api/User/11001", headers=ADMIN)
    assert read.status == 200
    await refused_by_finesse(warm, sim, ADMIN)


async def test_a_credential_refused_elsewhere_is_forgotten_at_once(warm: Proxy, sim: Sim) -> None:
    member = basic("11001")
    hit = await warm.client.get("/finesse/api/ChatConfig", headers=member)
    assert hit.headers["Cache-Status"].startswith("webproxy; hit")
    other_user = await warm.client.get("/finesse/api/User/11002", headers=member)
    assert other_user.status == 401
    before = upstream_gets(sim, "/finesse/api/ChatConfig")
    again = await warm.client.get("/finesse/api/ChatConfig", headers=member)
    assert again.headers["Cache-Status"].startswith("webproxy; fwd=uri-miss; fwd-status=200")
    assert upstream_gets(sim, "/finesse/api/ChatConfig") == before + 1


async def test_a_credential_finesse_answered_for_a_url_is_approved_for_it(
    warm: Proxy, sim: Sim
) -> None:
    member = basic("11002")  # never signed in through the proxy
    first = await warm.client.get(TEAM_B_CODES, headers=member)
    assert first.status == 200
    assert first.headers["Cache-Status"].startswith("webproxy; fwd=uri-miss")
    second = await warm.client.get(TEAM_B_CODES, headers=member)
    assert second.headers["Cache-Status"].startswith("webproxy; hit")


async def test_a_signed_in_member_is_served_from_cache(warm: Proxy, sim: Sim) -> None:
    await sign_in(warm, "11003")
    response = await warm.client.get(TEAM_B_CODES, headers=basic("11003"))
    assert response.status == 200
    assert response.headers["Cache-Status"].startswith("webproxy; hit")
    assert upstream_gets(sim, TEAM_B_PATH) == 1
