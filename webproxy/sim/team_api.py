"""Teams: /finesse/api/Teams, /Team/{id}, and the admin's team assignments.

`GET|PUT /finesse/api/Team/{id}/<collection>` for ReasonCodes (?category= required),
WrapUpReasons, PhoneBooks, Workflows, MediaPropertiesLayouts and LayoutConfig. A PUT body
lists the whole assignment (`<WrapUpReasons><WrapUpReason><uri>...`) and replaces it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Final

from aiohttp import web

from webproxy.sim import body, desktop_xml, render, reply
from webproxy.sim.auth import caller, is_admin, require_admin, require_supervisor
from webproxy.sim.config_api import actions_of, categories
from webproxy.sim.errors import ApiError, invalid_input, invalid_user, not_found
from webproxy.sim.records import Assignable, ReasonCode
from webproxy.sim.state import SimState

API: Final = "/finesse/api"
ITEM: Final = {
    Assignable.REASON_CODES: "ReasonCode",
    Assignable.WRAP_UP_REASONS: "WrapUpReason",
    Assignable.PHONE_BOOKS: "PhoneBook",
    Assignable.WORKFLOWS: "Workflow",
    Assignable.LAYOUTS: "MediaPropertiesLayout",
}


class TeamRoutes:
    """Team reads for supervisors and administrators; assignments for administrators."""

    def __init__(self, state: SimState) -> None:
        self.state = state

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_get(f"{API}/Teams", self.list_teams)
        router.add_get(f"{API}/Team/{{team}}", self.get_team)
        router.add_get(f"{API}/Team/{{team}}/LayoutConfig", self.get_layout)
        router.add_put(f"{API}/Team/{{team}}/LayoutConfig", self.put_layout)
        for kind in Assignable:
            router.add_get(f"{API}/Team/{{team}}/{kind.value}", self.get_assigned)
            router.add_put(f"{API}/Team/{{team}}/{kind.value}", self.put_assigned)

    async def list_teams(self, request: web.Request) -> web.Response:
        require_admin(caller(request))
        return reply.xml(desktop_xml.teams(self.state.teams.values()))

    async def get_team(self, request: web.Request) -> web.Response:
        """Team members with live state; logged-out agents only on request."""
        user = caller(request)
        require_supervisor(user)
        team_id = request.match_info["team"]
        if team_id not in self.state.teams:
            raise not_found("Team", team_id)
        if not is_admin(user) and team_id not in user.teams:
            raise invalid_user(user.login_id)
        everyone = request.query.get("includeLoggedOutAgents", "").lower() == "true"
        members = [(u, self.state.status[u.login_id]) for u in self.state.team_users([team_id])]
        shown = [(u, s) for u, s in members if everyone or s.state != "LOGOUT"]
        return reply.xml(desktop_xml.team(self.state.teams[team_id], shown))

    def admin_team(self, request: web.Request) -> str:
        require_admin(caller(request))
        team_id = request.match_info["team"]
        if team_id not in self.state.teams:
            invalid = "finesse.api.team.team_assignment_invalid_team"
            raise ApiError(404, invalid, "Invalid team", team_id)
        return team_id

    async def get_layout(self, request: web.Request) -> web.Response:
        team_id = self.admin_team(request)
        return reply.xml(render.team_layout(self.state.team_config[team_id].layout))

    async def put_layout(self, request: web.Request) -> web.Response:
        team_id = self.admin_team(request)
        element = await body.read_xml(request, "TeamLayoutConfig")
        self.state.team_config[team_id].layout = body.team_layout(element)
        return reply.done()

    async def get_assigned(self, request: web.Request) -> web.Response:
        team_id = self.admin_team(request)
        kind = Assignable(request.path.rsplit("/", 1)[1])
        return reply.xml(self.assigned_xml(team_id, kind, request.query))

    async def put_assigned(self, request: web.Request) -> web.Response:
        team_id = self.admin_team(request)
        kind = Assignable(request.path.rsplit("/", 1)[1])
        element = await body.read_xml(request, kind.value)
        rows = self.rows(kind)
        ids = body.uri_ids(element, ITEM[kind], rows)
        keep: list[int] = []
        if kind is Assignable.REASON_CODES:
            wanted = categories(request.query)
            if any(self.state.reason_codes.rows[i].category not in wanted for i in ids):
                raise invalid_input("category")
            current = self.state.assigned(team_id, kind)
            keep = [i for i in current if self.state.reason_codes.rows[i].category not in wanted]
        self.state.assign(team_id, kind, list(dict.fromkeys(ids)), keep)
        return reply.done()

    def rows(self, kind: Assignable) -> Mapping[int, object]:
        tables: dict[Assignable, Mapping[int, object]] = {
            Assignable.REASON_CODES: self.state.reason_codes.rows,
            Assignable.WRAP_UP_REASONS: self.state.wrap_ups.rows,
            Assignable.PHONE_BOOKS: self.state.books.rows,
            Assignable.WORKFLOWS: self.state.workflows.rows,
            Assignable.LAYOUTS: self.state.layouts.rows,
        }
        return tables[kind]

    def assigned_xml(self, team_id: str, kind: Assignable, query: Mapping[str, str]) -> ET.Element:
        """The objects assigned to the team (global ones are not assignments)."""
        ids = self.state.assigned(team_id, kind)
        state = self.state
        match kind:
            case Assignable.REASON_CODES:
                wanted = categories(query)
                codes: list[ReasonCode] = [state.reason_codes.rows[i] for i in ids]
                chosen = [rc for rc in codes if rc.category in wanted]
                return render.reason_codes(chosen, query["category"])
            case Assignable.WRAP_UP_REASONS:
                return render.wrap_ups(state.wrap_ups.rows[i] for i in ids)
            case Assignable.PHONE_BOOKS:
                return render.phone_books(state.books.rows[i] for i in ids)
            case Assignable.WORKFLOWS:
                flows = [state.workflows.rows[i] for i in ids]
                return render.workflows((f, actions_of(state, f)) for f in flows)
            case Assignable.LAYOUTS:
                return render.layouts(state.layouts.rows[i] for i in ids)
