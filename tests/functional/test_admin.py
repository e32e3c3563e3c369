"""The admin listener: cache clear and its guard, stats, metrics, health -- against both stores."""

from __future__ import annotations

import asyncio
import base64
import socket

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pytest_aiohttp import AiohttpServer

from tests.conftest import AGENT, Proxy, ProxyFactory, Sim, basic, settings_for
from tests.functional.finesse import sign_in
from webproxy.app import make_admin_app
from webproxy.appkeys import services_key
from webproxy.cache.rules import Resource, Scope
from webproxy.config import Secret

CHAT = "/finesse/api/ChatConfig"
CODES = "/finesse/api/TeamResource/{team}/ReasonCodes?category=ALL"
#: What the `warm` fixture cached: path -> the agent who reads it.
WARM = {CODES.format(team="5000"): "10001", CODES.format(team="5001"): "11001", CHAT: "10001"}
TOKEN = "s3cret"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def warm_up(proxy: Proxy) -> Proxy:
    """Sign in an agent of team 5000 and one of 5001; cache both teams' codes and ChatConfig."""
    for agent in ("10001", "11001"):
        await sign_in(proxy, agent)
    for path, agent in WARM.items():
        response = await proxy.client.get(path, headers=basic(agent))
        assert response.headers["Cache-Status"].endswith("stored")
    return proxy


@pytest.fixture
async def warm(sim: Sim, start_proxy: ProxyFactory, store_section: dict[str, object]) -> Proxy:
    return await warm_up(await start_proxy(settings_for(sim.url, store=store_section)))


@pytest.fixture
async def guarded(sim: Sim, start_proxy: ProxyFactory, store_section: dict[str, object]) -> Proxy:
    """Warm, with an admin token configured."""
    settings = settings_for(sim.url, store=store_section, admin={"token": Secret(TOKEN)})
    return await warm_up(await start_proxy(settings))


async def hit_or_miss(proxy: Proxy, path: str) -> str:
    """`hit` or `miss`: how the proxy answered the agent who warmed `path`.

    A miss is any answer fetched from Finesse: after a full clear, the proxy has also
    forgotten who the agent is, so Finesse is asked as for an unknown credential.
    """
    response = await proxy.client.get(path, headers=basic(WARM[path]))
    assert response.status == 200
    status = response.headers["Cache-Status"]
    if status.startswith("webproxy; hit"):
        return "hit"
    assert status.startswith(("webproxy; fwd=miss", "webproxy; fwd=uri-miss")), status
    return "miss"


async def outcomes(proxy: Proxy) -> dict[str, str]:
    return {path: await hit_or_miss(proxy, path) for path in WARM}


@pytest.mark.parametrize(
    ("query", "cleared", "missed"),
    [
        ({}, {"scope": "all"}, set(WARM)),
        ({"team": "5000"}, {"scope": "team", "team": "5000"}, {CODES.format(team="5000")}),
        ({"resource": "ChatConfig"}, {"scope": "resource", "resource": "ChatConfig"}, {CHAT}),
        (
            {"resource": "TeamResource"},
            {"scope": "resource", "resource": "TeamResource"},
            {CODES.format(team="5000"), CODES.format(team="5001")},
        ),
    ],
    ids=["everything", "one-team", "one-global-resource", "every-team"],
)
async def test_a_loopback_clear_without_a_token_empties_exactly_the_scope_it_names(
    warm: Proxy, query: dict[str, str], cleared: dict[str, str], missed: set[str]
) -> None:
    response = await warm.admin.post("/admin/cache/clear", params=query)
    assert response.status == 200
    assert await response.json() == {"cleared": cleared}
    expected = {path: "miss" if path in missed else "hit" for path in WARM}
    assert await outcomes(warm) == expected


