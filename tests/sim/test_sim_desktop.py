"""Desktop calls: state changes (202, then visible), dialogs, teams, messages, media."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable

from pytest_aiohttp import AiohttpClient

from tests.sim.conftest import SimClient
from webproxy.sim import FinesseSimulator

Auth = Callable[..., dict[str, str]]


async def user_field(client: SimClient, auth: Auth, login: str, field: str) -> str | None:
    response = await client.get(f"/finesse/api/User/{login}", headers=auth(login))
    return ET.fromstring(await response.text()).findtext(field)


async def put_state(client: SimClient, headers: dict[str, str], login: str, body: str) -> int:
    response = await client.put(f"/finesse/api/User/{login}", data=body, headers=headers)
    return response.status


async def test_state_changes_are_accepted_and_show_in_later_reads(
    client: SimClient, auth: Auth
) -> None:
    login = "<User><state>LOGIN</state><extension>5551</extension></User>"
    response = await client.put("/finesse/api/User/10001", data=login, headers=auth("10001"))
    assert response.status == 202
    assert await response.read() == b""
    assert await user_field(client, auth, "10001", "state") == "NOT_READY"
    assert await user_field(client, auth, "10001", "extension") == "5551"
    ready = "<User><state>READY</state></User>"
    assert await put_state(client, auth("10001"), "10001", ready) == 202
    assert await user_field(client, auth, "10001", "state") == "READY"
    lunch = "<User><state>NOT_READY</state><reasonCodeId>2</reasonCodeId></User>"
    assert await put_state(client, auth("10001"), "10001", lunch) == 202
    assert await user_field(client, auth, "10001", "reasonCodeId") == "2"


async def test_missing_state_is_parameter_missing(client: SimClient, auth: Auth) -> None:
    body = "<User><extension>5551</extension></User>"
    response = await client.put("/finesse/api/User/10001", data=body, headers=auth("10001"))
    error = ET.fromstring(await response.text())
    assert response.status == 400
    assert error.findtext("ApiError/ErrorType") == "Parameter Missing"
    assert error.findtext("ApiError/ErrorData") == "state"


async def test_agents_change_only_their_own_state(client: SimClient, auth: Auth) -> None:
    body = "<User><state>READY</state></User>"
    assert await put_state(client, auth("10002"), "10001", body) == 401
    assert await user_field(client, auth, "10001", "state") == "LOGOUT"


async def test_supervisor_may_change_state_of_own_team_only(client: SimClient, auth: Auth) -> None:
    assert await put_state(client, auth("10001"), "10001", "<User><state>LOGIN</state></User>")
    logout = "<User><state>LOGOUT</state></User>"
    assert await put_state(client, auth("11000"), "10001", logout) == 401
    assert await put_state(client, auth("10000"), "10001", logout) == 202
    assert await user_field(client, auth, "10001", "state") == "LOGOUT"


async def test_mobile_agent_sign_in_shows_in_the_user(client: SimClient, auth: Auth) -> None:
    body = (
        "<User><state>LOGIN</state><extension>5551</extension><mobileAgent>"
        "<mode>NAILED_CONNECTION</mode><dialNumber>0155501234</dialNumber></mobileAgent></User>"
    )
    assert await put_state(client, auth("11002"), "11002", body) == 202
    assert await user_field(client, auth, "11002", "mobileAgent/dialNumber") == "0155501234"


async def test_team_shows_signed_in_members_to_its_supervisor(
    client: SimClient, auth: Auth
) -> None:
    await put_state(client, auth("10002"), "10002", "<User><state>LOGIN</state></User>")
    team = await client.get("/finesse/api/Team/5000", headers=auth("10000"))
    everyone = await client.get(
        "/finesse/api/Team/5000?includeLoggedOutAgents=true", headers=auth("10000")
    )
    assert [u.findtext("loginId") for u in ET.fromstring(await team.text()).iter("User")] == [
        "10002"
    ]
    assert len(ET.fromstring(await everyone.text()).findall("users/User")) == 4
    assert (await client.get("/finesse/api/Team/5000", headers=auth("11000"))).status == 401
    assert (await client.get("/finesse/api/Team/5000", headers=auth("10001"))).status == 401


async def test_make_call_creates_a_dialog_that_can_be_answered_and_dropped(
    client: SimClient, auth: Auth
) -> None:
    me = auth("12001")
    call = "<Dialog><requestedAction>MAKE_CALL</requestedAction><toAddress>5550199</toAddress></Dialog>"  # noqa: E501
    made = await client.post("/finesse/api/User/12001/Dialogs", data=call, headers=me)
    assert made.status == 202
    listing = ET.fromstring(
        await (await client.get("/finesse/api/User/12001/Dialogs", headers=me)).text()
    )
    dialog_id = listing.findtext("Dialog/id")
    assert listing.findtext("Dialog/toAddress") == "5550199"
    answer = "<Dialog><requestedAction>ANSWER</requestedAction><targetMediaAddress>20001</targetMediaAddress></Dialog>"  # noqa: E501
    path = f"/finesse/api/Dialog/{dialog_id}"
    assert (await client.put(path, data=answer, headers=me)).status == 202
    assert (
        ET.fromstring(await (await client.get(path, headers=me)).text()).findtext("state")
        == "ACTIVE"
    )
    assert (await client.get(path, headers=auth("12002"))).status == 401
    drop = "<Dialog><requestedAction>DROP</requestedAction></Dialog>"
    assert (await client.put(path, data=drop, headers=me)).status == 202
    assert (await client.get(path, headers=me)).status == 404


async def test_queue_statistics_follow_agent_states(client: SimClient, auth: Auth) -> None:
    await put_state(client, auth("10003"), "10003", "<User><state>LOGIN</state></User>")
    await put_state(client, auth("10003"), "10003", "<User><state>READY</state></User>")
    queues = await client.get("/finesse/api/User/10003/Queues", headers=auth("10003"))
    root = ET.fromstring(await queues.text())
    assert root.findtext("Queue/statistics/agentsReady") == "1"
    other = await client.get("/finesse/api/Queue/2", headers=auth("10003"))
    assert other.status == 401


async def test_team_messages_from_supervisors_reach_their_team(
    client: SimClient, auth: Auth
) -> None:
    body = "<TeamMessage><duration>600</duration><content>Storm</content><teams><team>5001</team></teams></TeamMessage>"  # noqa: E501
    denied = await client.post("/finesse/api/TeamMessage", data=body, headers=auth("11001"))
    wrong_team = await client.post("/finesse/api/TeamMessage", data=body, headers=auth("10000"))
    posted = await client.post("/finesse/api/TeamMessage", data=body, headers=auth("11000"))
    assert (denied.status, wrong_team.status, posted.status) == (401, 401, 200)
    seen = await client.get("/finesse/api/Team/5001/TeamMessages", headers=auth("11002"))
    assert ET.fromstring(await seen.text()).findtext("TeamMessage/content") == "Storm"
    message_path = posted.headers["Location"].split(str(client.port), 1)[1]
    assert (await client.delete(message_path, headers=auth("10000"))).status == 401
    assert (await client.delete(message_path, headers=auth("11000"))).status == 200
    assert (await client.get(message_path, headers=auth("admin"))).status == 404


async def test_media_state_changes_show_in_the_media_list(client: SimClient, auth: Auth) -> None:
    me = auth("13001")
    body = "<Media><state>LOGIN</state></Media>"
    assert (
        await client.put("/finesse/api/User/13001/Media/2", data=body, headers=me)
    ).status == 202
    listing = await client.get("/finesse/api/User/13001/Media", headers=me)
    states = {m.findtext("id"): m.findtext("state") for m in ET.fromstring(await listing.text())}
    assert states == {"2": "NOT_READY", "3": "LOGOUT"}


async def test_two_simulators_keep_separate_state(
    aiohttp_client: AiohttpClient, auth: Auth
) -> None:
    first = await aiohttp_client(FinesseSimulator().app)
    second = await aiohttp_client(FinesseSimulator().app)
    await put_state(first, auth("10001"), "10001", "<User><state>LOGIN</state></User>")
    assert await user_field(first, auth, "10001", "state") == "NOT_READY"
    assert await user_field(second, auth, "10001", "state") == "LOGOUT"
