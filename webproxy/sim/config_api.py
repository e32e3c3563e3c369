"""The configuration APIs: ReasonCode, WrapUpReason, PhoneBook, Workflow(Action), layouts.

Every kind follows one pattern (GET list, POST create, GET/PUT/DELETE by id, admin only;
ReasonCode GET by id is open to every user), so each is a `ConfigKind` row and one
generic `ConfigRoutes` serves them all.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Generic, Protocol, TypeVar

from aiohttp import web

from webproxy.sim import body, render, reply
from webproxy.sim.auth import caller, require_admin
from webproxy.sim.errors import duplicate, invalid_input, missing, not_found
from webproxy.sim.records import (
    Assignable,
    Category,
    PhoneBook,
    PropertiesLayout,
    ReasonCode,
    Workflow,
    WorkflowAction,
    WrapUpReason,
)
from webproxy.sim.state import SimState, Table

RowT = TypeVar("RowT")
API: Final = "/finesse/api"


@dataclass(frozen=True, slots=True)
class ConfigKind(Generic[RowT]):
    """How one config object type is stored, read from XML, rendered and deleted."""

    name: str
    plural: str
    table: Callable[[SimState], Table[RowT]]
    parse: Callable[[SimState, ET.Element, int, RowT | None], RowT]
    render: Callable[[SimState, RowT], ET.Element]
    render_all: Callable[[SimState, list[RowT], Mapping[str, str]], ET.Element]
    delete: Callable[[SimState, int], None]
    open_read: bool = False
    default_id: Callable[[SimState], int | None] | None = None


class ConfigRoutes(Generic[RowT]):
    """The five handlers of one ConfigKind, bound to a SimState."""

    def __init__(self, state: SimState, kind: ConfigKind[RowT]) -> None:
        self.state = state
        self.kind = kind

    def add_to(self, router: web.UrlDispatcher) -> None:
        name = self.kind.name
        router.add_get(f"{API}/{self.kind.plural}", self.list)
        router.add_post(f"{API}/{name}", self.create)
        router.add_get(f"{API}/{name}/{{id}}", self.get)
        router.add_put(f"{API}/{name}/{{id}}", self.update)
        router.add_delete(f"{API}/{name}/{{id}}", self.delete)

    def row_id(self, request: web.Request) -> int:
        raw = request.match_info["id"]
        if raw == "default" and self.kind.default_id is not None:
            found = self.kind.default_id(self.state)
            if found is not None:
                return found
        if raw.isdigit() and int(raw) in self.kind.table(self.state).rows:
            return int(raw)
        raise not_found(self.kind.name, raw)

    async def list(self, request: web.Request) -> web.Response:
        require_admin(caller(request))
        rows = self.kind.table(self.state).all()
        return reply.xml(self.kind.render_all(self.state, rows, request.query))

    async def get(self, request: web.Request) -> web.Response:
        if not self.kind.open_read:
            require_admin(caller(request))
        row = self.kind.table(self.state).rows[self.row_id(request)]
        return reply.xml(self.kind.render(self.state, row))

    async def create(self, request: web.Request) -> web.Response:
        require_admin(caller(request))
        element = await body.read_xml(request, self.kind.name)
        table = self.kind.table(self.state)
        row_id = table.new_id()
        table.put(row_id, self.kind.parse(self.state, element, row_id, None))
        return reply.created(request, f"{API}/{self.kind.name}/{row_id}")

    async def update(self, request: web.Request) -> web.Response:
        require_admin(caller(request))
        row_id = self.row_id(request)
        element = await body.read_xml(request, self.kind.name)
        table = self.kind.table(self.state)
        table.put(row_id, self.kind.parse(self.state, element, row_id, table.rows[row_id]))
        return reply.done()

    async def delete(self, request: web.Request) -> web.Response:
        require_admin(caller(request))
        self.kind.delete(self.state, self.row_id(request))
        return reply.done()


class Identified(Protocol):
    @property
    def id(self) -> int: ...


RecordT = TypeVar("RecordT", bound=Identified)


def unique(rows: list[RecordT], row_id: int, same: Callable[[RecordT], bool], field: str) -> None:
    """400 Database constraint violation if another row matches `same`."""
    for other in rows:
        if other.id != row_id and same(other):
            raise duplicate(field)


def categories(query: Mapping[str, str]) -> set[Category]:
    """?category=NOT_READY|LOGOUT|ALL; required."""
    value = query.get("category")
    if value is None:
        raise missing("category")
    if value == "ALL":
        return set(Category)
    try:
        return {Category(value)}
    except ValueError as exc:
        raise invalid_input("category") from exc


def parse_reason_code(
    state: SimState, element: ET.Element, row_id: int, old: ReasonCode | None
) -> ReasonCode:
    rc = body.reason_code(element, row_id, old)
    rows = state.reason_codes.all()
    unique(rows, row_id, lambda o: (o.category, o.code) == (rc.category, rc.code), "code")
    unique(rows, row_id, lambda o: (o.category, o.label) == (rc.category, rc.label), "label")
    return rc


def list_reason_codes(
    state: SimState, rows: list[ReasonCode], query: Mapping[str, str]
) -> ET.Element:
    wanted = categories(query)
    return render.reason_codes([r for r in rows if r.category in wanted], query["category"])


def parse_workflow(
    state: SimState, element: ET.Element, row_id: int, old: Workflow | None
) -> Workflow:
    flow = body.workflow(element, row_id, old, state.actions.rows)
    unique(state.workflows.all(), row_id, lambda o: o.name == flow.name, "name")
    return flow


def actions_of(state: SimState, flow: Workflow) -> list[WorkflowAction]:
    return [state.actions.rows[a] for a in flow.action_ids if a in state.actions.rows]


def render_workflow(state: SimState, flow: Workflow) -> ET.Element:
    return render.workflow(flow, actions_of(state, flow))


def deleter(
    table: Callable[[SimState], Table[RowT]], kind: Assignable
) -> Callable[[SimState, int], None]:
    """Delete from the table, then unassign the id from every team."""

    def delete(state: SimState, row_id: int) -> None:
        table(state).pop(row_id)
        state.unassign(kind, row_id)

    return delete


def default_layout(state: SimState) -> int | None:
    return next((lay.id for lay in state.layouts.all() if lay.type == "DEFAULT"), None)


def parse_layout(
    state: SimState, element: ET.Element, row_id: int, old: PropertiesLayout | None
) -> PropertiesLayout:
    return body.layout(element, row_id, old)


def parse_wrap_up(
    state: SimState, element: ET.Element, row_id: int, old: WrapUpReason | None
) -> WrapUpReason:
    row = body.wrap_up(element, row_id, old)
    unique(state.wrap_ups.all(), row_id, lambda o: o.label == row.label, "label")
    return row


def parse_book(
    state: SimState, element: ET.Element, row_id: int, old: PhoneBook | None
) -> PhoneBook:
    return body.phone_book(element, row_id, old)


def parse_action(
    state: SimState, element: ET.Element, row_id: int, old: WorkflowAction | None
) -> WorkflowAction:
    row = body.workflow_action(element, row_id, old)
    unique(state.actions.all(), row_id, lambda o: o.name == row.name, "name")
    return row


class Registrar(Protocol):
    def add_to(self, router: web.UrlDispatcher) -> None: ...


def config_routes(state: SimState) -> list[Registrar]:
    """The CRUD routes of every config kind, bound to `state`."""
    return [
        ConfigRoutes(state, ConfigKind(
            "ReasonCode", "ReasonCodes", lambda s: s.reason_codes, parse_reason_code,
            lambda s, row: render.reason_code(row), list_reason_codes,
            deleter(lambda s: s.reason_codes, Assignable.REASON_CODES), open_read=True,
        )),
        ConfigRoutes(state, ConfigKind(
            "WrapUpReason", "WrapUpReasons", lambda s: s.wrap_ups, parse_wrap_up,
            lambda s, row: render.wrap_up(row), lambda s, rows, q: render.wrap_ups(rows),
            deleter(lambda s: s.wrap_ups, Assignable.WRAP_UP_REASONS),
        )),
        ConfigRoutes(state, ConfigKind(
            "PhoneBook", "PhoneBooks", lambda s: s.books, parse_book,
            lambda s, row: render.phone_book(row), lambda s, rows, q: render.phone_books(rows),
            SimState.delete_book,
        )),
        ConfigRoutes(state, ConfigKind(
            "WorkflowAction", "WorkflowActions", lambda s: s.actions, parse_action,
            lambda s, row: render.workflow_action(row),
            lambda s, rows, q: render.workflow_actions(rows), SimState.delete_action,
        )),
        ConfigRoutes(state, ConfigKind(
            "Workflow", "Workflows", lambda s: s.workflows, parse_workflow, render_workflow,
            lambda s, rows, q: render.workflows((r, actions_of(s, r)) for r in rows),
            deleter(lambda s: s.workflows, Assignable.WORKFLOWS),
        )),
        ConfigRoutes(state, ConfigKind(
            "MediaPropertiesLayout", "MediaPropertiesLayouts", lambda s: s.layouts, parse_layout,
            lambda s, row: render.layout(row), lambda s, rows, q: render.layouts(rows),
            deleter(lambda s: s.layouts, Assignable.LAYOUTS), default_id=default_layout,
        )),
    ]  # fmt: skip
