"""Run-time account changes: a new password, a move to another team (PATCH /sim/users)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest

from tests.sim.conftest import SimClient
from webproxy.sim import FinesseSimulator

Auth = Callable[..., dict[str, str]]
USER = "/finesse/api/User/10002"
CODES = "/finesse/api/TeamResource/{team}/ReasonCodes?category=ALL"


async def test_a_new_password_is_accepted_and_the_old_one_refused_at_once(
    sim: FinesseSimulator, client: SimClient, auth: Auth
) -> None:
    assert (await client.get(USER, headers=auth("10002"))).status == 200
    sim.set_password("10002", "rotated")
    assert (await client.get(USER, headers=auth("10002"))).status == 401
    assert (await client.get(USER, headers=auth("agent10002"))).status == 401
    assert (await client.get(USER, headers=auth("10002", "rotated"))).status == 200
    assert (await client.get(USER, headers=auth("agent10002", "rotated"))).status == 200


async def test_a_moved_agent_reads_the_new_teams_resources_and_not_the_old_ones(
    sim: FinesseSimulator, client: SimClient, auth: Auth
) -> None:
    sim.move_user("10002", "5001")
    old = await client.get(CODES.format(team="5000"), headers=auth("10002"))
    assert old.status == 401
    assert "not on the team" in await old.text()
    new = await client.get(CODES.format(team="5001"), headers=auth("10002"))
    assert new.status == 200
    assert (
        await new.read()
        == await (await client.get(CODES.format(team="5001"), headers=auth("11001"))).read()
    )
    user = ET.fromstring(await (await client.get(USER, headers=auth("10002"))).text())
    assert user.findtext("teamId") == "5001"


async def test_a_moved_agent_is_listed_in_the_new_team_only(
    sim: FinesseSimulator, client: SimClient, auth: Auth
) -> None:
    sim.move_user("10002", "5001")
    for team, present in (("5000", False), ("5001", True)):
        listed = await client.get(
            f"/finesse/api/Team/{team}?includeLoggedOutAgents=true", headers=auth("admin")
        )
        assert ("<loginId>10002</loginId>" in await listed.text()) is present


async def test_patch_sim_users_changes_team_and_password_together(
    client: SimClient, auth: Auth
) -> None:
    response = await client.patch("/sim/users/10002", json={"password": "moved", "teamId": "5002"})
    assert response.status == 200
    assert await response.json() == {
        "loginId": "10002",
        "loginName": "agent10002",
        "role": "Agent",
        "teamId": "5002",
    }
    codes = await client.get(CODES.format(team="5002"), headers=auth("10002", "moved"))
    assert codes.status == 200


async def test_patch_sim_users_for_an_unknown_user_is_404(client: SimClient) -> None:
    assert (await client.patch("/sim/users/99999", json={"password": "x"})).status == 404


WRONG_CHANGES: dict[str, object] = {
    "unknown-team": {"teamId": "5999"},
    "empty-password": {"password": ""},
    "not-a-string": {"password": 7},
    "half-valid": {"password": "ok", "teamId": "5999"},
    "unknown-key": {"role": "Administrator"},
    "empty": {},
    "not-object": ["x"],
}


@pytest.mark.parametrize("change", list(WRONG_CHANGES.values()), ids=list(WRONG_CHANGES))
async def test_patch_sim_users_refuses_a_wrong_change_and_changes_nothing(
    client: SimClient, auth: Auth, change: object
) -> None:
    response = await client.patch("/sim/users/10002", json=change)
    assert response.status == 400
    assert "error" in await response.json()
    assert (await client.get(USER, headers=auth("10002"))).status == 200
    assert (await client.get(CODES.format(team="5000"), headers=auth("10002"))).status == 200


async def test_an_administrator_cannot_be_moved(sim: FinesseSimulator, client: SimClient) -> None:
    assert (await client.patch("/sim/users/admin", json={"teamId": "5000"})).status == 400
    with pytest.raises(ValueError, match="administrator"):
        sim.move_user("admin", "5000")


def test_state_changes_refuse_unknown_users_and_teams(sim: FinesseSimulator) -> None:
    with pytest.raises(KeyError):
        sim.set_password("99999", "x")
    with pytest.raises(KeyError):
        sim.move_user("99999", "5000")
    with pytest.raises(ValueError, match="unknown team"):
        sim.move_user("10002", "5999")
    with pytest.raises(ValueError, match="empty"):
        sim.set_password("10002", "")
    assert sim.state.users["10002"].team_id == "5000"
