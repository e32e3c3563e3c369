"""The four cached resources: hits, keys, bypass, headers -- against both stores."""

from __future__ import annotations

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from tests.conftest import AGENT, ManualClock, Proxy, ProxyFactory, Sim, basic, settings_for
from tests.functional.finesse import sign_in, upstream_gets

REASON_CODES = "/finesse/api/TeamResource/5000/ReasonCodes?category=ALL"


@pytest.fixture
async def cached(sim: Sim, start_proxy: ProxyFactory, store_section: dict[str, object]) -> Proxy:
    return await start_proxy(settings_for(sim.url, store=store_section))


@pytest.mark.parametrize(
    "path",
    [
        "/finesse/api/ChatConfig",
        "/finesse/api/ECCVariableConfig",
        "/finesse/api/MediaDomains",
        REASON_CODES,
        "/finesse/api/TeamResource/5000/WrapUpReasons",
        "/finesse/api/TeamResource/5000/PhoneBooks",
        "/finesse/api/TeamResource/5000/Workflows",
        "/finesse/api/TeamResource/5000/MediaPropertiesLayouts",
    ],
)
async def test_a_signed_in_agents_second_read_is_a_hit(cached: Proxy, sim: Sim, path: str) -> None:
    await sign_in(cached, "10001")
    first = await cached.client.get(path, headers=AGENT)
    body = await first.read()
    assert first.status == 200
    assert first.headers["Cache-Status"] == "webproxy; fwd=miss; fwd-status=200; stored"
    second = await cached.client.get(path, headers=AGENT)
    assert second.status == 200
    assert await second.read() == body
    assert second.headers["Cache-Status"].startswith("webproxy; hit; ttl=")
    assert int(second.headers["Age"]) >= 0
    assert second.headers["Content-Type"] == first.headers["Content-Type"]
    assert upstream_gets(sim, path.partition("?")[0]) == 1


async def test_age_counts_up_and_ttl_down_with_the_clock(
    sim: Sim, start_proxy: ProxyFactory, clock: ManualClock
) -> None:
    proxy = await start_proxy(settings_for(sim.url), clock)
    await sign_in(proxy, "10001")
    await proxy.client.get("/finesse/api/ChatConfig", headers=AGENT)
    clock.advance(42)
    hit = await proxy.client.get("/finesse/api/ChatConfig", headers=AGENT)
    assert hit.headers["Age"] == "42"
    assert hit.headers["Cache-Status"] == "webproxy; hit; ttl=258"


async def test_members_of_one_team_share_one_entry(cached: Proxy, sim: Sim) -> None:
    for agent in ("10001", "10002", "10003", "10000"):
        await sign_in(cached, agent)
        response = await cached.client.get(REASON_CODES, headers=basic(agent))
        assert response.status == 200
    assert upstream_gets(sim, "/finesse/api/TeamResource/5000/ReasonCodes") == 1


async def test_each_team_gets_its_own_entry(cached: Proxy, sim: Sim) -> None:
    bodies = {}
    for agent, team in (("10001", "5000"), ("11001", "5001")):
        await sign_in(cached, agent)
        path = f"/finesse/api/TeamResource/{team}/WrapUpReasons"
        response = await cached.client.get(path, headers=basic(agent))
        assert response.status == 200
        bodies[team] = await response.read()
    assert bodies["5000"] != bodies["5001"]


async def test_nocache_and_bypass_parameters_do_not_split_the_key(cached: Proxy, sim: Sim) -> None:
    await sign_in(cached, "10001")
    await cached.client.get(REASON_CODES + "&nocache=1700000000001", headers=AGENT)
    hit = await cached.client.get(
        "/finesse/api/TeamResource/5000/ReasonCodes?nocache=17&category=ALL", headers=AGENT
    )
    assert hit.headers["Cache-Status"].startswith("webproxy; hit")
    other = await cached.client.get(
        "/finesse/api/TeamResource/5000/ReasonCodes?category=NOT_READY", headers=AGENT
    )
    assert other.headers["Cache-Status"].startswith("webproxy; fwd=miss")


