"""The simulator's mutable state: users, live status, config tables and team assignments."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Concatenate, Generic, ParamSpec, TypeVar

from webproxy.sim.data import SimData, TeamSpec, UserSpec
from webproxy.sim.records import (
    AgentStatus,
    Assignable,
    BookType,
    Category,
    ChatConfig,
    Contact,
    Dialog,
    EccVariable,
    MediaDomain,
    MediaStatus,
    PhoneBook,
    PropertiesLayout,
    Queue,
    ReasonCode,
    TeamLayout,
    TeamMessage,
    Workflow,
    WorkflowAction,
    WrapUpReason,
)
from webproxy.sim.seed import seed_config

RowT = TypeVar("RowT")
P = ParamSpec("P")


def timestamp() -> str:
    """Now, as Finesse writes times: ISO 8601 UTC with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Table(Generic[RowT]):
    """Rows by integer id; ids are handed out in increasing order and never reused."""

    def __init__(self) -> None:
        self.rows: dict[int, RowT] = {}
        self.last_id = 0

    def new_id(self) -> int:
        self.last_id += 1
        return self.last_id

    def insert(
        self, make: Callable[Concatenate[int, P], RowT], *args: P.args, **kwargs: P.kwargs
    ) -> int:
        """Store `make(new_id, *args, **kwargs)`; return the new id."""
        row_id = self.new_id()
        self.rows[row_id] = make(row_id, *args, **kwargs)
        return row_id

    def get(self, row_id: int) -> RowT | None:
        return self.rows.get(row_id)

    def put(self, row_id: int, row: RowT) -> None:
        self.rows[row_id] = row

    def pop(self, row_id: int) -> RowT | None:
        return self.rows.pop(row_id, None)

    def all(self) -> list[RowT]:
        return [self.rows[k] for k in sorted(self.rows)]


@dataclass(slots=True)
class TeamConfig:
    """What is assigned to one team, by collection, and its desktop layout."""

    assigned: dict[Assignable, list[int]] = field(
        default_factory=lambda: {kind: [] for kind in Assignable}
    )
    layout: TeamLayout = field(default_factory=lambda: TeamLayout(use_default=True, layout_xml=""))


