"""Who may receive a cached entry of a scope."""

from __future__ import annotations

import pytest

from webproxy.cache.access import Grants, Identity, may_receive
from webproxy.cache.rules import Resource, Scope

CHAT = Scope(Resource.CHAT_CONFIG)
ECC = Scope(Resource.ECC_VARIABLE_CONFIG)
TEAM_5000 = Scope(Resource.TEAM_RESOURCE, "5000")
TEAM_5001 = Scope(Resource.TEAM_RESOURCE, "5001")

AGENT_5000 = Identity("1001", frozenset({"Agent"}), "5000")
SUPERVISOR_5000 = Identity("2001", frozenset({"Agent", "Supervisor"}), "5000")
ADMIN = Identity("admin", frozenset({"Administrator"}), None)
ADMIN_WITH_TEAM = Identity("admin", frozenset({"Administrator"}), "5000")
UCCX_AGENT_ADMIN = Identity("1002", frozenset({"Agent", "Administrator"}), "5000")
NO_TEAM_AGENT = Identity("1003", frozenset({"Agent"}), None)


def grants(identity: Identity | None = None, *approved: Scope) -> Grants:
    return Grants(identity=identity, approved=frozenset(approved))


@pytest.mark.parametrize(
    ("held", "scope", "expected"),
    [
        (None, CHAT, False),
        (None, TEAM_5000, False),
        (grants(), CHAT, False),
        (grants(), TEAM_5000, False),
        (grants(AGENT_5000), CHAT, True),
        (grants(AGENT_5000), TEAM_5000, True),
        (grants(AGENT_5000), TEAM_5001, False),
        (grants(SUPERVISOR_5000), TEAM_5000, True),
        (grants(SUPERVISOR_5000), TEAM_5001, False),
        (grants(SUPERVISOR_5000, TEAM_5001), TEAM_5001, True),
        (grants(ADMIN), CHAT, True),
        (grants(ADMIN), TEAM_5000, False),
        (grants(ADMIN_WITH_TEAM), TEAM_5000, False),
        (grants(ADMIN, TEAM_5000), TEAM_5000, True),
        (grants(UCCX_AGENT_ADMIN), TEAM_5000, True),
        (grants(NO_TEAM_AGENT), TEAM_5000, False),
        (grants(None, CHAT), CHAT, True),
        (grants(None, CHAT), ECC, False),
        (grants(None, TEAM_5000), TEAM_5000, True),
        (grants(None, TEAM_5000), TEAM_5001, False),
        (grants(None, TEAM_5000), CHAT, False),
        (grants(AGENT_5000, TEAM_5001), TEAM_5001, True),
    ],
    ids=[
        "no-grants-global",
        "no-grants-team",
        "empty-grants-global",
        "empty-grants-team",
        "agent-global",
        "agent-own-team",
        "agent-other-team",
        "supervisor-own-team",
        "supervisor-other-team",
        "supervisor-approved-for-supervised-team",
        "admin-global",
        "admin-team",
        "admin-whose-user-names-the-team",
        "admin-approved-for-team",
        "uccx-agent-with-admin-privilege-own-team",
        "agent-without-team",
        "approval-only-global",
        "approval-is-per-resource",
        "approval-only-team",
        "team-approval-is-per-team",
        "team-approval-is-not-global",
        "agent-approved-for-another-team",
    ],
)
def test_may_receive(held: Grants | None, scope: Scope, expected: bool) -> None:
    assert may_receive(held, scope) is expected
