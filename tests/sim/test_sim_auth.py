"""Finesse's rules on who may read and write what, and its 401 ApiErrors bodies."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest

from tests.sim.conftest import SimClient

Auth = Callable[..., dict[str, str]]
NEW_CODE = (
    "<ReasonCode><category>NOT_READY</category><code>77</code><label>Nap</label>"
    "<forAll>true</forAll></ReasonCode>"
)


def api_error(text: str) -> tuple[str | None, str | None, str | None]:
    error = ET.fromstring(text).find("ApiError")
    assert error is not None
    return error.findtext("ErrorType"), error.findtext("ErrorMessage"), error.findtext("ErrorData")


async def test_agent_reads_own_user_with_roles_and_team(client: SimClient, auth: Auth) -> None:
    response = await client.get("/finesse/api/User/10001", headers=auth("10001"))
    assert response.status == 200
    assert response.content_type == "application/xml"
    user = ET.fromstring(await response.text())
    assert user.findtext("loginId") == "10001"
    assert user.findtext("loginName") == "agent10001"
    assert [r.text for r in user.iterfind("roles/role")] == ["Agent"]
    assert (user.findtext("teamId"), user.findtext("teamName")) == ("5000", "Sales")


async def test_login_name_works_as_basic_user_name(client: SimClient, auth: Auth) -> None:
    response = await client.get("/finesse/api/User/11002", headers=auth("agent11002"))
    assert response.status == 200


async def test_supervisor_user_lists_both_roles_and_supervised_teams(
    client: SimClient, auth: Auth
) -> None:
    response = await client.get("/finesse/api/User/12000", headers=auth("12000"))
    user = ET.fromstring(await response.text())
    assert [r.text for r in user.iterfind("roles/role")] == ["Agent", "Supervisor"]
    assert [t.findtext("id") for t in user.iterfind("teams/Team")] == ["5002"]


async def test_wrong_password_gets_authorization_failure_with_basic_challenge(
    client: SimClient, auth: Auth
) -> None:
    response = await client.get("/finesse/api/User/10001", headers=auth("10001", "nope"))
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="Cisco Finesse"'
    assert api_error(await response.text()) == ("Authorization Failure", "UNAUTHORIZED", "10001")


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer abc.def.ghi"}, {"Authorization": "Basic %%%"}],
    ids=["none", "bearer", "garbage"],
)
async def test_missing_or_unusable_credentials_get_401(
    client: SimClient, headers: dict[str, str]
) -> None:
    response = await client.get("/finesse/api/ChatConfig", headers=headers)
    assert response.status == 401
    assert api_error(await response.text())[:2] == ("Authorization Failure", "UNAUTHORIZED")


async def test_unknown_user_gets_401_naming_the_user(client: SimClient, auth: Auth) -> None:
    response = await client.get("/finesse/api/ChatConfig", headers=auth("99999"))
    assert response.status == 401
    assert api_error(await response.text())[2] == "99999"


async def test_agent_reading_another_user_gets_invalid_authorization_user_specified(
    client: SimClient, auth: Auth
) -> None:
    response = await client.get("/finesse/api/User/10002", headers=auth("10001"))
    assert response.status == 401
    assert api_error(await response.text())[0] == "Invalid Authorization User Specified"


@pytest.mark.parametrize(
    ("login", "target", "status"),
    [
        ("10000", "10003", 200),
        ("10000", "11001", 401),
        ("admin", "13002", 200),
        ("admin", "admin", 200),
        ("admin", "55555", 404),
    ],
    ids=["supervisor-own-team", "supervisor-other-team", "admin-agent", "admin-self", "unknown"],
)
async def test_who_may_read_a_user(
    client: SimClient, auth: Auth, login: str, target: str, status: int
) -> None:
    response = await client.get(f"/finesse/api/User/{target}", headers=auth(login))
    assert response.status == status


async def test_administrator_user_has_only_the_administrator_role(
    client: SimClient, auth: Auth
) -> None:
    response = await client.get("/finesse/api/User/admin", headers=auth("admin"))
    user = ET.fromstring(await response.text())
    assert [r.text for r in user.iterfind("roles/role")] == ["Administrator"]
    assert user.findtext("teamId") == ""


@pytest.mark.parametrize(
    ("login", "count"), [("admin", 17), ("11000", 4)], ids=["admin-all", "supervisor-team"]
)
async def test_users_list_for_supervisors_and_admins(
    client: SimClient, auth: Auth, login: str, count: int
) -> None:
    response = await client.get("/finesse/api/Users", headers=auth(login))
    assert len(ET.fromstring(await response.text()).findall("User")) == count


async def test_agents_may_not_list_users(client: SimClient, auth: Auth) -> None:
    response = await client.get("/finesse/api/Users", headers=auth("10001"))
    assert response.status == 401


@pytest.mark.parametrize("login", ["10001", "10000"], ids=["agent", "supervisor"])
async def test_config_writes_are_for_administrators_only(
    client: SimClient, auth: Auth, login: str
) -> None:
    response = await client.post("/finesse/api/ReasonCode", data=NEW_CODE, headers=auth(login))
    assert response.status == 401
    assert api_error(await response.text()) == ("Authorization Failure", "UNAUTHORIZED", login)
    listing = await client.get("/finesse/api/ReasonCodes?category=ALL", headers=auth("admin"))
    assert "Nap" not in await listing.text()


async def test_agents_read_a_reason_code_by_id_but_not_the_list(
    client: SimClient, auth: Auth
) -> None:
    one = await client.get("/finesse/api/ReasonCode/1", headers=auth("10001"))
    listing = await client.get("/finesse/api/ReasonCodes?category=ALL", headers=auth("10001"))
    assert one.status == 200
    assert listing.status == 401


async def test_unknown_objects_and_paths_get_404_api_errors(client: SimClient, auth: Auth) -> None:
    for path in ("/finesse/api/ReasonCode/999", "/finesse/api/NoSuchThing"):
        response = await client.get(path, headers=auth("admin"))
        assert response.status == 404
        assert api_error(await response.text())[0] == "Not Found"


async def test_unknown_paths_still_need_credentials(client: SimClient) -> None:
    response = await client.get("/finesse/api/NoSuchThing")
    assert response.status == 401


async def test_malformed_xml_gets_400_api_errors(client: SimClient, auth: Auth) -> None:
    response = await client.put(
        "/finesse/api/User/10001", data="<User><state>", headers=auth("10001")
    )
    assert response.status == 400
    assert api_error(await response.text())[0] == "Bad Request"


async def test_system_info_answers_without_credentials(client: SimClient) -> None:
    response = await client.get("/finesse/api/SystemInfo")
    assert response.status == 200
    assert ET.fromstring(await response.text()).findtext("status") == "IN_SERVICE"


@pytest.mark.parametrize(
    "path",
    ["/finesse/api/ChatConfig", "/finesse/api/ECCVariableConfig", "/finesse/api/MediaDomains"],
    ids=["chat", "ecc", "media-domains"],
)
async def test_global_config_is_readable_by_any_user(
    client: SimClient, auth: Auth, path: str
) -> None:
    response = await client.get(path, headers=auth("13003"))
    assert response.status == 200
    assert len(ET.fromstring(await response.text())) > 0


async def test_chat_config_is_written_by_admins_only(client: SimClient, auth: Auth) -> None:
    body = "<ChatConfig><primaryNode>https://chat-c.example.com</primaryNode></ChatConfig>"
    denied = await client.put("/finesse/api/ChatConfig", data=body, headers=auth("10000"))
    written = await client.put("/finesse/api/ChatConfig", data=body, headers=auth("admin"))
    read = await client.get("/finesse/api/ChatConfig", headers=auth("10001"))
    assert (denied.status, written.status) == (401, 200)
    config = ET.fromstring(await read.text())
    assert config.findtext("primaryNode") == "https://chat-c.example.com"
    assert config.findtext("secondaryNode") == "https://chat-b.example.com:5280"


async def test_client_log_is_post_only(client: SimClient, auth: Auth) -> None:
    path = "/finesse/api/User/10001/ClientLog"
    body = "<ClientLog><logData>hello</logData></ClientLog>"
    posted = await client.post(path, data=body, headers=auth("10001"))
    read = await client.get(path, headers=auth("10001"))
    other = await client.post(path, data=body, headers=auth("10002"))
    assert (posted.status, read.status, other.status) == (202, 405, 401)
    assert read.headers["Allow"] == "POST"
