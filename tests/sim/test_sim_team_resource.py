"""TeamResource: per-team answers, who may read them, and writes that show in later reads."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest

from tests.sim.conftest import SimClient

Auth = Callable[..., dict[str, str]]
AGENT_OF = {"5000": "10001", "5001": "11001", "5002": "12002", "5003": "13003"}
COLLECTIONS = [
    "ReasonCodes?category=ALL",
    "WrapUpReasons",
    "PhoneBooks",
    "Workflows",
    "MediaPropertiesLayouts",
    "LayoutConfig",
]


async def team_read(client: SimClient, auth: Auth, team: str, collection: str) -> ET.Element:
    path = f"/finesse/api/TeamResource/{team}/{collection}"
    response = await client.get(path, headers=auth(AGENT_OF[team]))
    assert response.status == 200, await response.text()
    return ET.fromstring(await response.text())


async def reason_labels(client: SimClient, auth: Auth, team: str) -> set[str]:
    root = await team_read(client, auth, team, "ReasonCodes?category=NOT_READY")
    return {rc.findtext("label") or "" for rc in root.iter("ReasonCode")}


@pytest.mark.parametrize("collection", COLLECTIONS)
async def test_each_team_gets_its_own_answer(
    client: SimClient, auth: Auth, collection: str
) -> None:
    bodies = [
        ET.tostring(await team_read(client, auth, team, collection)) for team in ("5000", "5001")
    ]
    assert bodies[0] != bodies[1]


async def test_global_items_appear_in_every_team_and_team_items_in_one(
    client: SimClient, auth: Auth
) -> None:
    labels = {team: await reason_labels(client, auth, team) for team in AGENT_OF}
    assert all({"Break", "Lunch"} <= found for found in labels.values())
    assert "Sales huddle" in labels["5000"]
    assert all("Sales huddle" not in labels[t] for t in ("5001", "5002", "5003"))


@pytest.mark.parametrize(
    ("login", "team", "status", "error_type"),
    [
        ("10001", "5001", 401, "Invalid Authorization"),
        ("11000", "5000", 401, "Invalid Authorization"),
        ("admin", "5000", 401, "Authorization Failure"),
        ("10001", "5999", 404, "Not Found"),
    ],
    ids=["agent-other-team", "supervisor-other-team", "admin", "unknown-team"],
)
async def test_team_resource_is_for_members_only(
    client: SimClient, auth: Auth, login: str, team: str, status: int, error_type: str
) -> None:
    response = await client.get(
        f"/finesse/api/TeamResource/{team}/WrapUpReasons", headers=auth(login)
    )
    assert response.status == status
    assert ET.fromstring(await response.text()).findtext("ApiError/ErrorType") == error_type


async def test_supervisor_reads_own_team_resource(client: SimClient, auth: Auth) -> None:
    response = await client.get("/finesse/api/TeamResource/5002/Workflows", headers=auth("12000"))
    assert response.status == 200


async def test_reason_codes_need_a_category(client: SimClient, auth: Auth) -> None:
    response = await client.get("/finesse/api/TeamResource/5000/ReasonCodes", headers=auth("10001"))
    assert response.status == 400
    assert (
        ET.fromstring(await response.text()).findtext("ApiError/ErrorType") == "Parameter Missing"
    )


async def test_new_global_reason_code_shows_in_every_team(client: SimClient, auth: Auth) -> None:
    body = (
        "<ReasonCode><category>NOT_READY</category><code>42</code><label>Fire drill</label>"
        "<forAll>true</forAll></ReasonCode>"
    )
    response = await client.post("/finesse/api/ReasonCode", data=body, headers=auth("admin"))
    assert response.status == 200
    assert await response.read() == b""
    location = response.headers["Location"]
    assert location.startswith(f"http://{client.host}:{client.port}/finesse/api/ReasonCode/")
    created = await client.get(location.split(str(client.port), 1)[1], headers=auth("10001"))
    assert ET.fromstring(await created.text()).findtext("label") == "Fire drill"
    for team in AGENT_OF:
        assert "Fire drill" in await reason_labels(client, auth, team)


async def test_team_assignment_shows_only_in_that_team(client: SimClient, auth: Auth) -> None:
    admin = auth("admin")
    body = (
        "<ReasonCode><category>NOT_READY</category><code>43</code><label>Side project</label>"
        "<forAll>false</forAll></ReasonCode>"
    )
    created = await client.post("/finesse/api/ReasonCode", data=body, headers=admin)
    uri = created.headers["Location"].split("//", 1)[1].split("/", 1)[1]
    assigned = f"<ReasonCodes><ReasonCode><uri>/{uri}</uri></ReasonCode></ReasonCodes>"
    path = "/finesse/api/Team/5002/ReasonCodes?category=NOT_READY"
    put = await client.put(path, data=assigned, headers=admin)
    assert put.status == 200
    listed = ET.fromstring(await (await client.get(path, headers=admin)).text())
    assert [rc.findtext("label") for rc in listed.iter("ReasonCode")] == ["Side project"]
    assert "Side project" in await reason_labels(client, auth, "5002")
    assert "Side project" not in await reason_labels(client, auth, "5000")
    assert "Billing huddle" not in await reason_labels(client, auth, "5002")
    logout = await team_read(client, auth, "5002", "ReasonCodes?category=LOGOUT")
    assert "Billing early leave" in {rc.findtext("label") for rc in logout.iter("ReasonCode")}


async def test_reason_code_updates_and_deletes_reach_team_resource(
    client: SimClient, auth: Auth
) -> None:
    admin = auth("admin")
    label = "<ReasonCode><label>Sales standup</label></ReasonCode>"
    assert (await client.put("/finesse/api/ReasonCode/8", data=label, headers=admin)).status == 200
    assert "Sales standup" in await reason_labels(client, auth, "5000")
    assert (await client.delete("/finesse/api/ReasonCode/8", headers=admin)).status == 200
    assert "Sales standup" not in await reason_labels(client, auth, "5000")
    gone = await client.get("/finesse/api/Team/5000/ReasonCodes?category=NOT_READY", headers=admin)
    assert "/ReasonCode/8<" not in await gone.text()


async def test_duplicate_reason_code_is_refused(client: SimClient, auth: Auth) -> None:
    body = (
        "<ReasonCode><category>NOT_READY</category><code>1</code><label>Again</label>"
        "<forAll>true</forAll></ReasonCode>"
    )
    response = await client.post("/finesse/api/ReasonCode", data=body, headers=auth("admin"))
    assert response.status == 400


async def test_missing_field_on_create_is_parameter_missing(client: SimClient, auth: Auth) -> None:
    body = "<WrapUpReason><label>Half</label></WrapUpReason>"
    response = await client.post("/finesse/api/WrapUpReason", data=body, headers=auth("admin"))
    error = ET.fromstring(await response.text())
    assert response.status == 400
    assert error.findtext("ApiError/ErrorType") == "Parameter Missing"
    assert error.findtext("ApiError/ErrorData") == "forAll"


async def test_new_global_phone_book_and_contact_reach_every_team(
    client: SimClient, auth: Auth
) -> None:
    admin = auth("admin")
    book = "<PhoneBook><name>Vendors</name><type>GLOBAL</type></PhoneBook>"
    created = await client.post("/finesse/api/PhoneBook", data=book, headers=admin)
    book_path = created.headers["Location"].split("/finesse/api/", 1)[1]
    contact = "<Contact><firstName>Acme</firstName><phoneNumber>5550100</phoneNumber></Contact>"
    added = await client.post(f"/finesse/api/{book_path}/Contact", data=contact, headers=admin)
    assert added.status == 200
    for team in ("5001", "5003"):
        root = await team_read(client, auth, team, "PhoneBooks")
        assert "5550100" in {c.findtext("phoneNumber") for c in root.iter("Contact")}
    listed = await client.get(f"/finesse/api/{book_path}/Contacts", headers=admin)
    assert len(ET.fromstring(await listed.text()).findall("Contact")) == 1


async def test_workflow_assignment_replaces_the_team_list(client: SimClient, auth: Auth) -> None:
    admin = auth("admin")
    action = (
        "<WorkflowAction><name>Ring bell</name><type>HTTP_REQUEST</type>"
        "<params><Param><name>method</name><value>GET</value></Param></params></WorkflowAction>"
    )
    made = await client.post("/finesse/api/WorkflowAction", data=action, headers=admin)
    action_uri = "/" + made.headers["Location"].split("/", 3)[3]
    flow = (
        "<Workflow><name>Bell</name><TriggerSet><name>CALL_ARRIVES</name></TriggerSet>"
        f"<workflowActions><WorkflowAction><uri>{action_uri}</uri></WorkflowAction>"
        "</workflowActions></Workflow>"
    )
    made = await client.post("/finesse/api/Workflow", data=flow, headers=admin)
    flow_uri = "/" + made.headers["Location"].split("/", 3)[3]
    body = f"<Workflows><Workflow><uri>{flow_uri}</uri></Workflow></Workflows>"
    assert (await client.put("/finesse/api/Team/5001/Workflows", data=body, headers=admin)).ok
    root = await team_read(client, auth, "5001", "Workflows")
    assert [w.findtext("name") for w in root.findall("Workflow")] == ["Bell"]
    assert root.findtext("Workflow/workflowActions/WorkflowAction/name") == "Ring bell"
    other = await team_read(client, auth, "5000", "Workflows")
    assert "Bell" not in {w.findtext("name") for w in other.findall("Workflow")}


async def test_team_layout_config_write_shows_in_team_resource(
    client: SimClient, auth: Auth
) -> None:
    layout = '<finesseLayout xmlns="http://www.cisco.com/vtg/finesse"><layout/></finesseLayout>'
    escaped = layout.replace("<", "&lt;").replace(">", "&gt;")
    body = f"<TeamLayoutConfig><useDefault>false</useDefault><layoutxml>{escaped}</layoutxml></TeamLayoutConfig>"  # noqa: E501
    put = await client.put("/finesse/api/Team/5000/LayoutConfig", data=body, headers=auth("admin"))
    assert put.status == 200
    root = await team_read(client, auth, "5000", "LayoutConfig")
    assert (root.findtext("useDefault"), root.findtext("layoutxml")) == ("false", layout)


async def test_default_media_properties_layout_has_an_alias(client: SimClient, auth: Auth) -> None:
    response = await client.get("/finesse/api/MediaPropertiesLayout/default", headers=auth("admin"))
    assert ET.fromstring(await response.text()).findtext("type") == "DEFAULT"


async def test_phone_books_without_range_return_every_contact(
    client: SimClient, auth: Auth
) -> None:
    root = await team_read(client, auth, "5000", "PhoneBooks")
    assert [b.findtext("type") for b in root.findall("PhoneBook")] == ["GLOBAL", "GLOBAL", "TEAM"]
    assert len(list(root.iter("Contact"))) == 10


async def test_phone_books_range_answers_206_with_content_range(
    client: SimClient, auth: Auth
) -> None:
    headers = {**auth("10001"), "Range": "objects=5-7"}
    response = await client.get("/finesse/api/TeamResource/5000/PhoneBooks", headers=headers)
    assert response.status == 206
    assert response.headers["Content-Range"] == "objects 5-7/10"
    root = ET.fromstring(await response.text())
    numbers = [c.findtext("phoneNumber") for c in root.iter("Contact")]
    assert numbers == ["1400", "1900", "1910"]


@pytest.mark.parametrize(
    "value", ["objects=0-5", "objects=1-6001", "objects=9-3", "bytes=1-5"], ids=str
)
async def test_phone_books_range_outside_1_to_6000_is_416(
    client: SimClient, auth: Auth, value: str
) -> None:
    headers = {**auth("10001"), "Range": value}
    response = await client.get("/finesse/api/TeamResource/5000/PhoneBooks", headers=headers)
    assert response.status == 416
    assert response.headers["Content-Range"] == "objects */10"
