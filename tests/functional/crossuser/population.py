"""Who calls and what they read: credentials of every kind, and resources as Finesse names them.

The simulator is `SimData.generate(TEAMS, AGENTS_PER_TEAM)`: team ``i`` is ``str(5000 + i)``,
its supervisor ``str(10000 + 1000 i)`` and its agents that plus 1..4. Agent 1 of each team
never changes (it is the team's `representative`: the oracle reads the team's resources
with its credential), agent 2 also signs in by loginName, agent 3 of team 5000 has its
password changed (`ROTATING_USER`), agent 3 of teams 5001 and 5002 move between teams
(`MOVERS`), and agent 4 of every team is also called with a wrong password.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final

from webproxy.sim import DEFAULT_PASSWORD, SimData

API: Final = "/finesse/api"
TEAMS: Final = 4
AGENTS_PER_TEAM: Final = 4
ROTATING_USER: Final = "10003"
ROTATING_TEAM: Final = "5000"
MOVERS: Final = ("11003", "12003")
UNKNOWN_TEAM: Final = "5999"


class Kind(StrEnum):
    """What a credential is, for choosing what it asks and for the printed figures."""

    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMINISTRATOR = "administrator"
    ROTATING = "password-changed"  # one of ROTATING_USER's passwords, old, current or next
    MOVER = "moved-agent"
    REFUSED = "wrong-password"  # a wrong password, or a user Finesse does not know


@dataclass(frozen=True, slots=True)
class Credential:
    """One `Authorization: Basic` value and the user it names."""

    username: str
    password: str
    kind: Kind
    login_id: str  # the user it names ("" for a user Finesse does not know)
    team: str | None = None  # the team at the start (agents and supervisors)

    @property
    def authorization(self) -> str:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return f"Basic {token}"

    @property
    def label(self) -> str:
        return f"{self.username}:{self.password}"

    @property
    def binds(self) -> bool:
        """Whether the proxy can bind an identity to it (a Basic name that is the loginId)."""
        return self.username == self.login_id


@dataclass(frozen=True, slots=True)
class View:
    """A resource as Finesse reads it: the canonical path and query the oracle asks for."""

    path: str
    query: str = ""
    team: str | None = None  # the team of a TeamResource view

    @property
    def target(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path

    @property
    def is_user(self) -> bool:
        return self.path.startswith(f"{API}/User/")


GLOBAL_VIEWS: Final = tuple(
    View(f"{API}/{name}") for name in ("ChatConfig", "ECCVariableConfig", "MediaDomains")
)
COLLECTIONS: Final = (
    ("ReasonCodes", "category=NOT_READY"),
    ("ReasonCodes", "category=LOGOUT"),
    ("ReasonCodes", "category=ALL"),
    ("WrapUpReasons", ""),
    ("PhoneBooks", ""),
    ("Workflows", ""),
    ("MediaPropertiesLayouts", ""),
    ("LayoutConfig", ""),
)


def team_views(team: str) -> tuple[View, ...]:
    base = f"{API}/TeamResource/{team}"
    return tuple(View(f"{base}/{name}", query, team) for name, query in COLLECTIONS)


UNKNOWN_TEAM_VIEWS: Final = team_views(UNKNOWN_TEAM)[2:4]
"""What callers ask of a team Finesse does not have (404 to agents)."""


def user_view(login_id: str) -> View:
    return View(f"{API}/User/{login_id}")


def rotated_password(rotation: int) -> str:
    """The rotating user's password after `rotation` changes (the first is the default)."""
    return DEFAULT_PASSWORD if rotation == 0 else f"rotated-{rotation}"


def rotating_credential(rotation: int) -> Credential:
    password = rotated_password(rotation)
    return Credential(ROTATING_USER, password, Kind.ROTATING, ROTATING_USER, ROTATING_TEAM)


@dataclass(frozen=True, slots=True)
class Population:
    """Every credential the suite sends, and the views it reads."""

    data: SimData
    teams: tuple[str, ...]
    stable: tuple[Credential, ...]  # agents and supervisors who never change, the admin
    refused: tuple[Credential, ...]
    movers: tuple[Credential, ...]  # loginId and loginName credentials of each mover
    admin: Credential
    representatives: dict[str, Credential]  # team -> agent 1 of that team

    @property
    def cached_views(self) -> tuple[View, ...]:
        """What the oracle reads after every change: every cached resource of every team."""
        return GLOBAL_VIEWS + tuple(v for team in self.teams for v in team_views(team))

    def views_of(self, credential: Credential) -> tuple[View, ...]:
        """Every view `credential` may be sent to (its own User, an unknown team's too)."""
        own = user_view(credential.login_id or credential.username)
        return (*self.cached_views, *UNKNOWN_TEAM_VIEWS, own)

    def team_agents(self, team: str) -> tuple[Credential, ...]:
        """The stable agents of `team` (whose User a supervisor may read)."""
        return tuple(c for c in self.stable if c.kind is Kind.AGENT and c.team == team)

    @classmethod
    def build(cls) -> Population:
        data = SimData.generate(TEAMS, AGENTS_PER_TEAM)
        teams = tuple(t.id for t in data.teams)
        stable: list[Credential] = []
        refused: list[Credential] = [Credential("99999", DEFAULT_PASSWORD, Kind.REFUSED, "")]
        movers: list[Credential] = []
        for user in data.users:
            if user.team_id is None or user.login_id == ROTATING_USER:
                continue
            kind = Kind.SUPERVISOR if user.login_name.startswith("super") else Kind.AGENT
            own = Credential(user.login_id, DEFAULT_PASSWORD, kind, user.login_id, user.team_id)
            if user.login_id in MOVERS:
                mover = replace(own, kind=Kind.MOVER)
                movers += [mover, replace(mover, username=user.login_name)]
                continue
            stable.append(own)
            number = int(user.login_id) % 1000
            if number == 2:
                stable.append(replace(own, username=user.login_name))
            if number == 4:
                refused.append(Credential(user.login_id, "wrong", Kind.REFUSED, user.login_id))
        admin = Credential("admin", DEFAULT_PASSWORD, Kind.ADMINISTRATOR, "admin")
        refused.append(Credential("admin", "Finesse", Kind.REFUSED, "admin"))
        representatives = {
            team: next(c for c in stable if c.team == team and c.login_id.endswith("001"))
            for team in teams
        }
        return cls(
            data, teams, (*stable, admin), tuple(refused), tuple(movers), admin, representatives
        )
