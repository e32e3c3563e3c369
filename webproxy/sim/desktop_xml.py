"""XML in Finesse's shapes for live desktop objects: users, dialogs, queues, teams, media."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from webproxy.sim.data import Role, TeamSpec, UserSpec
from webproxy.sim.records import (
    AgentStatus,
    Dialog,
    MediaDomain,
    MediaStatus,
    Queue,
    TeamMessage,
)
from webproxy.sim.render import API, leaf, node

DIALOG_ACTIONS = ("HOLD", "DROP", "UPDATE_CALL_DATA", "SEND_DTMF", "START_RECORDING")


def roles(user: UserSpec) -> ET.Element:
    if user.role is Role.ADMINISTRATOR:
        return node("roles", leaf("role", "Administrator"))
    names = ("Agent", "Supervisor") if user.role is Role.SUPERVISOR else ("Agent",)
    return node("roles", *(leaf("role", name) for name in names))


def team_ref(team: TeamSpec) -> ET.Element:
    return node("Team", leaf("id", team.id), leaf("name", team.name), leaf("uri", team_uri(team)))


def team_uri(team: TeamSpec) -> str:
    return f"{API}/Team/{team.id}"


def user(spec: UserSpec, status: AgentStatus, teams: Mapping[str, TeamSpec]) -> ET.Element:
    """The full User object, as GET /finesse/api/User/{id} answers."""
    team = teams.get(spec.team_id or "")
    element = node(
        "User",
        leaf("uri", f"{API}/User/{spec.login_id}"),
        leaf("loginId", spec.login_id),
        leaf("loginName", spec.login_name),
        leaf("firstName", spec.first_name),
        leaf("lastName", spec.last_name),
        leaf("extension", status.extension),
        leaf("dialogs", f"{API}/User/{spec.login_id}/Dialogs"),
        leaf("mediaType", 1),
        leaf("pendingState"),
        leaf("reasonCodeId", -1 if status.reason_code_id is None else status.reason_code_id),
        roles(spec),
        node(
            "settings",
            leaf("wrapUpOnIncoming", "OPTIONAL"),
            leaf("wrapUpOnOutgoing", "OPTIONAL"),
        ),
        leaf("state", status.state),
        leaf("stateChangeTime", status.changed_at),
        leaf("teamId", None if team is None else team.id),
        leaf("teamName", None if team is None else team.name),
        node("teams", *(team_ref(teams[t]) for t in spec.teams if t in teams)),
        leaf("wrapUpTimer", 7200),
    )
    if status.mobile_agent is not None:
        mobile = status.mobile_agent
        element.append(
            node("mobileAgent", leaf("mode", mobile.mode), leaf("dialNumber", mobile.dial_number))
        )
    return element


def users(
    rows: Iterable[tuple[UserSpec, AgentStatus]], teams: Mapping[str, TeamSpec]
) -> ET.Element:
    return node("Users", *(user(spec, status, teams) for spec, status in rows))


def team_member(spec: UserSpec, status: AgentStatus) -> ET.Element:
    return node(
        "User",
        leaf("uri", f"{API}/User/{spec.login_id}"),
        leaf("loginId", spec.login_id),
        leaf("firstName", spec.first_name),
        leaf("lastName", spec.last_name),
        leaf("dialogs", f"{API}/User/{spec.login_id}/Dialogs"),
        leaf("extension", status.extension),
        leaf("pendingState"),
        leaf("state", status.state),
        leaf("stateChangeTime", status.changed_at),
    )


def team(spec: TeamSpec, members: Iterable[tuple[UserSpec, AgentStatus]]) -> ET.Element:
    return node(
        "Team",
        leaf("uri", team_uri(spec)),
        leaf("id", spec.id),
        leaf("name", spec.name),
        node("users", *(team_member(u, s) for u, s in members)),
    )


def teams(rows: Iterable[TeamSpec]) -> ET.Element:
    return node(
        "Teams",
        *(
            node("Team", leaf("uri", team_uri(t)), leaf("id", t.id), leaf("name", t.name))
            for t in rows
        ),
    )


def dialog(row: Dialog, extension: str) -> ET.Element:
    participant = node(
        "Participant",
        node("actions", *(leaf("action", a) for a in DIALOG_ACTIONS)),
        leaf("mediaAddress", extension),
        leaf("mediaAddressType", "AGENT_DEVICE"),
        leaf("startTime", row.started_at),
        leaf("state", row.state),
        leaf("stateCause"),
        leaf("stateChangeTime", row.started_at),
    )
    return node(
        "Dialog",
        leaf("uri", f"{API}/Dialog/{row.id}"),
        leaf("id", row.id),
        leaf("associatedDialogUri"),
        leaf("fromAddress", row.from_address),
        leaf("toAddress", row.to_address),
        leaf("mediaType", "Voice"),
        node(
            "mediaProperties",
            leaf("DNIS", row.to_address),
            leaf("callType", "OUT"),
            leaf("dialedNumber", row.to_address),
            node("callvariables", *(call_variable(i) for i in range(1, 4))),
        ),
        node("participants", participant),
        leaf("state", row.state),
    )


def call_variable(index: int) -> ET.Element:
    return node("CallVariable", leaf("name", f"callVariable{index}"), leaf("value"))


def dialogs(rows: Iterable[Dialog], extension: str) -> ET.Element:
    return node("Dialogs", *(dialog(row, extension) for row in rows))


def queue(row: Queue, states: Iterable[str]) -> ET.Element:
    """A queue with statistics computed from its team's current states."""
    counts = {"READY": 0, "NOT_READY": 0, "TALKING": 0, "LOGGED_ON": 0}
    for state in states:
        if state != "LOGOUT":
            counts["LOGGED_ON"] += 1
        if state in counts:
            counts[state] += 1
    stats = node(
        "statistics",
        leaf("callsInQueue", 0),
        leaf("startTimeOfLongestCallInQueue"),
        leaf("agentsReady", counts["READY"]),
        leaf("agentsNotReady", counts["NOT_READY"]),
        leaf("agentsBusyOther", 0),
        leaf("agentsLoggedOn", counts["LOGGED_ON"]),
        leaf("agentsTalkingInbound", counts["TALKING"]),
        leaf("agentsTalkingOutbound", 0),
        leaf("agentsTalkingInternal", 0),
        leaf("agentsWrapUpNotReady", 0),
        leaf("agentsWrapUpReady", 0),
    )
    return node("Queue", leaf("uri", f"{API}/Queue/{row.id}"), leaf("name", row.name), stats)


