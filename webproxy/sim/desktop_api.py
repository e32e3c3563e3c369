"""Desktop APIs: User(s), Dialog(s), Queue(s), Media and ClientLog, with Finesse's role rules.

Agents act on their own User, supervisors also on users of the teams they supervise,
administrators read anyone. State changes answer 202 with an empty body and show in later
reads; a LOGIN shows as NOT_READY, as Finesse puts a signed-in agent there. Each User
state change and each call made or acted on is also published as a notification
(`sim.pubsub`), with the request's `requestId` header in it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from typing import Final

from aiohttp import web

from webproxy.sim import body, desktop_xml, reply
from webproxy.sim.auth import caller, is_admin, require_sight, supervises
from webproxy.sim.data import Role, UserSpec
from webproxy.sim.errors import ApiError, invalid_input, invalid_user, missing, not_found
from webproxy.sim.pubsub import NotificationHub
from webproxy.sim.records import AgentStatus, Category, Dialog, MediaStatus, MobileAgent
from webproxy.sim.state import SimState, timestamp

API: Final = "/finesse/api"
USER_STATES: Final = frozenset({"LOGIN", "READY", "NOT_READY", "LOGOUT", "WORK", "WORK_READY"})
SUPERVISOR_STATES: Final = frozenset({"READY", "NOT_READY", "LOGOUT"})
DIALOG_STATES: Final = {"ANSWER": "ACTIVE", "HOLD": "HELD", "RETRIEVE": "ACTIVE"}
DIALOG_ACTIONS: Final = frozenset(
    {*DIALOG_STATES, "DROP", "CONSULT_CALL", "TRANSFER", "TRANSFER_SST", "CONFERENCE",
     "SEND_DTMF", "UPDATE_CALL_DATA", "SILENT_MONITOR", "BARGE_CALL", "START_RECORDING",
     "ACCEPT", "CLOSE", "REJECT"}
)  # fmt: skip


class DesktopRoutes:
    """Users, dialogs, queues, media and client logs, bound to a SimState."""

    def __init__(self, state: SimState, hub: NotificationHub) -> None:
        self.state = state
        self.hub = hub

    def add_to(self, router: web.UrlDispatcher) -> None:
        user = f"{API}/User/{{id}}"
        router.add_get(f"{API}/Users", self.list_users)
        router.add_get(user, self.get_user)
        router.add_put(user, self.put_user)
        router.add_get(f"{user}/Dialogs", self.get_dialogs)
        router.add_post(f"{user}/Dialogs", self.make_call)
        router.add_get(f"{API}/Dialog/{{dialog}}", self.get_dialog)
        router.add_put(f"{API}/Dialog/{{dialog}}", self.act_on_dialog)
        router.add_get(f"{user}/Queues", self.get_user_queues)
        router.add_get(f"{API}/Queue/{{queue}}", self.get_queue)
        router.add_get(f"{user}/Media", self.get_media_list)
        router.add_get(f"{user}/Media/{{mrd}}", self.get_media)
        router.add_put(f"{user}/Media/{{mrd}}", self.put_media)
        router.add_route("*", f"{user}/ClientLog", self.client_log)

    def target(self, request: web.Request, key: str = "id") -> UserSpec:
        """The user in the path, once the caller may see them."""
        user = caller(request)
        target = self.state.users.get(request.match_info[key])
        if target is None:
            if user.role is Role.AGENT:
                raise invalid_user(user.login_id)
            raise not_found("User", request.match_info[key])
        require_sight(user, target)
        return target

    def actor(self, request: web.Request) -> tuple[UserSpec, UserSpec]:
        """(caller, target) for a state change: oneself, or a supervised agent."""
        user, target = caller(request), self.target(request)
        if target is not user and not supervises(user, target):
            raise invalid_user(user.login_id)
        return user, target

    async def list_users(self, request: web.Request) -> web.Response:
        user = caller(request)
        if user.role is Role.AGENT:
            raise ApiError(401, "Authorization Failure", "UNAUTHORIZED", user.login_id)
        shown = self.state.users.values() if is_admin(user) else self.state.team_users(user.teams)
        rows = [(u, self.state.status[u.login_id]) for u in shown]
        return reply.xml(desktop_xml.users(rows, self.state.teams))

    async def get_user(self, request: web.Request) -> web.Response:
        target = self.target(request)
        status = self.state.status[target.login_id]
        return reply.xml(desktop_xml.user(target, status, self.state.teams))

    async def put_user(self, request: web.Request) -> web.Response:
        user, target = self.actor(request)
        element = await body.read_xml(request, "User")
        wanted = body.text(element, "state")
        if not wanted:
            raise missing("state")
        if wanted not in USER_STATES:
            raise invalid_input("state")
        reason = body.text(element, "reasonCodeId")
        if target is not user and wanted not in SUPERVISOR_STATES:
            raise invalid_user(user.login_id)
        if target is not user and reason:
            raise invalid_input("reasonCodeId")
        old = self.state.status[target.login_id]
        self.state.status[target.login_id] = AgentStatus(
            state="NOT_READY" if wanted == "LOGIN" else wanted,
            changed_at=timestamp(),
            extension=body.text(element, "extension") or old.extension,
            reason_code_id=self.reason_id(reason, wanted),
            mobile_agent=None if wanted == "LOGOUT" else mobile_agent(element, old.mobile_agent),
        )
        self.hub.user_changed(target.login_id, request_id(request))
        return reply.accepted()

    def reason_id(self, raw: str | None, wanted: str) -> int | None:
        """The reasonCodeId of a NOT_READY or LOGOUT, checked against its category."""
        if not raw:
            return None
        rc = self.state.reason_codes.get(int(raw)) if raw.isdigit() else None
        if rc is None or wanted not in Category.__members__ or rc.category != wanted:
            raise invalid_input("reasonCodeId")
        return rc.id

    async def get_dialogs(self, request: web.Request) -> web.Response:
        target = self.target(request)
        rows = [d for d in self.state.dialogs.values() if d.owner == target.login_id]
        return reply.xml(desktop_xml.dialogs(rows, self.state.status[target.login_id].extension))

    async def make_call(self, request: web.Request) -> web.Response:
        user, target = caller(request), self.target(request)
        if target is not user:
            raise invalid_user(user.login_id)
        element = await body.read_xml(request, "Dialog")
        if body.want(element, "requestedAction") != "MAKE_CALL":
            raise invalid_input("requestedAction")
        extension = self.state.status[user.login_id].extension
        from_address = body.want(element, "fromAddress", extension)
        to_address = body.want(element, "toAddress")
        dialog_id = self.state.new_dialog_id()
        dialog = Dialog(
            dialog_id, user.login_id, from_address, to_address, "INITIATED", timestamp()
        )
        self.state.dialogs[dialog_id] = dialog
        self.hub.dialog_changed(dialog, "POST", request_id(request))
        return reply.accepted()

    def dialog(self, request: web.Request) -> tuple[Dialog, UserSpec]:
        dialog = self.state.dialogs.get(request.match_info["dialog"])
        if dialog is None:
            raise not_found("Dialog", request.match_info["dialog"])
        owner = self.state.users[dialog.owner]
        require_sight(caller(request), owner)
        return dialog, owner

    async def get_dialog(self, request: web.Request) -> web.Response:
        dialog, owner = self.dialog(request)
        extension = self.state.status[owner.login_id].extension
        return reply.xml(desktop_xml.dialog(dialog, extension))

    async def act_on_dialog(self, request: web.Request) -> web.Response:
        dialog, owner = self.dialog(request)
        user = caller(request)
        if user is not owner and not supervises(user, owner):
            raise invalid_user(user.login_id)
        action = body.want(await body.read_xml(request, "Dialog"), "requestedAction")
        if action not in DIALOG_ACTIONS:
            raise invalid_input("requestedAction")
        if action == "DROP":
            del self.state.dialogs[dialog.id]
            self.hub.dialog_changed(dialog, "DELETE", request_id(request))
        elif action in DIALOG_STATES:
            changed = replace(dialog, state=DIALOG_STATES[action])
            self.state.dialogs[dialog.id] = changed
            self.hub.dialog_changed(changed, "PUT", request_id(request))
        return reply.accepted()

    def queue_xml(self, queue_id: str) -> ET.Element:
        queue = self.state.queues[queue_id]
        members = self.state.team_users([queue.team_id])
        return desktop_xml.queue(queue, (self.state.status[u.login_id].state for u in members))

    async def get_user_queues(self, request: web.Request) -> web.Response:
        target = self.target(request)
        ids = [q.id for q in self.state.queues.values() if q.team_id == target.team_id]
        return reply.xml(desktop_xml.queues(self.queue_xml(q) for q in ids))

    async def get_queue(self, request: web.Request) -> web.Response:
        """Agents and supervisors of the queue's team, and administrators."""
        user, queue_id = caller(request), request.match_info["queue"]
        queue = self.state.queues.get(queue_id)
        if queue is None:
            raise not_found("Queue", queue_id)
        if not (is_admin(user) or user.team_id == queue.team_id or queue.team_id in user.teams):
            raise invalid_user(user.login_id)
        return reply.xml(self.queue_xml(queue_id))

    def media_domain(self, request: web.Request) -> str:
        mrd = request.match_info["mrd"]
        if mrd not in {d.id for d in self.state.media_domains if d.name != "Cisco_Voice"}:
            raise not_found("Media", mrd)
        return mrd

    def media_xml(self, login_id: str, mrd: str) -> ET.Element:
        domain = next(d for d in self.state.media_domains if d.id == mrd)
        status = self.state.media.get((login_id, mrd), MediaStatus("LOGOUT", timestamp()))
        return desktop_xml.media(login_id, domain, status)

    async def get_media_list(self, request: web.Request) -> web.Response:
        target = self.target(request)
        mrds = [d.id for d in self.state.media_domains if d.name != "Cisco_Voice"]
        return reply.xml(desktop_xml.media_list(self.media_xml(target.login_id, m) for m in mrds))

    async def get_media(self, request: web.Request) -> web.Response:
        target = self.target(request)
        return reply.xml(self.media_xml(target.login_id, self.media_domain(request)))

    async def put_media(self, request: web.Request) -> web.Response:
        _, target = self.actor(request)
        mrd = self.media_domain(request)
        element = await body.read_xml(request, "Media")
        wanted = body.want(element, "state")
        if wanted not in ("LOGIN", "READY", "NOT_READY", "LOGOUT"):
            raise invalid_input("state")
        reason = self.reason_id(body.text(element, "reasonCodeId"), wanted)
        state = "NOT_READY" if wanted == "LOGIN" else wanted
        self.state.media[(target.login_id, mrd)] = MediaStatus(state, timestamp(), reason)
        return reply.accepted()

    async def client_log(self, request: web.Request) -> web.Response:
        """POST only (405 otherwise); a user posts only their own log."""
        if request.method != "POST":
            raise ApiError(
                405, "Method Not Allowed", "POST only", request.method, {"Allow": "POST"}
            )
        user, target = caller(request), self.target(request)
        if target is not user:
            raise invalid_user(user.login_id)
        body.want(await body.read_xml(request, "ClientLog"), "logData")
        return reply.accepted()


def request_id(request: web.Request) -> str:
    """The `requestId` header a desktop sends, echoed in the notification it causes."""
    return request.headers.get("requestId", "")


def mobile_agent(element: ET.Element, current: MobileAgent | None) -> MobileAgent | None:
    """The <mobileAgent> of a sign-in, if any; otherwise the one already set."""
    found = element.find("mobileAgent")
    if found is None:
        return current
    mode = body.want(found, "mode")
    if mode not in ("CALL_BY_CALL", "NAILED_CONNECTION"):
        raise invalid_input("mode")
    return MobileAgent(mode, body.want(found, "dialNumber"))
