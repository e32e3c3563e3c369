"""How Finesse reads a request target: one model for keys, cache rules and purges.

Finesse runs on Tomcat, whose defaults (shared/finesse/API.md) are: path parameters
(``;name=value``) are removed from every segment, ``%XX`` is decoded (UTF-8), ``//`` is
merged, ``.`` and ``..`` segments are resolved (``..`` above the root is refused), an
encoded ``/`` or ``\\`` (``%2F``, ``%5C``) is refused with 400, and mapping is
case-sensitive. Its REST layer reads numeric ids as Java's ``Integer.parseInt`` does:
``01``, ``+1`` and ``+01`` are all 1.

`read_path` applies exactly that to a raw path and gives the path Finesse maps, or None
("ambiguous") when the model can't be sure what Finesse would do: invalid or
non-ASCII encodings, control characters, an encoded slash or backslash, a raw backslash,
``..`` above the root, and the characters Tomcat refuses raw in a target (``"<>[\\]^`{|}``
and ``#``, which a URL library would cut off as a fragment). Callers never cache an
ambiguous target and purge conservatively for an ambiguous write. `java_int` is
``parseInt``.
"""

from __future__ import annotations

import posixpath
import re
from typing import Final
from urllib.parse import unquote_to_bytes

_PLAIN: Final = re.compile(r"/[A-Za-z0-9_\-./~!$&'()*+,=:@]*")
"""Targets with nothing to decode, strip or merge: checked by one regular expression."""
_HEX: Final = re.compile(r"%[0-9A-Fa-f]{2}")
#: Refused raw by Tomcat ("Invalid character found in the request target"), or, for `#`,
#: the start of a fragment that never reaches Finesse.
REFUSED_RAW: Final = frozenset('\\"<>[]^`{|}# ')
_INT: Final = re.compile(r"[+-]?[0-9]+")
INT_MIN: Final = -(2**31)
INT_MAX: Final = 2**31 - 1


def read_path(raw_path: str) -> str | None:
    """The path Finesse maps for `raw_path` (no query), or None if that is uncertain.

    A plain path (the common case: no ``%``, ``;``, ``//`` or dot segment) is its own
    reading, returned without work beyond one match.
    """
    if _PLAIN.fullmatch(raw_path) and "//" not in raw_path and "/." not in raw_path:
        return raw_path
    if not raw_path.startswith("/") or any(char in raw_path for char in REFUSED_RAW):
        return None
    if "%" in raw_path and len(_HEX.findall(raw_path)) != raw_path.count("%"):
        return None  # a % that is not %XX
    segments: list[str] = []
    for raw_segment in raw_path.split("/")[1:]:
        segment = _decode(raw_segment.partition(";")[0])
        if segment is None:
            return None
        segments.append(segment)
    if _climbs_above_root(segments):
        return None
    normal = posixpath.normpath("/" + "/".join(segments))
    if normal.startswith("//"):  # posixpath keeps a leading double slash
        normal = "/" + normal.lstrip("/")
    # Tomcat keeps a trailing slash, and makes one of a trailing `.` or `..`
    trailing = segments[-1] in ("", ".", "..")
    return normal + "/" if trailing and normal != "/" else normal


def _decode(segment: str) -> str | None:
    """One segment decoded as Tomcat does, or None if it holds what the model won't read."""
    if "%" not in segment:
        decoded = segment
    else:
        raw = unquote_to_bytes(segment)
        if b"/" in raw or b"\\" in raw:
            return None  # %2F, %5C: Tomcat refuses them
        try:
            decoded = raw.decode("ascii")
        except UnicodeDecodeError:
            return None
    if not (decoded.isascii() and decoded.isprintable()) or " " in decoded or "%" in decoded:
        return None  # a decoded "%" is a double encoding, which another layer may decode
    return decoded


def _climbs_above_root(segments: list[str]) -> bool:
    depth = 0
    for segment in segments:
        if segment == "..":
            depth -= 1
            if depth < 0:
                return True
        elif segment not in ("", "."):
            depth += 1
    return False


def java_int(text: str) -> int | None:
    """`text` as Java's ``Integer.parseInt`` reads it (sign, leading zeros), or None."""
    if not _INT.fullmatch(text):
        return None
    value = int(text)
    return value if INT_MIN <= value <= INT_MAX else None
