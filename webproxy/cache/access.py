"""Who may receive a cached entry: only credentials Finesse has accepted for its scope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from webproxy.cache.rules import Scope

AGENT: Final = "Agent"
SUPERVISOR: Final = "Supervisor"
ADMINISTRATOR: Final = "Administrator"
TEAM_MEMBER_ROLES: Final = frozenset({AGENT, SUPERVISOR})
"""Finesse serves TeamResource to the team's agents and supervisors, not to administrators."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a credential belongs to, from a Finesse User answer that bound it (see users)."""

    user_id: str
    roles: frozenset[str]
    team_id: str | None


@dataclass(frozen=True, slots=True)
class Grants:
    """What Finesse has told us about one credential (live facts only; the caller filters)."""

    identity: Identity | None
    approved: frozenset[Scope]
    """Scopes for which a 2xx from that scope's own URL approved this credential."""


def may_receive(grants: Grants | None, scope: Scope) -> bool:
    """True when a credential with `grants` may be served an entry of `scope` from cache.

    Approval of that exact scope always suffices: Finesse itself answered this credential
    for it. Otherwise a global scope needs any live identity (every signed-in Finesse user
    loads those at desktop start), and a team scope an identity whose own ``teamId`` is the
    team and whose roles include Agent or Supervisor. An Administrator without either role
    gets team entries only through approval (Finesse refuses them TeamResource), and a
    supervisor of other teams only through approval too (unconfirmed whether Finesse lets
    them read those teams). Everything else is forwarded, so Finesse decides.
    """
    if grants is None:
        return False
    return entitled(grants.identity, scope in grants.approved, scope)


def entitled(identity: Identity | None, approved: bool, scope: Scope) -> bool:
    """`may_receive` from its parts: who the credential is (None: unknown) and whether
    Finesse approved it for `scope`. The identity book's `allows` asks this on every hit
    without building `Grants`."""
    if approved:
        return True
    if identity is None:
        return False
    if scope.team is None:
        return True
    return identity.team_id == scope.team and not TEAM_MEMBER_ROLES.isdisjoint(identity.roles)