async def test_accept_is_part_of_the_key(cached: Proxy) -> None:
    await sign_in(cached, "10001")
    xml = {**AGENT, "Accept": "application/xml"}
    anything = {**AGENT, "Accept": "*/*"}
    await cached.client.get("/finesse/api/ChatConfig", headers=xml)
    response = await cached.client.get("/finesse/api/ChatConfig", headers=anything)
    assert response.headers["Cache-Status"].startswith("webproxy; fwd=miss")


async def test_bypass_fetches_from_finesse_and_replaces_the_entry(cached: Proxy, sim: Sim) -> None:
    await sign_in(cached, "10001")
    await cached.client.get("/finesse/api/ChatConfig", headers=AGENT)
    bypass = await cached.client.get(
        "/finesse/api/ChatConfig?bypassServerCache=true&nocache=5", headers=AGENT
    )
    assert bypass.status == 200
    assert bypass.headers["Cache-Status"] == "webproxy; fwd=bypass; fwd-status=200; stored"
    assert upstream_gets(sim, "/finesse/api/ChatConfig") == 2
    hit = await cached.client.get("/finesse/api/ChatConfig", headers=AGENT)
    assert hit.headers["Cache-Status"].startswith("webproxy; hit")
    assert upstream_gets(sim, "/finesse/api/ChatConfig") == 2


async def test_ranged_phone_books_are_cached_per_range(cached: Proxy, sim: Sim) -> None:
    await sign_in(cached, "10001")
    path = "/finesse/api/TeamResource/5000/PhoneBooks"
    ranged = {**AGENT, "Range": "objects=1-2"}
    first = await cached.client.get(path, headers=ranged)
    assert first.status == 206
    again = await cached.client.get(path, headers=ranged)
    assert again.status == 206
    assert again.headers["Cache-Status"].startswith("webproxy; hit")
    whole = await cached.client.get(path, headers=AGENT)
    assert whole.status == 200
    assert whole.headers["Cache-Status"].startswith("webproxy; fwd=miss")


async def test_head_and_non_cached_paths_are_never_served_from_cache(
    cached: Proxy, sim: Sim
) -> None:
    await sign_in(cached, "10001")
    for _ in range(2):
        head = await cached.client.head("/finesse/api/ChatConfig", headers=AGENT)
        assert "Cache-Status" not in head.headers
        user = await cached.client.get("/finesse/api/User/10001", headers=AGENT)
        assert "Cache-Status" not in user.headers
    assert upstream_gets(sim, "/finesse/api/User/10001") == 3  # sign-in included


async def test_unkeyed_client_headers_never_reach_finesse_on_a_cacheable_read(
    aiohttp_server: AiohttpServer, start_proxy: ProxyFactory
) -> None:
    async def chat_config(request: web.Request) -> web.Response:
        # an upstream that would let unkeyed headers shape the body, were they forwarded
        shaped = sorted(
            name for name in request.headers if name.lower() not in ("host", "content-length")
        )
        return web.Response(text=",".join(shaped), content_type="application/xml")

    app = web.Application()
    app.router.add_get("/finesse/api/ChatConfig", chat_config)
    upstream = await aiohttp_server(app)
    proxy = await start_proxy(settings_for(str(upstream.make_url("")).rstrip("/")))
    poison = {**AGENT, "X-Poison": "1", "Accept-Language": "fr", "Cookie": "x=1", "Accept": "*/*"}
    response = await proxy.client.get("/finesse/api/ChatConfig", headers=poison)
    assert response.status == 200
    forwarded = set((await response.text()).split(","))
    assert forwarded == {"Accept", "Authorization", "Via", "X-Forwarded-For", "X-Forwarded-Proto"}