def queues(rows: Iterable[ET.Element]) -> ET.Element:
    return node("Queues", *rows)


def team_message(row: TeamMessage, author: UserSpec | None) -> ET.Element:
    created_by = node(
        "createdBy",
        leaf("id", row.created_by),
        leaf("firstName", None if author is None else author.first_name),
        leaf("lastName", None if author is None else author.last_name),
    )
    return node(
        "TeamMessage",
        leaf("uri", f"{API}/TeamMessage/{row.id}"),
        leaf("id", row.id),
        created_by,
        leaf("createdAt", row.created_at),
        leaf("duration", row.duration),
        leaf("content", row.content),
        node("teams", *(leaf("team", t) for t in row.teams)),
    )


def team_messages(rows: Iterable[ET.Element]) -> ET.Element:
    return node("TeamMessages", *rows)


def media(login_id: str, domain: MediaDomain, status: MediaStatus) -> ET.Element:
    reason = -1 if status.reason_code_id is None else status.reason_code_id
    return node(
        "Media",
        leaf("uri", f"{API}/User/{login_id}/Media/{domain.id}"),
        leaf("id", domain.id),
        leaf("name", domain.name),
        leaf("description", domain.description),
        leaf("dialogLogoutAction", "CLOSE"),
        leaf("interruptible", domain.interruptible),
        leaf("maxDialogLimit", domain.max_dialog_limit),
        leaf("reasonCodeId", reason),
        leaf("routable", status.state != "LOGOUT"),
        leaf("state", status.state),
        leaf("stateChangeTime", status.changed_at),
    )


def media_list(rows: Iterable[ET.Element]) -> ET.Element:
    return node("MediaList", *rows)


def system_info(host: str) -> ET.Element:
    """SystemInfo of a single-node UCCE deployment in service; `host` names the node."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    primary = node(
        "primaryNode",
        leaf("host", host),
        leaf("httpsPort", 8445),
        leaf("xmppPort", 5222),
        leaf("xmppSecurePort", 5223),
    )
    return node(
        "SystemInfo",
        leaf("currentTimestamp", now),
        leaf("deploymentType", "UCCE"),
        leaf("lastCTIHeartbeatStatus", "SUCCESS"),
        leaf("ctiVersion", "20"),
        leaf("license"),
        leaf("peripheralId", 5000),
        primary,
        leaf("status", "IN_SERVICE"),
        leaf("statusReason"),
        leaf("systemAuthMode", "NON_SSO"),
        leaf("timezoneOffset", 0),
        leaf("uri", f"{API}/SystemInfo"),
        leaf("xmppDomain", host),
        leaf("xmppPubSubDomain", f"pubsub.{host}"),
        node(
            "ctiServers",
            node("ctiServer", leaf("host", "cg-a.example.com"), leaf("active", True)),
        ),
    )


def user_auth_mode(login: str) -> ET.Element:
    return node("UserAuthMode", leaf("loginName", login), leaf("authMode", "NON_SSO"))
