"""Every capability of Finesse's REST API, used through the proxy against the simulator."""

# ruff: noqa: E501 -- the request tables read best one request per line

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from tests.conftest import Proxy, basic

XML = {"Content-Type": "application/xml"}


@dataclass(frozen=True)
class Step:
    method: str
    path: str
    user: str
    body: str | None
    status: int
    shows: str = ""  # a fragment the answer's body must hold


CAPABILITIES = {
    "user sign-in": [
        Step("PUT", "/finesse/api/User/10001", "10001",
             "<User><state>LOGIN</state><extension>1001</extension></User>", 202),
        Step("GET", "/finesse/api/User/10001", "10001", None, 200, "<loginId>10001</loginId>"),
    ],
    "agent state changes": [
        Step("PUT", "/finesse/api/User/10001", "10001",
             "<User><state>LOGIN</state><extension>1001</extension></User>", 202),
        Step("PUT", "/finesse/api/User/10001", "10001", "<User><state>READY</state></User>", 202),
        Step("GET", "/finesse/api/User/10001", "10001", None, 200, "<state>READY</state>"),
        Step("PUT", "/finesse/api/User/10001", "10001", "<User></User>", 400, "ApiErrors"),
    ],
    "user sign-out": [
        Step("PUT", "/finesse/api/User/10002", "10002", "<User><state>LOGOUT</state></User>", 202),
        Step("GET", "/finesse/api/User/10002", "10002", None, 200, "<state>LOGOUT</state>"),
    ],
    "mobile agent sign-in": [
        Step("PUT", "/finesse/api/User/10003", "10003",
             "<User><state>LOGIN</state><extension>1003</extension><mobileAgent>"
             "<mode>CALL_BY_CALL</mode><dialNumber>5551234</dialNumber></mobileAgent></User>", 202),
        Step("GET", "/finesse/api/User/10003", "10003", None, 200, "5551234"),
    ],
    "configuration reads": [
        Step("GET", "/finesse/api/ReasonCodes?category=NOT_READY", "admin", None, 200, "<ReasonCodes"),
        Step("GET", "/finesse/api/SystemInfo", "10001", None, 200, "<SystemInfo>"),
        Step("GET", "/finesse/api/ECCVariableConfig", "10001", None, 200, "<ECCVariableConfig>"),
        Step("GET", "/finesse/api/MediaDomains", "10001", None, 200, "Chat"),
        Step("GET", "/finesse/api/LayoutConfig/default", "admin", None, 200, "LayoutConfig"),
    ],
    "reason codes": [
        Step("POST", "/finesse/api/ReasonCode", "admin",
             "<ReasonCode><category>NOT_READY</category><code>901</code><label>Coaching drill</label>"
             "<forAll>true</forAll></ReasonCode>", 200),
        Step("GET", "/finesse/api/ReasonCodes?category=NOT_READY", "admin", None, 200, "Coaching drill"),
        Step("POST", "/finesse/api/ReasonCode", "10001",
             "<ReasonCode><category>NOT_READY</category><code>902</code><label>No</label>"
             "<forAll>true</forAll></ReasonCode>", 401, "Authorization Failure"),
    ],
    "wrap-up reasons": [
        Step("POST", "/finesse/api/WrapUpReason", "admin",
             "<WrapUpReason><label>Callback booked</label><forAll>true</forAll></WrapUpReason>", 200),
        Step("GET", "/finesse/api/WrapUpReasons", "admin", None, 200, "Callback booked"),
    ],
    "teams": [
        Step("GET", "/finesse/api/Team/5000", "10000", None, 200, "<Team>"),
        Step("GET", "/finesse/api/Teams", "admin", None, 200, "<Teams>"),
        Step("GET", "/finesse/api/Team/5000/WrapUpReasons", "admin", None, 200, "WrapUpReasons"),
    ],
    "team resources": [
        Step("GET", "/finesse/api/TeamResource/5000/ReasonCodes?category=ALL", "10001", None, 200),
        Step("GET", "/finesse/api/TeamResource/5001/ReasonCodes?category=ALL", "10001", None, 401,
             "Invalid Authorization"),
        Step("GET", "/finesse/api/TeamResource/5000/PhoneBooks", "10001", None, 200, "<PhoneBooks"),
        Step("GET", "/finesse/api/TeamResource/5000/LayoutConfig", "10001", None, 200),
    ],
    "queues": [
        Step("GET", "/finesse/api/User/10001/Queues", "10001", None, 200, "<Queues"),
        Step("GET", "/finesse/api/Queue/1", "10001", None, 200, "<Queue>"),
    ],
    "task routing media": [
        Step("GET", "/finesse/api/User/10001/Media", "10001", None, 200, "<MediaList>"),
        Step("PUT", "/finesse/api/User/10001/Media/2", "10001",
             "<Media><state>LOGIN</state></Media>", 202),
        Step("GET", "/finesse/api/User/10001/Media/2", "10001", None, 200, "<Media>"),
    ],
    "workflows": [
        Step("POST", "/finesse/api/WorkflowAction", "admin",
             "<WorkflowAction><name>Open CRM drill</name><type>BROWSER_POP</type>"
             "<handledBy>FINESSE_DESKTOP</handledBy></WorkflowAction>", 200),
        Step("GET", "/finesse/api/Workflows", "admin", None, 200, "<Workflows"),
        Step("GET", "/finesse/api/WorkflowActions", "admin", None, 200, "Open CRM drill"),
    ],
    "team messages": [
        Step("POST", "/finesse/api/TeamMessage", "10000",
             "<TeamMessage><duration>300</duration><content>Huddle at 10</content>"
             "<teams><team>5000</team></teams></TeamMessage>", 200),
        Step("GET", "/finesse/api/Team/5000/TeamMessages", "10000", None, 200, "Huddle at 10"),
    ],
    "desktop chat configuration": [
        Step("GET", "/finesse/api/ChatConfig", "10001", None, 200, "<ChatConfig>"),
        Step("PUT", "/finesse/api/ChatConfig", "admin",
             "<ChatConfig><primaryNode>https://chat1.example</primaryNode>"
             "<secondaryNode>https://chat2.example</secondaryNode></ChatConfig>", 200),
        Step("GET", "/finesse/api/ChatConfig", "10001", None, 200, "chat1.example"),
    ],
    "client log": [
        Step("POST", "/finesse/api/User/10001/ClientLog", "10001",
             "<ClientLog><logData>desktop started</logData></ClientLog>", 202),
        Step("GET", "/finesse/api/User/10001/ClientLog", "10001", None, 405),
    ],
}  # fmt: skip


