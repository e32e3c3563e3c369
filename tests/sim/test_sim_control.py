"""/sim/stats counts, injected faults (status, hang, drop, latency) and the latency knob."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import Callable

import aiohttp
import pytest
from pytest_aiohttp import AiohttpClient, AiohttpServer

from tests.sim.conftest import SimClient
from webproxy.sim import Fault, FaultKind, FinesseSimulator

Auth = Callable[..., dict[str, str]]
CHAT = "/finesse/api/ChatConfig"


async def test_stats_count_requests_by_path_and_by_url_without_nocache(
    client: SimClient, auth: Auth
) -> None:
    agent = auth("10001")
    for stamp in ("1", "2"):
        await client.get(
            f"/finesse/api/TeamResource/5000/ReasonCodes?category=ALL&nocache={stamp}",
            headers=agent,
        )
    await client.get(f"{CHAT}?nocache=3", headers=agent)
    await client.post("/sim/echo", data=b"x")
    await client.get("/sim/faults")
    stats = await (await client.get("/sim/stats")).json()
    assert stats["total"] == 4
    assert stats["requests"] == {
        "GET /finesse/api/TeamResource/5000/ReasonCodes": 2,
        "GET /finesse/api/ChatConfig": 1,
        "POST /sim/echo": 1,
    }
    assert stats["urls"]["GET /finesse/api/TeamResource/5000/ReasonCodes?category=ALL"] == 2
    assert stats["urls"]["GET /finesse/api/ChatConfig"] == 1


async def test_stats_reset_over_http_and_in_python(
    sim: FinesseSimulator, client: SimClient, auth: Auth
) -> None:
    await client.get(f"{CHAT}?nocache=1&x=2", headers=auth("10001"))
    assert sim.stats() == {"GET /finesse/api/ChatConfig": 1}
    assert sim.url_stats() == {"GET /finesse/api/ChatConfig?x=2": 1}
    assert (await client.delete("/sim/stats")).status == 204
    assert (await (await client.get("/sim/stats")).json())["total"] == 0
    await client.get(CHAT, headers=auth("10001"))
    sim.reset_stats()
    assert sim.stats() == {}


async def test_status_fault_answers_api_errors_for_its_count(client: SimClient, auth: Auth) -> None:
    fault = {"path": CHAT, "kind": "status", "status": 503, "count": 2}
    assert (await client.post("/sim/faults", json=fault)).status == 201
    statuses = [(await client.get(CHAT, headers=auth("10001"))).status for _ in range(3)]
    assert statuses == [503, 503, 200]
    response = await client.get("/finesse/api/ECCVariableConfig", headers=auth("10001"))
    assert response.status == 200


async def test_status_fault_body_is_service_unavailable(
    sim: FinesseSimulator, client: SimClient, auth: Auth
) -> None:
    sim.inject(Fault("/finesse/api/", FaultKind.STATUS, status=503))
    response = await client.get(CHAT, headers=auth("10001"))
    error = ET.fromstring(await response.text())
    assert error.findtext("ApiError/ErrorType") == "Service Unavailable"
    sim.clear_faults()
    assert (await client.get(CHAT, headers=auth("10001"))).status == 200


async def test_status_fault_applies_to_notification_paths_too(
    sim: FinesseSimulator, client: SimClient
) -> None:
    sim.inject(Fault("/http-bind", FaultKind.STATUS, status=502, count=1))
    body = "<body rid='1' wait='1' xmlns='http://jabber.org/protocol/httpbind'/>"
    assert (await client.post("/http-bind/", data=body)).status == 502
    assert (await client.post("/http-bind/", data=body)).status == 200


async def test_faults_are_cleared_over_http(client: SimClient, auth: Auth) -> None:
    await client.post("/sim/faults", json={"path": "/finesse", "kind": "status", "status": 500})
    listed = await (await client.get("/sim/faults")).json()
    assert listed["faults"][0]["status"] == 500
    assert (await client.delete("/sim/faults")).status == 204
    assert (await client.get(CHAT, headers=auth("10001"))).status == 200


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "status"},
        {"path": "/x", "kind": "explode"},
        {"path": "/x", "kind": "status", "status": 99},
        [1],
    ],
    ids=["no-path", "bad-kind", "bad-status", "not-object"],
)
async def test_bad_fault_json_is_refused(client: SimClient, body: object) -> None:
    response = await client.post("/sim/faults", json=body)
    assert response.status == 400
    assert "error" in await response.json()


async def test_drop_fault_closes_the_connection_without_an_answer(
    sim: FinesseSimulator, client: SimClient, auth: Auth
) -> None:
    await client.post("/sim/faults", json={"path": CHAT, "kind": "drop"})
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await client.get(CHAT, headers=auth("10001"))
    assert sim.stats()["GET /finesse/api/ChatConfig"] >= 1
    sim.clear_faults()
    assert (await client.get(CHAT, headers=auth("10001"))).status == 200


async def test_drop_fault_with_a_count_of_one_is_retried_away_by_aiohttp_clients(
    sim: FinesseSimulator, client: SimClient, auth: Auth
) -> None:
    """A ClientSession retries an idempotent request once after a disconnect (RFC 9112
    9.3.1); aiohttp's TestClient does not."""
    sim.inject(Fault(CHAT, FaultKind.DROP, count=1))
    async with (
        aiohttp.ClientSession() as session,
        session.get(client.make_url(CHAT), headers=auth("10001")) as response,
    ):
        assert response.status == 200
    assert sim.stats() == {"GET /finesse/api/ChatConfig": 2}


async def test_hang_fault_never_answers(
    sim: FinesseSimulator, client: SimClient, auth: Auth
) -> None:
    sim.inject(Fault(CHAT, FaultKind.HANG, count=1))
    with pytest.raises(TimeoutError):
        await client.get(CHAT, headers=auth("10001"), timeout=aiohttp.ClientTimeout(total=0.3))
    assert (await client.get(CHAT, headers=auth("10001"))).status == 200


async def test_server_with_a_hanging_request_shuts_down_promptly(
    aiohttp_server: AiohttpServer, auth: Auth
) -> None:
    sim = FinesseSimulator()
    sim.inject(Fault(CHAT, FaultKind.HANG))
    server = await aiohttp_server(sim.app)
    async with aiohttp.ClientSession() as session:
        request = asyncio.create_task(session.get(server.make_url(CHAT), headers=auth("10001")))
        async with asyncio.timeout(5):
            await sim.wait_for_requests(1)
            await server.close()
            with pytest.raises(aiohttp.ClientError):
                await request


async def test_latency_fault_delays_the_answer(
    sim: FinesseSimulator, client: SimClient, auth: Auth
) -> None:
    sim.inject(Fault(CHAT, FaultKind.LATENCY, seconds=0.3, count=1))
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert (await client.get(CHAT, headers=auth("10001"))).status == 200
    assert loop.time() - started >= 0.3


async def test_simulator_latency_delays_finesse_answers_only(
    aiohttp_client: AiohttpClient, auth: Auth
) -> None:
    sim = FinesseSimulator(latency=0.25)
    client = await aiohttp_client(sim.app)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await client.get("/sim/echo")
    echo_time = loop.time() - started
    started = loop.time()
    assert (await client.get(CHAT, headers=auth("10001"))).status == 200
    assert loop.time() - started >= 0.25 > echo_time
    sim.latency = 0.0
    started = loop.time()
    await client.get(CHAT, headers=auth("10001"))
    assert loop.time() - started < 0.25
