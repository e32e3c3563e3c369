"""The simulator's own JSON endpoints: /sim/stats, /sim/faults and /sim/users."""

from __future__ import annotations

import json

from aiohttp import web

from webproxy.sim.data import UserSpec
from webproxy.sim.faults import Fault, FaultBook
from webproxy.sim.state import SimState
from webproxy.sim.stats import RequestStats


class ControlRoutes:
    """GET/DELETE /sim/stats; GET/POST/DELETE /sim/faults. Neither is counted."""

    def __init__(self, stats: RequestStats, faults: FaultBook) -> None:
        self.stats = stats
        self.faults = faults

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_get("/sim/stats", self.get_stats)
        router.add_delete("/sim/stats", self.reset_stats)
        router.add_get("/sim/faults", self.list_faults)
        router.add_post("/sim/faults", self.add_fault)
        router.add_delete("/sim/faults", self.clear_faults)

    async def get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats.as_json())

    async def reset_stats(self, request: web.Request) -> web.Response:
        self.stats.reset()
        return web.Response(status=204)

    async def list_faults(self, request: web.Request) -> web.Response:
        return web.json_response({"faults": self.faults.active()})

    async def add_fault(self, request: web.Request) -> web.Response:
        """201 with the fault as stored; 400 with {"error": ...} if the JSON is wrong."""
        try:
            raw = json.loads(await request.read())
            if not isinstance(raw, dict):
                raise ValueError("expected a JSON object")
            fault = Fault.from_json(raw)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        self.faults.add(fault)
        return web.json_response(fault.to_json(), status=201)

    async def clear_faults(self, request: web.Request) -> web.Response:
        self.faults.clear()
        return web.Response(status=204)


class AccountRoutes:
    """PATCH /sim/users/{loginId}: change a password or a team at run time (not counted).

    The body is a JSON object with `password` and/or `teamId`; the answer is the user as
    now stored (without the password): 200, or 404 for an unknown user, 400 for anything
    else wrong (nothing is changed then).
    """

    def __init__(self, state: SimState) -> None:
        self.state = state

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_patch("/sim/users/{login}", self.change_user)

    async def change_user(self, request: web.Request) -> web.Response:
        login = request.match_info["login"]
        user = self.state.users.get(login)
        if user is None:
            return web.json_response({"error": f"unknown user {login!r}"}, status=404)
        try:
            password, team = self.read_change(await request.read(), user)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        if team is not None:  # checked: neither change can fail now
            self.state.move_user(login, team)
        if password is not None:
            self.state.set_password(login, password)
        return web.json_response(user_json(self.state.users[login]))

    def read_change(self, raw: bytes, user: UserSpec) -> tuple[str | None, str | None]:
        """(password, teamId) from the body, each None if absent; ValueError if wrong."""
        change = json.loads(raw)
        if not isinstance(change, dict) or not change or set(change) - {"password", "teamId"}:
            raise ValueError("expected a JSON object with password and/or teamId")
        password, team = change.get("password"), change.get("teamId")
        if not isinstance(password, str | None) or not isinstance(team, str | None):
            raise ValueError("password and teamId must be strings")
        if password == "":
            raise ValueError("the password must not be empty")
        if team is not None and user.team_id is None:
            raise ValueError(f"{user.login_id} is an administrator and belongs to no team")
        if team is not None and team not in self.state.teams:
            raise ValueError(f"unknown team {team!r}")
        return password, team


def user_json(user: UserSpec) -> dict[str, object]:
    return {
        "loginId": user.login_id,
        "loginName": user.login_name,
        "role": user.role.value,
        "teamId": user.team_id,
    }