class SimState:
    """Everything a FinesseSimulator knows; each instance is independent."""

    def __init__(self, data: SimData) -> None:
        self.teams: dict[str, TeamSpec] = {t.id: t for t in data.teams}
        self.users: dict[str, UserSpec] = {u.login_id: u for u in data.users}
        self.logins: dict[str, UserSpec] = {u.login_name: u for u in data.users}
        self.logins.update(self.users)
        self.members: dict[str, list[str]] = {t.id: [] for t in data.teams}
        for user in data.users:
            if user.team_id is not None:
                self.members[user.team_id].append(user.login_id)
        now = timestamp()
        self.status = {u.login_id: AgentStatus("LOGOUT", now, u.extension) for u in data.users}
        self.media: dict[tuple[str, str], MediaStatus] = {}
        self.dialogs: dict[str, Dialog] = {}
        self.last_dialog = 16_777_216
        self.messages: dict[str, TeamMessage] = {}
        self.reason_codes: Table[ReasonCode] = Table()
        self.wrap_ups: Table[WrapUpReason] = Table()
        self.books: Table[PhoneBook] = Table()
        self.contacts: Table[Contact] = Table()
        self.actions: Table[WorkflowAction] = Table()
        self.workflows: Table[Workflow] = Table()
        self.layouts: Table[PropertiesLayout] = Table()
        self.team_config: dict[str, TeamConfig] = {t.id: TeamConfig() for t in data.teams}
        self.default_layout_xml = ""
        self.chat = ChatConfig("", "")
        self.ecc: tuple[EccVariable, ...] = ()
        self.media_domains: tuple[MediaDomain, ...] = ()
        self.queues: dict[str, Queue] = {}
        seed_config(self)

    # -- users ----------------------------------------------------------------------
    def team_users(self, team_ids: Iterable[str]) -> list[UserSpec]:
        """Members of the given teams, in loginId order of the data."""
        return [self.users[u] for t in team_ids for u in self.members.get(t, ())]

    def set_password(self, login_id: str, password: str) -> UserSpec:
        """Change a user's password at run time: from now on only the new one is accepted.

        KeyError for an unknown loginId; ValueError for an empty password.
        """
        if not password:
            raise ValueError("the password must not be empty")
        return self._replace_user(replace(self.users[login_id], password=password))

    def move_user(self, login_id: str, team_id: str) -> UserSpec:
        """Put an agent or supervisor in another team at run time (their own `teamId`;
        a supervisor keeps the teams they supervise). Reads follow the new team at once.

        KeyError for an unknown loginId; ValueError for an unknown team or an administrator.
        """
        user = self.users[login_id]
        if team_id not in self.teams:
            raise ValueError(f"unknown team {team_id!r}")
        if user.team_id is None:
            raise ValueError(f"{login_id} is an administrator and belongs to no team")
        self.members[user.team_id].remove(login_id)
        self.members[team_id].append(login_id)
        return self._replace_user(replace(user, team_id=team_id))

    def _replace_user(self, user: UserSpec) -> UserSpec:
        """One object under both names: handlers compare the caller and target by identity."""
        self.users[user.login_id] = user
        self.logins[user.login_id] = user
        self.logins[user.login_name] = user
        return user

    def new_dialog_id(self) -> str:
        self.last_dialog += 1
        return str(self.last_dialog)

    # -- team views -----------------------------------------------------------------
    def assigned(self, team_id: str, kind: Assignable) -> list[int]:
        return self.team_config[team_id].assigned[kind]

    def team_reason_codes(self, team_id: str, categories: set[Category]) -> list[ReasonCode]:
        """Global codes plus the team's, of the given categories, in id order."""
        mine = set(self.assigned(team_id, Assignable.REASON_CODES))
        return [
            rc
            for rc in self.reason_codes.all()
            if rc.category in categories and (rc.for_all or rc.id in mine)
        ]

    def team_wrap_ups(self, team_id: str) -> list[WrapUpReason]:
        mine = set(self.assigned(team_id, Assignable.WRAP_UP_REASONS))
        return [w for w in self.wrap_ups.all() if w.for_all or w.id in mine]

    def team_books(self, team_id: str) -> list[PhoneBook]:
        """Global books first, then the books assigned to the team."""
        mine = set(self.assigned(team_id, Assignable.PHONE_BOOKS))
        books = self.books.all()
        shared = [b for b in books if b.type is BookType.GLOBAL]
        return shared + [b for b in books if b.id in mine and b.type is not BookType.GLOBAL]

    def book_contacts(self, book_id: int) -> list[Contact]:
        return [c for c in self.contacts.all() if c.book_id == book_id]

    def team_workflows(self, team_id: str) -> list[Workflow]:
        mine = set(self.assigned(team_id, Assignable.WORKFLOWS))
        return [w for w in self.workflows.all() if w.id in mine]

    def team_layouts(self, team_id: str) -> list[PropertiesLayout]:
        """The DEFAULT layouts plus the team's custom ones."""
        mine = set(self.assigned(team_id, Assignable.LAYOUTS))
        return [lay for lay in self.layouts.all() if lay.type == "DEFAULT" or lay.id in mine]

    def effective_layout(self, team_id: str) -> TeamLayout:
        layout = self.team_config[team_id].layout
        if layout.use_default:
            return TeamLayout(use_default=True, layout_xml=self.default_layout_xml)
        return layout

    # -- writes ---------------------------------------------------------------------
    def assign(self, team_id: str, kind: Assignable, ids: list[int], keep: Iterable[int]) -> None:
        """Replace a team's list of `kind`; `keep` are ids outside the replaced part."""
        self.team_config[team_id].assigned[kind] = [*keep, *ids]

    def unassign(self, kind: Assignable, row_id: int) -> None:
        """Drop a deleted object from every team's assignments."""
        for config in self.team_config.values():
            if row_id in config.assigned[kind]:
                config.assigned[kind].remove(row_id)

    def delete_book(self, book_id: int) -> None:
        self.books.pop(book_id)
        for contact in self.book_contacts(book_id):
            self.contacts.pop(contact.id)
        self.unassign(Assignable.PHONE_BOOKS, book_id)

    def delete_action(self, action_id: int) -> None:
        """Remove a WorkflowAction, and from every workflow that embeds it."""
        self.actions.pop(action_id)
        for flow in self.workflows.all():
            if action_id in flow.action_ids:
                kept = tuple(a for a in flow.action_ids if a != action_id)
                self.workflows.put(flow.id, replace(flow, action_ids=kept))
