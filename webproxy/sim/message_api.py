"""Team messages: POST /finesse/api/TeamMessage (supervisors, admins), reads and deletes."""

from __future__ import annotations

import time
import uuid
from typing import Final

from aiohttp import web

from webproxy.sim import body, desktop_xml, reply
from webproxy.sim.auth import caller, is_admin, require_admin, require_supervisor
from webproxy.sim.data import UserSpec
from webproxy.sim.errors import invalid_user, missing, not_found
from webproxy.sim.records import TeamMessage
from webproxy.sim.state import SimState

API: Final = "/finesse/api"


class MessageRoutes:
    """Messages live for their `duration` seconds; expired ones read as 404."""

    def __init__(self, state: SimState) -> None:
        self.state = state

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_post(f"{API}/TeamMessage", self.create)
        router.add_get(f"{API}/TeamMessages", self.list_all)
        router.add_get(f"{API}/TeamMessage/{{id}}", self.get)
        router.add_delete(f"{API}/TeamMessage/{{id}}", self.delete)
        router.add_get(f"{API}/Team/{{team}}/TeamMessages", self.list_team)

    def active(self) -> list[TeamMessage]:
        now = time.time()
        for message in list(self.state.messages.values()):
            if message.created_at + message.duration < now:
                del self.state.messages[message.id]
        return list(self.state.messages.values())

    def render(self, messages: list[TeamMessage]) -> web.Response:
        users = self.state.users
        rows = (desktop_xml.team_message(m, users.get(m.created_by)) for m in messages)
        return reply.xml(desktop_xml.team_messages(rows))

    def on_team(self, user: UserSpec, teams: tuple[str, ...]) -> bool:
        return is_admin(user) or user.team_id in teams or bool(set(user.teams) & set(teams))

    async def create(self, request: web.Request) -> web.Response:
        user = caller(request)
        require_supervisor(user)
        element = await body.read_xml(request, "TeamMessage")
        duration = body.want_int(element, "duration", None, 1, 86400)
        content = body.want(element, "content", limit=255)
        found = element.find("teams")
        teams = (
            () if found is None else tuple(t.text.strip() for t in found.findall("team") if t.text)
        )
        if not teams:
            raise missing("teams")
        for team_id in teams:
            if team_id not in self.state.teams:
                raise not_found("Team", team_id)
            if not is_admin(user) and team_id not in user.teams:
                raise invalid_user(user.login_id)
        message_id = str(uuid.uuid4())
        created = int(time.time())
        self.state.messages[message_id] = TeamMessage(
            message_id, user.login_id, created, duration, content, teams
        )
        return reply.created(request, f"{API}/TeamMessage/{message_id}")

    def message(self, request: web.Request) -> TeamMessage:
        found = {m.id: m for m in self.active()}.get(request.match_info["id"])
        if found is None:
            raise not_found("TeamMessage", request.match_info["id"])
        return found

    async def list_all(self, request: web.Request) -> web.Response:
        require_admin(caller(request))
        return self.render(self.active())

    async def get(self, request: web.Request) -> web.Response:
        user, message = caller(request), self.message(request)
        if message.created_by != user.login_id and not self.on_team(user, message.teams):
            raise invalid_user(user.login_id)
        author = self.state.users.get(message.created_by)
        return reply.xml(desktop_xml.team_message(message, author))

    async def delete(self, request: web.Request) -> web.Response:
        """Only the creator or an administrator may delete a message."""
        user, message = caller(request), self.message(request)
        if message.created_by != user.login_id and not is_admin(user):
            raise invalid_user(user.login_id)
        del self.state.messages[message.id]
        return reply.done()

    async def list_team(self, request: web.Request) -> web.Response:
        user, team_id = caller(request), request.match_info["team"]
        if team_id not in self.state.teams:
            raise not_found("Team", team_id)
        if not self.on_team(user, (team_id,)):
            raise invalid_user(user.login_id)
        return self.render([m for m in self.active() if team_id in m.teams])
