"""Who is calling (HTTP Basic against the SimData users) and Finesse's role rules."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from typing import Final

from aiohttp import web

from webproxy.sim.data import Role, UserSpec
from webproxy.sim.errors import invalid_user, unauthorized

caller_key: Final = web.RequestKey("caller", UserSpec)


def authenticate(logins: Mapping[str, UserSpec], header: str | None) -> UserSpec:
    """The user whose loginId or loginName and password the Basic header carries.

    Raises the 401 Authorization Failure ApiError (ErrorData: the user name sent).
    """
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "basic":
        raise unauthorized("")
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise unauthorized("") from exc
    name, sep, password = decoded.partition(":")
    user = verify(logins, name, password) if sep else None
    if user is None:
        raise unauthorized(name)
    return user


def verify(logins: Mapping[str, UserSpec], name: str, password: str) -> UserSpec | None:
    """The user with this loginId or loginName and password (Basic and XMPP SASL PLAIN)."""
    user = logins.get(name)
    if user is None or not hmac.compare_digest(password.encode(), user.password.encode()):
        return None
    return user


def caller(request: web.Request) -> UserSpec:
    """The authenticated user of a /finesse/api request."""
    return request[caller_key]


def is_admin(user: UserSpec) -> bool:
    return user.role is Role.ADMINISTRATOR


def require_admin(user: UserSpec) -> None:
    """Config writes and lists: administrators only (401 Authorization Failure)."""
    if not is_admin(user):
        raise unauthorized(user.login_id)


def supervises(user: UserSpec, target: UserSpec) -> bool:
    return user.role is Role.SUPERVISOR and target.team_id in user.teams


def may_see(user: UserSpec, target: UserSpec) -> bool:
    """Agents see themselves, supervisors their teams' users, administrators anyone."""
    return user is target or is_admin(user) or supervises(user, target)


def require_sight(user: UserSpec, target: UserSpec) -> None:
    if not may_see(user, target):
        raise invalid_user(user.login_id)


def require_supervisor(user: UserSpec) -> None:
    """Supervisor-or-administrator calls (401 Authorization Failure for agents)."""
    if user.role is Role.AGENT:
        raise unauthorized(user.login_id)
