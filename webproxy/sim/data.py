"""The teams and users a simulator starts with (`SimData`), and its JSON file format.

Built-in data (`SimData.default()`, or `SimData.generate(teams, agents_per_team)`):

* teams ``"5000"``, ``"5001"``, ... (team index ``i`` has id ``str(5000 + i)``);
* in team ``i``, agents with loginId ``str(10000 + i*1000 + j)`` for ``j = 1..n`` and
  loginName ``"agent<loginId>"``; one supervisor with loginId ``str(10000 + i*1000)`` and
  loginName ``"super<loginId>"``, who supervises that team;
* one administrator, loginId and loginName ``"admin"``;
* every password is ``"finesse"`` (`DEFAULT_PASSWORD`). Basic auth takes the loginId or
  the loginName as the user name.

A ``--data`` file is JSON in one of two forms::

    {"generate": {"teams": 20, "agentsPerTeam": 100}}

    {"password": "finesse",
     "teams": [{"id": "5000", "name": "Sales"}],
     "users": [
       {"loginId": "10001", "loginName": "agent10001", "role": "Agent", "teamId": "5000",
        "firstName": "Ava", "lastName": "Reed", "extension": "20001", "password": "x"},
       {"loginId": "10000", "loginName": "super10000", "role": "Supervisor",
        "teamId": "5000", "teams": ["5000"]},
       {"loginId": "admin", "loginName": "admin", "role": "Administrator"}]}

``role`` is ``Agent``, ``Supervisor`` or ``Administrator``; ``teams`` (supervisors only)
lists the teams supervised and defaults to ``[teamId]``; ``password`` defaults to the
top-level ``password``, which defaults to ``"finesse"``; names and extension are optional.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Final

DEFAULT_PASSWORD: Final = "finesse"
TEAM_NAMES: Final = (
    "Sales",
    "Support",
    "Billing",
    "Retention",
    "Collections",
    "Onboarding",
    "Technical",
    "Escalations",
    "Renewals",
    "Claims",
    "Dispatch",
    "Partners",
)
FIRST_NAMES: Final = (
    "Ava", "Liam", "Noah", "Emma", "Mia", "Lucas", "Zoe", "Ethan", "Isla", "Omar",
    "Priya", "Hiro", "Lena", "Mateo", "Nora", "Kofi", "Sofia", "Ivan", "Maya", "Theo",
)  # fmt: skip
LAST_NAMES: Final = (
    "Reed", "Patel", "Garcia", "Nguyen", "Smith", "Kowalski", "Okafor", "Silva", "Chen",
    "Murphy", "Haddad", "Larsen", "Tanaka", "Rossi", "Dubois", "Novak", "Khan", "Brown",
    "Moreau", "Jensen",
)  # fmt: skip


class SimDataError(ValueError):
    """A SimData description or file is inconsistent; the message says where."""


class Role(StrEnum):
    """The three kinds of Finesse account."""

    AGENT = "Agent"
    SUPERVISOR = "Supervisor"
    ADMINISTRATOR = "Administrator"


@dataclass(frozen=True, slots=True)
class TeamSpec:
    """A team: numeric-string id and display name."""

    id: str
    name: str


@dataclass(frozen=True, slots=True)
class UserSpec:
    """A user account; `team_id` is None only for administrators."""

    login_id: str
    login_name: str
    role: Role
    team_id: str | None
    first_name: str = ""
    last_name: str = ""
    extension: str = ""
    password: str = DEFAULT_PASSWORD
    teams: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SimData:
    """The teams and users a FinesseSimulator starts with."""

    teams: tuple[TeamSpec, ...]
    users: tuple[UserSpec, ...]

    def __post_init__(self) -> None:
        check_data(self.teams, self.users)

    @classmethod
    def default(cls) -> SimData:
        """4 teams, 3 agents and 1 supervisor each, and one administrator."""
        return cls.generate(teams=4, agents_per_team=3)

    @classmethod
    def generate(cls, teams: int, agents_per_team: int) -> SimData:
        """`teams` teams of `agents_per_team` agents (0..999) and one supervisor each."""
        if teams < 1 or not 0 <= agents_per_team <= 999:
            raise SimDataError("generate: need teams >= 1 and 0 <= agents_per_team <= 999")
        team_specs = tuple(TeamSpec(str(5000 + i), team_name(i)) for i in range(teams))
        users: list[UserSpec] = []
        for i, team in enumerate(team_specs):
            base = 10000 + i * 1000
            users.append(make_user(base, Role.SUPERVISOR, team.id, len(users)))
            for j in range(1, 1 + agents_per_team):
                users.append(make_user(base + j, Role.AGENT, team.id, len(users)))
        users.append(UserSpec("admin", "admin", Role.ADMINISTRATOR, None, "Site", "Admin"))
        return cls(team_specs, tuple(users))

    @classmethod
    def from_file(cls, path: str | Path) -> SimData:
        """Read the JSON format described in this module's docstring."""
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SimDataError(f"{path}: {exc}") from exc
        if not isinstance(raw, dict):
            raise SimDataError(f"{path}: the top level must be a JSON object")
        try:
            return cls.from_json(raw)
        except (KeyError, TypeError, ValueError) as exc:
            raise SimDataError(f"{path}: {exc}") from exc

    @classmethod
    def from_json(cls, raw: Mapping[str, object]) -> SimData:
        """Build from an already-decoded JSON object (see the module docstring)."""
        generate = raw.get("generate")
        if isinstance(generate, dict):
            return cls.generate(int(generate["teams"]), int(generate["agentsPerTeam"]))
        password = str(raw.get("password", DEFAULT_PASSWORD))
        teams = tuple(TeamSpec(str(t["id"]), str(t["name"])) for t in as_list(raw, "teams"))
        users = tuple(user_from_json(u, password) for u in as_list(raw, "users"))
        return cls(teams, users)


