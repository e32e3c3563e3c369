"""Facts from Finesse User answers and Basic credentials: who a credential belongs to."""

from __future__ import annotations

import base64
import binascii
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Final

from webproxy.cache.access import Identity
from webproxy.cache.routing import java_int

USER_PATH: Final = re.compile(r"^/finesse/api/User/([^/\s]+)\Z")
"""A single user's URL; group 1 is the id in the path."""

MAX_USER_BYTES: Final = 256 * 1024
"""A User document is a few KiB; anything far larger is not parsed."""


@dataclass(frozen=True, slots=True)
class FinesseUser:
    """The fields of a ``<User>`` document the proxy needs."""

    login_id: str
    login_name: str | None
    roles: frozenset[str]
    team_id: str | None
    """The user's own team (``<teamId>``); ``<teams>`` lists the teams a supervisor supervises."""


class _DeclarationRefused(Exception):
    """A DOCTYPE in a User answer: parsing stops before any entity can be declared."""


class _UserTreeBuilder(ET.TreeBuilder):
    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        raise _DeclarationRefused(name)


def _text(element: ET.Element, path: str) -> str | None:
    text = element.findtext(path)
    if text is None:
        return None
    return text.strip() or None


def parse_user(body: bytes) -> FinesseUser | None:
    """The User in a Finesse ``<User>`` XML body; None if it is anything else.

    Refuses any DOCTYPE (so no entity can be declared, let alone expanded): a byte check for
    the usual spellings, and a parser hook that stops at the declaration in any encoding.
    Needs a non-empty ``<loginId>``; ``<roles><role>`` and ``<teamId>`` may be absent.
    """
    if len(body) > MAX_USER_BYTES or b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        return None
    parser = ET.XMLParser(target=_UserTreeBuilder())
    try:
        parser.feed(body)
        root = parser.close()
    except (ET.ParseError, _DeclarationRefused):
        return None
    if root.tag != "User":
        return None
    login_id = _text(root, "loginId")
    if login_id is None:
        return None
    roles = (role.text.strip() for role in root.iterfind("roles/role") if role.text)
    return FinesseUser(
        login_id=login_id,
        login_name=_text(root, "loginName"),
        roles=frozenset(role for role in roles if role),
        team_id=_text(root, "teamId"),
    )


def basic_username(authorization: str) -> str | None:
    """The user name in ``Basic base64(user:password)``; None for any other or malformed value."""
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, colon, _ = decoded.partition(":")
    return username if colon and username else None


def binds_identity(authorization: str, path_user_id: str, user: FinesseUser) -> bool:
    """True only when a 200 to ``GET /finesse/api/User/{path_user_id}`` describes the caller.

    Finesse authenticates Basic credentials by the user's id, its ``loginId``
    (shared/finesse/API.md 2.1), and REST paths name users by it too. So the path's id,
    the answer's ``loginId`` and the Basic user name must all be one. ``loginName`` never
    counts: one user's loginName may equal another's id, and a supervisor ``S`` reading
    ``User/X`` whose loginName is ``S`` would otherwise bind S's credential to X's team.
    A supervisor or administrator reading someone else binds nothing. Bearer tokens never
    bind: the proxy has no user claim Finesse has verified.
    """
    username = basic_username(authorization)
    if username is None:
        return False
    return path_user_id == user.login_id == username


def identity_of(user: FinesseUser) -> Identity:
    """The identity a bound credential carries: the user's loginId, roles and own team
    (as Finesse reads a team id: `05000` is team 5000)."""
    team = user.team_id
    number = java_int(team) if team is not None else None
    team = str(number) if number is not None else team
    return Identity(user_id=user.login_id, roles=user.roles, team_id=team)
