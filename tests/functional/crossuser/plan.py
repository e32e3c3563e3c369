"""The seeded plan: every request the suite makes, in the order it is issued.

`make_plan(seed, requests)` is pure: the same seed gives the same plan. The state the
plan assumes (the rotating user's password, each mover's team) is tracked as planned; the
oracle judges by what really happened, so a read issued next to a change never misleads it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from tests.functional.crossuser.population import (
    API,
    GLOBAL_VIEWS,
    MOVERS,
    ROTATING_USER,
    UNKNOWN_TEAM_VIEWS,
    Credential,
    Kind,
    Population,
    View,
    rotating_credential,
    team_views,
    user_view,
)
from tests.functional.crossuser.spelling import spell
from tests.functional.crossuser.writes import WriteKind


class ReadKind(StrEnum):
    SIGN_IN = "sign-in"  # GET User/{own id}
    PEER_USER = "peer-user"  # a supervisor or the admin reads another user
    OWN_TEAM = "own-team"  # the caller's team's TeamResource
    GLOBAL = "global"  # ChatConfig, ECCVariableConfig, MediaDomains
    OTHER_TEAM = "other-team"  # another team's (or an unknown team's) TeamResource
    BYPASS = "bypass"  # bypassServerCache=true on a global or own-team read


@dataclass(frozen=True, slots=True)
class Read:
    kind: ReadKind
    credential: Credential
    view: View
    target: str  # as sent: a spelling of view.target


@dataclass(frozen=True, slots=True)
class Write:
    """An admin write through the proxy; composed when it runs (ids depend on the state)."""

    kind: WriteKind
    seed: int
    number: int  # unique per write: labels and codes it creates never collide


@dataclass(frozen=True, slots=True)
class Rotate:
    """The rotating user's password changes (Finesse's own admin tools, not its REST API)."""

    rotation: int  # the new password is rotated_password(rotation)


@dataclass(frozen=True, slots=True)
class Move:
    login_id: str
    team: str


@dataclass(frozen=True, slots=True)
class Clear:
    """POST /admin/cache/clear with this query (``""``: everything)."""

    query: str


@dataclass(frozen=True, slots=True)
class Slow:
    """The next `count` answers under `path` come `seconds` late (computed on arrival, as
    ever): answers from before a change then land after later ones."""

    path: str
    seconds: float
    count: int


Op = Read | Write | Rotate | Move | Clear | Slow


@dataclass(frozen=True, slots=True)
class Mix:
    """How often each control operation comes, per request; the rest are reads."""

    write: float = 0.02
    rotate: float = 0.003
    move: float = 0.005
    clear: float = 0.004
    slow: float = 0.004
    odd: float = 0.5  # how often each spelling transformation applies


CLEARS: Final = ("", "", "team=5001", "resource=ChatConfig", "resource=TeamResource")


@dataclass
class Planner:
    population: Population
    rng: random.Random
    mix: Mix
    rotation: int = 0
    teams_of: dict[str, str] = field(default_factory=dict)
    writes: int = 0

    def next(self) -> Op:
        roll, mix = self.rng.random(), self.mix
        if roll < mix.write:
            self.writes += 1
            kind = self.rng.choice(list(WriteKind))
            return Write(kind, self.rng.getrandbits(32), self.writes)
        roll -= mix.write
        if roll < mix.rotate:
            self.rotation += 1
            return Rotate(self.rotation)
        roll -= mix.rotate
        if roll < mix.move:
            mover = self.rng.choice(MOVERS)
            others = [t for t in self.population.teams if t != self.teams_of[mover]]
            self.teams_of[mover] = team = self.rng.choice(others)
            return Move(mover, team)
        roll -= mix.move
        if roll < mix.clear:
            return Clear(self.rng.choice(CLEARS))
        roll -= mix.clear
        if roll < mix.slow:
            return self.slow()
        return self.read(self.caller())

    def slow(self) -> Slow:
        rng, pop = self.rng, self.population
        paths = [f"{API}/TeamResource/{t}/" for t in pop.teams]
        paths += [f"{API}/User/{m}" for m in (*MOVERS, ROTATING_USER)] + [f"{API}/ChatConfig"]
        return Slow(rng.choice(paths), rng.choice((0.01, 0.03, 0.1)), rng.randint(1, 4))

    def caller(self) -> Credential:
        pop, rng = self.population, self.rng
        group = rng.choices(("stable", "rotating", "mover", "refused"), (70, 10, 10, 10))[0]
        if group == "rotating":
            offset = rng.choices((-1, 0, 1), (3, 6, 1))[0]
            return rotating_credential(max(0, self.rotation + offset))
        if group == "mover":
            return rng.choice(pop.movers)
        if group == "refused":
            return rng.choice(pop.refused)
        return rng.choice(pop.stable)

    def team_of(self, credential: Credential) -> str | None:
        return self.teams_of.get(credential.login_id, credential.team)

    def read(self, credential: Credential) -> Read:
        rng, team = self.rng, self.team_of(credential)
        weights = (10, 4 if credential.kind is Kind.SUPERVISOR else 0, 45, 25, 9, 7)
        if credential.kind is Kind.ADMINISTRATOR:
            weights = (15, 15, 0, 45, 25, 0)
        kind = rng.choices(list(ReadKind), weights)[0]
        if kind is ReadKind.OWN_TEAM and team is None:
            kind = ReadKind.GLOBAL
        view = self.view(kind, credential, team)
        odd = self.mix.odd if not view.is_user else self.mix.odd / 2
        target = spell(view.target, rng, odd=odd, bypass=kind is ReadKind.BYPASS)
        return Read(kind, credential, view, target)

    def view(self, kind: ReadKind, credential: Credential, team: str | None) -> View:
        rng, pop = self.rng, self.population
        match kind:
            case ReadKind.SIGN_IN:
                return user_view(credential.login_id or credential.username)
            case ReadKind.PEER_USER:
                teams = pop.teams if team is None else (team,)
                return user_view(rng.choice(pop.team_agents(rng.choice(teams))).login_id)
            case ReadKind.OWN_TEAM:
                return rng.choice(team_views(team or pop.teams[0]))
            case ReadKind.GLOBAL:
                return rng.choice(GLOBAL_VIEWS)
            case ReadKind.OTHER_TEAM:
                others = [team_views(t) for t in pop.teams if t != team] + [UNKNOWN_TEAM_VIEWS]
                return rng.choice(rng.choice(others))
            case ReadKind.BYPASS:
                views = GLOBAL_VIEWS + (team_views(team) if team else ())
                return rng.choice(views)


def make_plan(seed: int, requests: int, population: Population, mix: Mix | None = None) -> list[Op]:
    """`requests` operations (reads, writes, changes, clears) from `random.Random(seed)`."""
    planner = Planner(population, random.Random(seed), mix or Mix())
    planner.teams_of = {c.login_id: c.team for c in population.movers if c.team is not None}
    return [planner.next() for _ in range(requests)]
