"""Finesse's pubsub nodes in the simulator: who hears which node, and the `<Update>`
notifications the REST handlers publish after a change (shared/finesse/API.md §4).

Every bound session is subscribed to its user's nodes `/finesse/api/User/{id}`,
`/finesse/api/User/{id}/Dialogs` and `/finesse/api/SystemInfo`, as Finesse does. A
supervisor (or an administrator) may also subscribe to `/finesse/api/Team/{id}/Users` of a
team they supervise; a user's Update goes there as well. Events reach every bound session
so subscribed, available or not, as a pubsub node without presence-based delivery does.

The Update's shapes: a User change is `<Update><data><user>...</user></data><event>PUT`
`</event><requestId/><source>/finesse/api/User/{id}</source></Update>`, its `<user>` the
User object a GET answers; a Dialog change goes to the owner's Dialogs node as
`<data><dialogs><Dialog>...</Dialog></dialogs></data>`, event POST (a new call, source the
user's Dialogs) or PUT/DELETE (source the Dialog; a DROP is its last PUT, state DROPPED,
and then DELETE). `<requestId>` carries the REST request's `requestId` header.
"""

from __future__ import annotations

import re
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import replace
from typing import Final

from webproxy.sim import desktop_xml
from webproxy.sim.auth import is_admin
from webproxy.sim.data import UserSpec
from webproxy.sim.records import Dialog
from webproxy.sim.render import API, leaf, node
from webproxy.sim.state import SimState
from webproxy.sim.xmlstream import add, make, split, to_text
from webproxy.sim.xmpp import NS_DISCO_INFO, NS_PUBSUB, XmppSession, disco_info

TEAM_USERS: Final = re.compile(rf"{API}/Team/([^/]+)/Users")
RESOURCE: Final = re.compile(r"[^\s/@\x00-\x1f]{1,128}")


def own_nodes(login_id: str) -> set[str]:
    """The nodes Finesse subscribes a user's session to."""
    return {f"{API}/User/{login_id}", f"{API}/User/{login_id}/Dialogs", f"{API}/SystemInfo"}


class NotificationHub:
    """The bound XMPP sessions by user, and the nodes each hears."""

    def __init__(self, state: SimState) -> None:
        self.state = state
        self.sessions: dict[str, list[XmppSession]] = {}
        self.last_id = 0
        self.published = 0
        self.delivered = 0

    @property
    def logins(self) -> Mapping[str, UserSpec]:
        return self.state.logins

    def new_id(self) -> str:
        self.last_id += 1
        return f"{self.last_id}-{secrets.token_hex(4)}"

    # -- sessions -----------------------------------------------------------------------
    def bind(self, session: XmppSession, wanted: str) -> str:
        """The resource the session gets: the one asked for if free, else a new one."""
        assert session.user is not None
        peers = self.sessions.setdefault(session.user.login_id, [])
        taken = {peer.resource for peer in peers}
        free = RESOURCE.fullmatch(wanted) is not None and wanted not in taken
        resource = wanted if free else f"sim-{secrets.token_hex(4)}"
        peers.append(session)
        session.nodes |= own_nodes(session.user.login_id)
        return resource

    def unbind(self, session: XmppSession) -> None:
        assert session.user is not None
        peers = self.sessions.get(session.user.login_id, [])
        if session in peers:
            peers.remove(session)

    def resources(self, login_id: str) -> list[XmppSession]:
        return list(self.sessions.get(login_id, ()))

    def may_subscribe(self, user: UserSpec, name: str) -> bool:
        if name in own_nodes(user.login_id):
            return True
        team = TEAM_USERS.fullmatch(name)
        return team is not None and (is_admin(user) or team[1] in user.teams)

    def node_exists(self, name: str) -> bool:
        if (team := TEAM_USERS.fullmatch(name)) is not None:
            return team[1] in self.state.teams
        return any(name in own_nodes(login_id) for login_id in self.state.users)

    # -- XEP-0060 subscriptions ---------------------------------------------------------
    def pubsub_request(self, session: XmppSession, iq: ET.Element, payload: ET.Element) -> None:
        """An iq to pubsub.<domain>: disco#info, or one subscribe or unsubscribe."""
        kind = iq.get("type")
        if kind == "get" and split(payload.tag) == (NS_DISCO_INFO, "query"):
            identity = {"category": "pubsub", "type": "service"}
            session.result(iq, disco_info(identity, NS_DISCO_INFO, NS_PUBSUB))
            return
        action = payload[0] if len(payload) == 1 else None
        if kind != "set" or split(payload.tag) != (NS_PUBSUB, "pubsub") or action is None:
            session.refuse(iq, "cancel", "feature-not-implemented")
            return
        namespace, verb = split(action.tag)
        name, jid = action.get("node", ""), action.get("jid", session.bare)
        assert session.user is not None
        if namespace != NS_PUBSUB or verb not in ("subscribe", "unsubscribe"):
            session.refuse(iq, "cancel", "feature-not-implemented")
        elif jid.partition("/")[0] != session.bare:
            session.refuse(iq, "modify", "bad-request")
        elif not self.node_exists(name):
            session.refuse(iq, "cancel", "item-not-found")
        elif not self.may_subscribe(session.user, name):
            session.refuse(iq, "auth", "forbidden")
        elif verb == "unsubscribe":
            session.nodes.discard(name)
            session.result(iq)
        else:
            session.nodes.add(name)
            attrs = {"node": name, "jid": jid, "subscription": "subscribed"}
            session.result(iq, add(make("pubsub", NS_PUBSUB), make("subscription", attrs=attrs)))

    # -- publishing ---------------------------------------------------------------------
    def publish(self, name: str, update: ET.Element) -> int:
        """Send `update` to every session subscribed to node `name`; how many got it."""
        text = to_text(update)
        self.published += 1
        count = 0
        for peers in list(self.sessions.values()):
            for session in peers:
                if name in session.nodes and not session.ended:
                    session.event(name, self.new_id(), text)
                    count += 1
        self.delivered += count
        return count

    def user_changed(self, login_id: str, request_id: str = "") -> None:
        """A User Update after a state change, to the user's node and their team's."""
        spec, status = self.state.users[login_id], self.state.status[login_id]
        user = desktop_xml.user(spec, status, self.state.teams)
        user.tag = "user"
        source = f"{API}/User/{login_id}"
        self.publish(source, update(user, "PUT", request_id, source))
        if spec.team_id is not None:
            self.publish(
                f"{API}/Team/{spec.team_id}/Users", update(user, "PUT", request_id, source)
            )

    def dialog_changed(self, dialog: Dialog, event: str, request_id: str = "") -> None:
        """A Dialog Update: POST for a new call, PUT for a change, DELETE once dropped."""
        extension = self.state.status[dialog.owner].extension
        target = f"{API}/User/{dialog.owner}/Dialogs"
        source = target if event == "POST" else f"{API}/Dialog/{dialog.id}"
        if event == "DELETE":
            dialog = replace(dialog, state="DROPPED")
            self.dialog_changed(dialog, "PUT", request_id)
        data = node("dialogs", desktop_xml.dialog(dialog, extension))
        self.publish(target, update(data, event, request_id, source))


def update(data: ET.Element, event: str, request_id: str, source: str) -> ET.Element:
    return node(
        "Update",
        node("data", data),
        leaf("event", event),
        leaf("requestId", request_id or None),
        leaf("source", source),
    )