@pytest.mark.parametrize(
    "query",
    [{"team": "bad id"}, {"resource": "Nope"}, {"team": "5000", "resource": "ChatConfig"}],
    ids=["team-with-a-space", "unknown-resource", "team-with-a-global-resource"],
)
async def test_a_clear_with_a_bad_scope_is_refused_and_clears_nothing(
    warm: Proxy, query: dict[str, str]
) -> None:
    response = await warm.admin.post("/admin/cache/clear", params=query)
    assert response.status == 400
    assert "error" in await response.json()
    assert set((await outcomes(warm)).values()) == {"hit"}


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong", f"Bearer {TOKEN}x", TOKEN, f"Basic {TOKEN}"],
    ids=["none", "wrong-token", "longer-token", "token-without-bearer", "basic-scheme"],
)
async def test_a_clear_without_the_configured_token_is_401_and_clears_nothing(
    guarded: Proxy, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await guarded.admin.post("/admin/cache/clear", headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert set((await outcomes(guarded)).values()) == {"hit"}


async def test_a_clear_with_the_configured_token_clears(guarded: Proxy) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    response = await guarded.admin.post("/admin/cache/clear", headers=headers)
    assert response.status == 200
    assert await response.json() == {"cleared": {"scope": "all"}}
    assert set((await outcomes(guarded)).values()) == {"miss"}


def non_loopback_address() -> str:
    """An address of this machine that is not loopback (the one its default route uses)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent over UDP connect
        except OSError as exc:
            pytest.skip(f"no route off this machine, so no non-loopback address: {exc}")
        address = str(probe.getsockname()[0])
    if address.startswith("127."):
        pytest.skip("this machine's only IPv4 address is loopback")
    return address


async def test_without_a_token_a_clear_from_beyond_loopback_is_401_and_clears_nothing(
    warm: Proxy, aiohttp_server: AiohttpServer
) -> None:
    address = non_loopback_address()
    admin = await aiohttp_server(make_admin_app(warm.app), host=address)
    async with aiohttp.ClientSession() as session:
        response = await session.post(admin.make_url("/admin/cache/clear"))
        assert response.status == 401
    assert set((await outcomes(warm)).values()) == {"hit"}


async def scripted_workload(proxy: Proxy) -> None:
    """ChatConfig: 1 miss, 2 hits, 1 bypass, 1 unauthorized; team 5000's codes: 1 miss."""
    await sign_in(proxy, "10001")
    for _ in range(3):
        assert (await proxy.client.get(CHAT, headers=AGENT)).status == 200
    bypass = await proxy.client.get(CHAT + "?bypassServerCache=true", headers=AGENT)
    assert bypass.headers["Cache-Status"].startswith("webproxy; fwd=bypass")
    stranger = await proxy.client.get(CHAT, headers=basic("10002"))  # never signed in
    assert stranger.headers["Cache-Status"].endswith("detail=unauthorized"), stranger.headers
    assert (await proxy.client.get(CODES.format(team="5000"), headers=AGENT)).status == 200


@pytest.fixture
async def worked(sim: Sim, start_proxy: ProxyFactory, store_section: dict[str, object]) -> Proxy:
    proxy = await start_proxy(settings_for(sim.url, store=store_section))
    await scripted_workload(proxy)
    return proxy


async def test_cache_stats_count_the_scripted_workload_exactly(worked: Proxy) -> None:
    response = await worked.admin.get("/admin/cache")
    assert response.status == 200
    stats = await response.json()
    resources = stats["resources"]
    assert stats["entries"] == 2
    assert stats["hits"] == 2
    assert stats["misses"] == 4  # every lookup that was not a hit: 3 ChatConfig, 1 team
    assert stats["hit_ratio"] == round(2 / 6, 4)
    assert resources["ChatConfig"]["entries"] == 1
    assert resources["ChatConfig"]["lookups"] == {
        "hit": 2, "miss": 1, "bypass": 1, "unauthorized": 1,
    }  # fmt: skip
    assert resources["TeamResource"]["entries"] == 1
    assert resources["TeamResource"]["lookups"] == {"miss": 1}
    assert resources["ECCVariableConfig"] == {
        "cache": "rest", "entries": 0, "bytes": 0, "lookups": {},
    }  # fmt: skip
    assert stats["caches"]["rest"] == {
        "entries": 2,
        "bytes": stats["bytes"],
        "hits": 2,
        "misses": 4,
    }
    assert stats["bytes"] == sum(r["bytes"] for r in resources.values())
    assert resources["ChatConfig"]["bytes"] > 0


async def test_cache_stats_show_nothing_stored_after_a_clear(worked: Proxy) -> None:
    assert (await worked.admin.post("/admin/cache/clear")).status == 200
    stats = await (await worked.admin.get("/admin/cache")).json()
    assert (stats["entries"], stats["bytes"], stats["hits"]) == (0, 0, 2)
    assert all(r["entries"] == 0 and r["bytes"] == 0 for r in stats["resources"].values())


async def scrape(proxy: Proxy) -> tuple[str, Samples]:
    response = await proxy.admin.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = await response.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name, frozenset(sample.labels.items())] = sample.value
    return text, samples


def sample(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def total(samples: Samples, name: str) -> float:
    """The sum of one metric's samples over every label value."""
    return sum(value for (sample_name, _), value in samples.items() if sample_name == name)


async def test_a_scrape_counts_lookups_and_entries_by_resource(worked: Proxy) -> None:
    _, samples = await scrape(worked)
    lookups = "webproxy_cache_lookups_total"
    assert sample(samples, lookups, cache="rest", resource="ChatConfig", result="hit") == 2
    assert sample(samples, lookups, cache="rest", resource="ChatConfig", result="miss") == 1
    assert sample(samples, lookups, cache="rest", resource="ChatConfig", result="bypass") == 1
    assert sample(samples, lookups, cache="rest", resource="ChatConfig", result="unauthorized") == 1
    assert sample(samples, lookups, cache="rest", resource="TeamResource", result="miss") == 1
    assert sample(samples, lookups, cache="rest", resource="TeamResource", result="hit") is None
    assert sample(samples, "webproxy_cache_entries", cache="rest", resource="ChatConfig") == 1
    assert sample(samples, "webproxy_cache_entries", cache="rest", resource="TeamResource") == 1
    assert sample(samples, "webproxy_cache_entries", cache="rest", resource="MediaDomain") == 0
    registry = worked.app[services_key].metrics.registry
    assert (
        registry.get_sample_value(
            lookups, {"cache": "rest", "resource": "ChatConfig", "result": "hit"}
        )
        == 2
    )


async def test_a_scrape_counts_requests_upstream_fetches_and_identities(worked: Proxy) -> None:
    _, samples = await scrape(worked)
    assert total(samples, "webproxy_requests_total") == 7  # everything the workload sent
    # sign-in, ChatConfig's miss, bypass and unauthorized read, team 5000's miss
    assert total(samples, "webproxy_upstream_request_duration_seconds_count") == 5
    assert sample(samples, "webproxy_identities") == 1  # 10002 was approved, never signed in


async def test_a_scrape_after_an_admin_clear_counts_the_purge_and_no_entries(
    worked: Proxy,
) -> None:
    assert (await worked.admin.post("/admin/cache/clear", params={"team": "5000"})).status == 200
    assert (await worked.admin.post("/admin/cache/clear")).status == 200
    _, samples = await scrape(worked)
    assert sample(samples, "webproxy_cache_purges_total", reason="admin") == 2
    assert sample(samples, "webproxy_cache_purges_total", reason="write") is None
    for resource in ("ChatConfig", "TeamResource"):
        assert sample(samples, "webproxy_cache_entries", cache="rest", resource=resource) == 0
        assert sample(samples, "webproxy_cache_bytes", cache="rest", resource=resource) == 0


async def test_no_label_of_a_scrape_holds_a_credential_a_user_id_or_a_team_id(
    worked: Proxy,
) -> None:
    assert (await worked.admin.post("/admin/cache/clear", params={"team": "5000"})).status == 200
    text, samples = await scrape(worked)
    authorization = AGENT["Authorization"]
    token = authorization.removeprefix("Basic ")
    secrets = (authorization, token, base64.b64decode(token).decode(), "10001", "10002", "5000")
    values = {value for _, labels in samples for _, value in labels}
    assert values  # the scrape had labelled samples to look at
    assert not [value for value in values for secret in secrets if secret in value]
    assert token not in text


async def test_healthz_answers_200(warm: Proxy) -> None:
    response = await warm.admin.get("/healthz")
    assert response.status == 200


async def test_readyz_answers_200_while_finesse_and_the_store_answer(warm: Proxy) -> None:
    response = await warm.admin.get("/readyz")
    assert response.status == 200
    assert (await response.json())["status"] == "ready"


async def test_a_team_clear_forgets_that_teams_identities_and_no_others(warm: Proxy) -> None:
    identities = warm.app[services_key].identities
    team_a, team_b = basic("10001")["Authorization"], basic("11001")["Authorization"]
    chat = Scope(Resource.CHAT_CONFIG)
    cleared = await warm.admin.post("/admin/cache/clear", params={"team": "5000"})
    assert cleared.status == 200
    forgotten = identities.grants(team_a, chat)
    assert forgotten is None or forgotten.identity is None  # an approval may remain
    kept = identities.grants(team_b, chat)
    assert kept is not None and kept.identity is not None


async def test_a_page_in_a_browser_cannot_clear_without_a_token(warm: Proxy) -> None:
    response = await warm.admin.post(
        "/admin/cache/clear", headers={"Origin": "https://evil.example"}
    )
    assert response.status == 403
    assert await hit_or_miss(warm, CHAT) == "hit"


async def test_a_token_that_is_not_utf8_is_refused_cleanly(guarded: Proxy) -> None:
    server = guarded.admin.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(
            b"POST /admin/cache/clear HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
            b"Authorization: Bearer \xff\xfe\r\n\r\n"
        )
        async with asyncio.timeout(5):
            status_line = await reader.readline()
    finally:
        writer.close()
    assert status_line.split()[1] == b"401"