def team_name(index: int) -> str:
    """Realistic team names, numbered once the list runs out."""
    base = TEAM_NAMES[index % len(TEAM_NAMES)]
    rounds = index // len(TEAM_NAMES)
    return base if rounds == 0 else f"{base} {rounds + 1}"


def make_user(number: int, role: Role, team_id: str, seq: int) -> UserSpec:
    """The `seq`-th generated agent or supervisor; the first 400 names are distinct."""
    prefix = "super" if role is Role.SUPERVISOR else "agent"
    return UserSpec(
        login_id=str(number),
        login_name=f"{prefix}{number}",
        role=role,
        team_id=team_id,
        first_name=FIRST_NAMES[seq % len(FIRST_NAMES)],
        last_name=LAST_NAMES[(seq // len(FIRST_NAMES) + seq * 3) % len(LAST_NAMES)],
        extension=str(number + 10000),
        teams=(team_id,) if role is Role.SUPERVISOR else (),
    )


def as_list(raw: Mapping[str, object], key: str) -> Sequence[Mapping[str, object]]:
    """The JSON array under `key`, checked to hold objects."""
    value = raw.get(key)
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise SimDataError(f"{key}: expected a list of objects")
    return value


def user_from_json(raw: Mapping[str, object], password: str) -> UserSpec:
    """One user object of the file format."""
    role = Role(str(raw["role"]))
    team_id = None if raw.get("teamId") is None else str(raw["teamId"])
    teams_raw = raw.get("teams")
    if isinstance(teams_raw, list):
        teams = tuple(str(t) for t in teams_raw)
    else:
        teams = (team_id,) if role is Role.SUPERVISOR and team_id else ()
    return UserSpec(
        login_id=str(raw["loginId"]),
        login_name=str(raw.get("loginName", raw["loginId"])),
        role=role,
        team_id=team_id,
        first_name=str(raw.get("firstName", "")),
        last_name=str(raw.get("lastName", "")),
        extension=str(raw.get("extension", "")),
        password=str(raw.get("password", password)),
        teams=teams,
    )


def check_data(teams: Sequence[TeamSpec], users: Sequence[UserSpec]) -> None:
    """Raise SimDataError unless ids are unique and every team reference exists."""
    team_ids = {t.id for t in teams}
    if len(team_ids) != len(teams):
        raise SimDataError("teams: duplicate team id")
    names: dict[str, str] = {}
    for user in users:
        for name in {user.login_id, user.login_name}:
            if names.setdefault(name, user.login_id) != user.login_id:
                raise SimDataError(f"users: {name!r} names two users")
        if user.role is Role.ADMINISTRATOR:
            continue
        if user.team_id not in team_ids:
            raise SimDataError(f"users: {user.login_id} has unknown teamId {user.team_id!r}")
        if unknown := set(user.teams) - team_ids:
            raise SimDataError(f"users: {user.login_id} supervises unknown teams {unknown}")
    if len({u.login_id for u in users}) != len(users):
        raise SimDataError("users: duplicate loginId")
