"""GET /finesse/api/TeamResource/{teamId}/<collection>: what a team's desktops load.

Only agents and supervisors whose teamId is {teamId} may read it: an administrator gets
401 Authorization Failure, a member of another team 401 Invalid Authorization, an unknown
team 404. Global (forAll / GLOBAL / DEFAULT) items appear in every team's answer.
"""

from __future__ import annotations

import re
from typing import Final

from aiohttp import web

from webproxy.sim import render, reply
from webproxy.sim.auth import caller, is_admin
from webproxy.sim.config_api import actions_of, categories
from webproxy.sim.errors import ApiError, invalid_team, unauthorized
from webproxy.sim.records import Contact, PhoneBook
from webproxy.sim.state import SimState

PATH: Final = "/finesse/api/TeamResource/{team}"
RANGE: Final = re.compile(r"\s*objects\s*=\s*(\d+)\s*-\s*(\d+)\s*")
MAX_OBJECTS: Final = 6000


class TeamResourceRoutes:
    """The six TeamResource collections, bound to a SimState."""

    def __init__(self, state: SimState) -> None:
        self.state = state

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_get(f"{PATH}/ReasonCodes", self.reason_codes)
        router.add_get(f"{PATH}/WrapUpReasons", self.wrap_ups)
        router.add_get(f"{PATH}/PhoneBooks", self.phone_books)
        router.add_get(f"{PATH}/Workflows", self.workflows)
        router.add_get(f"{PATH}/MediaPropertiesLayouts", self.layouts)
        router.add_get(f"{PATH}/LayoutConfig", self.layout_config)

    def team_id(self, request: web.Request) -> str:
        """The team in the path, once the caller is known to belong to it."""
        user = caller(request)
        team_id = request.match_info["team"]
        if is_admin(user):
            raise unauthorized(user.login_id)
        if team_id not in self.state.teams:
            raise ApiError(404, "Not Found", "TeamId Not Found", team_id)
        if user.team_id != team_id:
            raise invalid_team(user.login_id)
        return team_id

    async def reason_codes(self, request: web.Request) -> web.Response:
        team_id = self.team_id(request)
        wanted = categories(request.query)
        rows = self.state.team_reason_codes(team_id, wanted)
        return reply.xml(render.reason_codes(rows, request.query["category"]))

    async def wrap_ups(self, request: web.Request) -> web.Response:
        return reply.xml(render.wrap_ups(self.state.team_wrap_ups(self.team_id(request))))

    async def workflows(self, request: web.Request) -> web.Response:
        flows = self.state.team_workflows(self.team_id(request))
        return reply.xml(render.workflows((f, actions_of(self.state, f)) for f in flows))

    async def layouts(self, request: web.Request) -> web.Response:
        return reply.xml(render.layouts(self.state.team_layouts(self.team_id(request))))

    async def layout_config(self, request: web.Request) -> web.Response:
        return reply.xml(render.team_layout(self.state.effective_layout(self.team_id(request))))

    async def phone_books(self, request: web.Request) -> web.Response:
        """Books with contacts inline; `Range: objects=A-B` selects contacts A..B (206)."""
        team_id = self.team_id(request)
        books = [(b, self.state.book_contacts(b.id)) for b in self.state.team_books(team_id)]
        total = sum(len(rows) for _, rows in books)
        header = request.headers.get("Range")
        if header is None:
            return reply.xml(render.inline_books(books))
        first, last = parse_range(header, total)
        picked = select_contacts(books, first, last)
        shown = f"{first}-{min(last, total)}" if first <= total else "*"
        content_range = {"Content-Range": f"objects {shown}/{total}"}
        return reply.xml(render.inline_books(picked), 206, content_range)


def parse_range(header: str, total: int) -> tuple[int, int]:
    """(first, last) of `objects=A-B`; 416 unless 1 <= A <= B <= 6000."""
    match = RANGE.fullmatch(header)
    if match is not None:
        first, last = int(match[1]), int(match[2])
        if 1 <= first <= last <= MAX_OBJECTS:
            return first, last
    unsatisfied = {"Content-Range": f"objects */{total}"}
    message = "The range must be within 1-6000"
    raise ApiError(416, "Range Not Satisfiable", message, header, unsatisfied)


def select_contacts(
    books: list[tuple[PhoneBook, list[Contact]]], first: int, last: int
) -> list[tuple[PhoneBook, list[Contact]]]:
    """Contacts numbered 1.. across the books in order; books left empty are dropped."""
    picked: list[tuple[PhoneBook, list[Contact]]] = []
    number = 0
    for book, rows in books:
        kept = [c for k, c in enumerate(rows, start=number + 1) if first <= k <= last]
        number += len(rows)
        if kept:
            picked.append((book, kept))
    return picked