@pytest.mark.parametrize("capability", CAPABILITIES)
async def test_capability_works_through_the_proxy(proxy: Proxy, capability: str) -> None:
    for step in CAPABILITIES[capability]:
        response = await proxy.client.request(
            step.method, step.path, data=step.body, headers={**basic(step.user), **XML}
        )
        text = await response.text()
        assert response.status == step.status, f"{step.method} {step.path}: {text[:300]}"
        assert step.shows in text, f"{step.method} {step.path}: {text[:300]}"


async def test_call_control_through_dialogs(proxy: Proxy) -> None:
    agent = {**basic("10001"), **XML}
    await proxy.client.put(
        "/finesse/api/User/10001",
        data="<User><state>LOGIN</state><extension>1001</extension></User>",
        headers=agent,
    )
    call = await proxy.client.post(
        "/finesse/api/User/10001/Dialogs",
        data="<Dialog><requestedAction>MAKE_CALL</requestedAction>"
        "<fromAddress>1001</fromAddress><toAddress>5550100</toAddress></Dialog>",
        headers=agent,
    )
    assert call.status == 202
    dialogs = await proxy.client.get("/finesse/api/User/10001/Dialogs", headers=agent)
    found = re.search(r"<uri>/finesse/api/Dialog/([^<]+)</uri>", await dialogs.text())
    assert found is not None
    dialog = f"/finesse/api/Dialog/{found.group(1)}"
    assert (await proxy.client.get(dialog, headers=agent)).status == 200
    drop = await proxy.client.put(
        dialog,
        data="<Dialog><requestedAction>DROP</requestedAction>"
        "<targetMediaAddress>1001</targetMediaAddress></Dialog>",
        headers=agent,
    )
    assert drop.status == 202
