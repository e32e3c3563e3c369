"""The simulator reads request targets as Finesse's Tomcat does, so spellings route alike.

Written apart from the proxy's own model (`webproxy.cache.routing`), step by step as
Tomcat's CoyoteAdapter goes: characters its parser refuses raw (``"<>[\\]^`{|}``) give
400; path parameters (``;name=value``) are cut from each segment,
``%XX`` is decoded as UTF-8, an encoded ``/`` or ``\\`` is refused (400), so is a raw
backslash, ``//`` is merged, ``.`` and ``..`` are resolved (400 above the root). Then, as
Finesse's REST layer reads ``{teamId}`` with ``Integer.parseInt``, the segment after
``Team`` or ``TeamResource`` is read as a Java int. The property tests check the proxy's
model against this reading.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import unquote

TEAM_PARENTS: Final = ("Team", "TeamResource")
#: What Tomcat's request-line parser refuses raw (relaxedPathChars empty, its default).
INVALID: Final = '"<>[]^`{|} #'

API: Final = ("finesse", "api")


class Refused(ValueError):
    """Tomcat answers 400 for this target."""


def tomcat_path(raw_path: str) -> str:
    """The path Tomcat maps for a raw request path (no query); `Refused` for a 400."""
    if not raw_path.startswith("/"):
        raise Refused("not origin-form")
    if any(char in INVALID for char in raw_path):
        raise Refused("Invalid character found in the request target")
    stripped = "/".join(segment.split(";", 1)[0] for segment in raw_path.split("/"))
    if "\\" in stripped or any(code in stripped.lower() for code in ("%2f", "%5c")):
        raise Refused("an encoded or raw slash or backslash")
    _check_escapes(stripped)
    try:
        decoded = unquote(stripped, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise Refused("not UTF-8") from None
    return _normalise(decoded)


def _check_escapes(path: str) -> None:
    for at, char in enumerate(path):
        if char == "%":
            pair = path[at + 1 : at + 3]
            if len(pair) != 2 or any(c not in "0123456789abcdefABCDEF" for c in pair):
                raise Refused("a bad %-escape")


def _normalise(path: str) -> str:
    kept: list[str] = []
    parts = path.split("/")[1:]
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part in ("", "."):
            if last and kept:  # a trailing slash survives
                kept.append("")
            continue
        if part == "..":
            if not kept:
                raise Refused("above the root")
            kept.pop()
            if last:
                kept.append("")
            continue
        kept.append(part)
    return "/" + "/".join(kept)


def parse_int(text: str) -> int | None:
    """Java's ``Integer.parseInt``: an optional sign, then ASCII digits, in 32 bits."""
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body or not all("0" <= c <= "9" for c in body):
        return None
    value = int(text)
    return value if -(2**31) <= value < 2**31 else None


def finesse_path(raw_path: str) -> str:
    """`tomcat_path`, with a team id after ``Team``/``TeamResource`` read as Finesse reads it."""
    segments = tomcat_path(raw_path).split("/")
    if len(segments) > 4 and tuple(segments[1:3]) == API and segments[3] in TEAM_PARENTS:
        team = parse_int(segments[4])
        if team is not None:
            segments[4] = str(team)
    return "/".join(segments)
