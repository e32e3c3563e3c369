"""The cache and Finesse agree on which resource a request names and who is asking."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from tests.conftest import ADMIN, Proxy, ProxyFactory, Sim, basic, settings_for
from tests.functional.finesse import sign_in

XML = {"Content-Type": "application/xml"}
CODES = "/finesse/api/TeamResource/5000/ReasonCodes?category=ALL"


async def cached_codes(proxy: Proxy) -> None:
    await sign_in(proxy, "10001")
    first = await proxy.client.get(CODES, headers=basic("10001"))
    assert first.headers["Cache-Status"].endswith("stored")
    again = await proxy.client.get(CODES, headers=basic("10001"))
    assert again.headers["Cache-Status"].startswith("webproxy; hit")


@pytest.mark.parametrize(
    "team", ["+5000", "05000", "+05000", "5000;jsessionid=A1", "%35000", "x/../5000"]
)
async def test_a_write_to_any_spelling_of_a_team_purges_that_team(
    sim: Sim, start_proxy: ProxyFactory, store_section: dict[str, object], team: str
) -> None:
    proxy = await start_proxy(settings_for(sim.url, store=store_section))
    await cached_codes(proxy)
    write = await proxy.client.put(
        f"/finesse/api/Team/{team}/ReasonCodes?category=NOT_READY",
        data="<ReasonCodes></ReasonCodes>",
        headers={**ADMIN, **XML},
    )
    assert write.status == 200  # Finesse (the simulator, as Tomcat) read it as team 5000
    after = await proxy.client.get(CODES, headers=basic("10001"))
    assert after.headers["Cache-Status"].startswith("webproxy; fwd=miss")


@dataclass
class Upstream:
    """A small Finesse whose users and teams a test changes; it records what it is sent."""

    url: str = ""
    teams: dict[str, str] = field(default_factory=lambda: {"6021": "7000", "2001": "8000"})
    login_names: dict[str, str] = field(default_factory=lambda: {"6021": "2001"})
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)


UPSTREAM = web.AppKey("upstream", Upstream)
PASSWORDS = {"6021": "pw", "2001": "pw"}


def caller(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Basic "):
        return None
    user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
    return user if PASSWORDS.get(user) == password else None


async def user(request: web.Request) -> web.Response:
    state = request.app[UPSTREAM]
    who, wanted = caller(request), request.match_info["id"]
    if who is None or (who != wanted and who != "2001"):  # 2001 supervises everyone
        return web.Response(status=401, text="<ApiErrors/>")
    name = state.login_names.get(wanted, wanted)
    body = (
        f"<User><loginId>{wanted}</loginId><loginName>{name}</loginName><roles>"
        f"<role>{'Supervisor' if wanted == '2001' else 'Agent'}</role></roles>"
        f"<teamId>{state.teams[wanted]}</teamId></User>"
    )
    return web.Response(text=body, content_type="application/xml")


async def team_resource(request: web.Request) -> web.Response:
    state = request.app[UPSTREAM]
    state.seen.append((request.method, request.raw_path, dict(request.headers)))
    who = caller(request)
    team = request.match_info["team"]
    if who is None or state.teams.get(who) != team:
        return web.Response(status=401, text="<ApiErrors>Invalid Authorization</ApiErrors>")
    return web.Response(
        text=f"<ReasonCodes team='{team}' query='{request.rel_url.raw_query_string}'/>"
    )


async def anything(request: web.Request) -> web.Response:
    request.app[UPSTREAM].seen.append((request.method, request.raw_path, dict(request.headers)))
    return web.Response(text="ok")


@pytest.fixture
async def upstream(aiohttp_server: AiohttpServer) -> Upstream:
    state = Upstream()
    app = web.Application()
    app[UPSTREAM] = state
    app.router.add_get("/finesse/api/User/{id}", user)
    app.router.add_get("/finesse/api/TeamResource/{team}/ReasonCodes", team_resource)
    app.router.add_route("*", "/{tail:.*}", anything)
    server = await aiohttp_server(app)
    state.url = str(server.make_url("")).rstrip("/")
    return state


@pytest.fixture
async def proxy(upstream: Upstream, start_proxy: ProxyFactory) -> Proxy:
    return await start_proxy(settings_for(upstream.url))


AGENT = basic("6021", "pw")
SUPERVISOR = basic("2001", "pw")
TEAM_7000 = "/finesse/api/TeamResource/7000/ReasonCodes"


async def test_queries_finesse_reads_apart_never_share_an_entry(proxy: Proxy) -> None:
    await proxy.client.get("/finesse/api/User/6021", headers=AGENT)
    one = await proxy.client.get(f"{TEAM_7000}?category=X%2526Y", headers=AGENT)
    other = await proxy.client.get(f"{TEAM_7000}?category=X%26Y", headers=AGENT)
    assert await one.text() != await other.text()
    again = await proxy.client.get(f"{TEAM_7000}?category=X%26Y", headers=AGENT)
    assert again.headers["Cache-Status"].startswith("webproxy; hit")
    assert await again.text() == await other.text()


async def test_two_authorization_headers_are_refused_before_anything_is_sent(
    proxy: Proxy, upstream: Upstream
) -> None:
    headers = [("Authorization", AGENT["Authorization"])] * 2
    for target in (TEAM_7000, "/finesse/api/Dialogs", "/finesse/api/User/6021"):
        answer = await proxy.client.get(target, headers=headers)
        assert answer.status == 400
        joined = {"Authorization": f"{AGENT['Authorization']}, {SUPERVISOR['Authorization']}"}
        assert (await proxy.client.get(target, headers=joined)).status == 400
    assert upstream.seen == []


@pytest.mark.parametrize(
    "override",
    [
        ("X-HTTP-Method-Override", "PUT"),
        ("X-HTTP-Method", "DELETE"),
        ("X-Method-Override", "PATCH"),
        ("X-Original-URL", "/finesse/api/Team/7000/ReasonCodes"),
        ("X-Rewrite-URL", "/finesse/api/ReasonCode/1"),
    ],
    ids=lambda pair: pair[0],
)
async def test_method_and_url_overrides_never_reach_finesse(
    proxy: Proxy, upstream: Upstream, override: tuple[str, str]
) -> None:
    await proxy.client.get("/finesse/api/Dialogs", headers={**AGENT, override[0]: override[1]})
    headers = {**AGENT, override[0]: override[1]}
    await proxy.client.post("/finesse/api/Media", data=b"x", headers=headers)
    assert len(upstream.seen) == 2
    for _, _, headers in upstream.seen:
        assert override[0].lower() not in {name.lower() for name in headers}


async def test_an_agent_moved_to_another_team_stops_getting_the_old_teams_entries(
    proxy: Proxy, upstream: Upstream
) -> None:
    await proxy.client.get("/finesse/api/User/6021", headers=AGENT)
    stored = await proxy.client.get(TEAM_7000, headers=AGENT)
    assert stored.status == 200  # cached for team 7000, and 6021 approved for it
    upstream.teams["6021"] = "9000"  # moved in Finesse's admin
    await proxy.client.get("/finesse/api/User/6021", headers=AGENT)  # signs in again
    old = await proxy.client.get(TEAM_7000, headers=AGENT)
    assert old.status == 401  # Finesse's answer, not the cached team 7000 body


async def test_a_supervisor_reading_a_user_named_after_them_binds_nothing(
    proxy: Proxy, upstream: Upstream
) -> None:
    await proxy.client.get("/finesse/api/User/6021", headers=AGENT)
    assert (await proxy.client.get(TEAM_7000, headers=AGENT)).status == 200  # team 7000 cached
    # 6021's loginName is "2001": the supervisor's id. Finesse lets 2001 read User/6021.
    read = await proxy.client.get("/finesse/api/User/6021", headers=SUPERVISOR)
    assert read.status == 200
    answer = await proxy.client.get(TEAM_7000, headers=SUPERVISOR)
    assert answer.status == 401  # forwarded: Finesse refuses team 7000 to 2001


async def raw_exchange(proxy: Proxy, target: str, authorization: str | None) -> bytes:
    """Send a request line as written (a client library would drop a `#` part)."""
    server = proxy.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    auth = f"Authorization: {authorization}\r\n" if authorization else ""
    writer.write(f"GET {target} HTTP/1.1\r\nHost: f\r\n{auth}Connection: close\r\n\r\n".encode())
    try:
        async with asyncio.timeout(5):
            return await reader.read()
    finally:
        writer.close()


@pytest.mark.parametrize(
    "target",
    [
        "/finesse/api/TeamResource/7000/ReasonCodes#/../../8000/ReasonCodes",
        "/finesse/api/SystemInfo#/../ChatConfig",
        "/finesse/api/ChatConfig#x",
    ],
)
async def test_a_target_with_a_fragment_is_refused_before_anything_is_sent(
    proxy: Proxy, upstream: Upstream, target: str
) -> None:
    answer = await raw_exchange(proxy, target, AGENT["Authorization"])
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert upstream.seen == []


@pytest.mark.parametrize("odd", ["{", "}", "|", "^", "`", "[", "]", "<", ">", '"'])
async def test_a_target_tomcat_refuses_is_never_answered_from_cache(
    proxy: Proxy, upstream: Upstream, odd: str
) -> None:
    await proxy.client.get("/finesse/api/User/6021", headers=AGENT)
    await proxy.client.get(TEAM_7000, headers=AGENT)
    assert (
        (await proxy.client.get(TEAM_7000, headers=AGENT))
        .headers["Cache-Status"]
        .startswith("webproxy; hit")
    )
    seen = len(upstream.seen)
    answer = await raw_exchange(
        proxy, f"/finesse/api/x{odd}/../TeamResource/7000/ReasonCodes", AGENT["Authorization"]
    )
    assert b"webproxy; hit" not in answer  # forwarded: Finesse (Tomcat) answers it, 400
    assert len(upstream.seen) == seen + 1
