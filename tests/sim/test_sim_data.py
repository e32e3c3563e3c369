"""SimData: the built-in users and teams, generated data and the JSON file format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from webproxy.sim import DEFAULT_PASSWORD, FinesseSimulator, Role, SimData, SimDataError
from webproxy.sim.records import Category
from webproxy.sim.state import SimState


def test_default_data_has_four_teams_of_three_agents_a_supervisor_and_an_admin() -> None:
    data = SimData.default()
    assert [t.id for t in data.teams] == ["5000", "5001", "5002", "5003"]
    by_id = {u.login_id: u for u in data.users}
    assert {i for i, u in by_id.items() if u.role is Role.AGENT} == {
        str(10000 + i * 1000 + j) for i in range(4) for j in (1, 2, 3)
    }
    assert [i for i, u in by_id.items() if u.role is Role.SUPERVISOR] == [
        "10000",
        "11000",
        "12000",
        "13000",
    ]
    assert by_id["11002"].login_name == "agent11002"
    assert by_id["11002"].team_id == "5001"
    assert by_id["12000"].login_name == "super12000"
    assert by_id["12000"].teams == ("5002",)
    assert by_id["admin"].role is Role.ADMINISTRATOR
    assert {u.password for u in data.users} == {DEFAULT_PASSWORD} == {"finesse"}


def test_generate_makes_two_thousand_agents_for_benchmarks() -> None:
    data = SimData.generate(teams=20, agents_per_team=100)
    agents = [u for u in data.users if u.role is Role.AGENT]
    assert len(data.teams) == 20
    assert len(agents) == 2000
    assert agents[-1].login_id == str(10000 + 19 * 1000 + 100)
    assert agents[-1].team_id == "5019"
    state = SimState(data)
    labels = {rc.label for rc in state.team_reason_codes("5019", set(Category))}
    assert "Break" in labels
    assert len(labels) == len(state.team_reason_codes("5019", set(Category)))


@pytest.mark.parametrize(
    ("teams", "agents"), [(0, 3), (2, -1), (2, 1000)], ids=["no-teams", "negative", "too-many"]
)
def test_generate_rejects_impossible_sizes(teams: int, agents: int) -> None:
    with pytest.raises(SimDataError):
        SimData.generate(teams, agents)


def test_data_file_with_explicit_users(tmp_path: Path) -> None:
    path = tmp_path / "sim.json"
    path.write_text(
        json.dumps(
            {
                "password": "s3cret",
                "teams": [{"id": "7000", "name": "Nightshift"}],
                "users": [
                    {"loginId": "7001", "role": "Agent", "teamId": "7000", "password": "mine"},
                    {
                        "loginId": "7000",
                        "loginName": "boss",
                        "role": "Supervisor",
                        "teamId": "7000",
                    },
                    {"loginId": "root", "role": "Administrator"},
                ],
            }
        )
    )
    data = SimData.from_file(path)
    by_id = {u.login_id: u for u in data.users}
    assert by_id["7001"].password == "mine"
    assert by_id["7000"].password == "s3cret"
    assert by_id["7000"].teams == ("7000",)
    assert by_id["root"].team_id is None
    assert FinesseSimulator(data).state.logins["boss"] is by_id["7000"]


def test_data_file_can_ask_for_generated_data(tmp_path: Path) -> None:
    path = tmp_path / "sim.json"
    path.write_text('{"generate": {"teams": 3, "agentsPerTeam": 5}}')
    assert len(SimData.from_file(path).users) == 3 * 6 + 1


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        '{"teams": [{"id": "1", "name": "A"}], "users": [{"loginId": "2", "role": "Agent", '
        '"teamId": "9"}]}',
        '{"teams": [], "users": [{"loginId": "2", "role": "Janitor"}]}',
        '{"teams": [{"id": "1", "name": "A"}, {"id": "1", "name": "B"}], "users": []}',
        '{"teams": [], "users": [{"loginId": "a", "role": "Administrator"}, '
        '{"loginId": "b", "loginName": "a", "role": "Administrator"}]}',
    ],
    ids=["not-json", "not-object", "unknown-team", "unknown-role", "duplicate-team", "name-clash"],
)
def test_bad_data_files_raise_sim_data_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "sim.json"
    path.write_text(content)
    with pytest.raises(SimDataError):
        SimData.from_file(path)
