"""Cache keys: the path Finesse reads, the query minus what Finesse ignores, keyed headers.

A key holds exactly what changes Finesse's answer, per the contract: the path, the query
without ``nocache`` and ``bypassServerCache``, and the request's ``Accept`` and ``Range``.
Headers a response names in ``Vary`` are checked against the entry (`select_headers`,
`vary_matches`). Nothing else a client sends reaches the key. Who may *receive* an entry
is not decided here (see ``access.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Final

IGNORED_QUERY_PARAMS: Final = frozenset({"nocache", "bypassServerCache"})
"""Dropped from the key: finesse.js adds ``nocache=<ms>`` to every GET to defeat browsers."""

KEYED_HEADERS: Final = ("accept", "range")
"""Request headers always in the key (lower case)."""

BYPASS_PARAM: Final = "bypassServerCache"

HeaderValues = tuple[tuple[str, tuple[str, ...]], ...]
"""Request header values by lower-case name, each with every field line the client sent."""


def _param_name(pair: str) -> str:
    return pair.partition("=")[0]


def canonical_query(query_string: str) -> str:
    """The raw query minus ignored parameters, sorted by name (stable within one name).

    Pairs are kept byte for byte (no decoding), so two queries share a key only if they
    differ just in the order of differently named parameters. Repeated names keep their
    relative order, because Tomcat's ``getParameter`` returns the first value. Empty pairs
    (``a=1&&b=2``) are dropped, as Tomcat does.
    """
    if not query_string:
        return ""
    ignored = IGNORED_QUERY_PARAMS
    pairs = [p for p in query_string.split("&") if p and p.partition("=")[0] not in ignored]
    if len(pairs) > 1:
        pairs.sort(key=_param_name)
    return "&".join(pairs)


def select_headers(headers: Mapping[str, str], names: Iterable[str]) -> HeaderValues:
    """Every value the request sent for each of `names` (case-insensitive), in `names` order.

    Iterates ``headers.items()``, so a multidict (aiohttp's ``CIMultiDictProxy``) yields
    each repeated field line; a plain dict is looked up case-insensitively too. A header the
    client did not send has an empty tuple, which differs from one sent empty (``("",)``).
    """
    wanted = [name.lower() for name in names]
    found: dict[str, list[str]] = {name: [] for name in wanted}
    for name, value in headers.items():
        values = found.get(name.lower())
        if values is not None:
            values.append(value)
    return tuple((name, tuple(found[name])) for name in wanted)


def build_key(path: str, query_string: str, headers: Mapping[str, str]) -> str:
    """The cache key for a GET of canonical `path` with `query_string` and request `headers`.

    Always pure ASCII (safe to hash or send to Redis whatever the client sent) and
    unambiguous (no header value can forge another key). The common case, at most one
    printable-ASCII value of each header, is ``<path>?<query>\n<a>\n<r>`` where each of
    `a`/`r` is ``-`` (absent) or ``+`` and the value: nothing in it can hold a newline.
    Anything else is a JSON array ``["<path>?<query>", [accept...], [range...]]``, which
    starts with ``[`` where the common form starts with ``/``, so the two never meet.
    """
    getall = getattr(headers, "getall", None)  # a multidict: every line of a name, quickly
    if getall is not None:
        accept: list[str] = getall("Accept", [])
        ranges: list[str] = getall("Range", [])
    else:
        accept, ranges = [], []
        for name, value in headers.items():
            lowered = name.lower()
            if lowered == "accept":
                accept.append(value)
            elif lowered == "range":
                ranges.append(value)
    return key_of(path, query_string, accept, ranges)


def key_of(path: str, query_string: str, accept: list[str], ranges: list[str]) -> str:
    """`build_key` from the request's `Accept` and `Range` values (every field line)."""
    query = canonical_query(query_string)
    if len(accept) < 2 and len(ranges) < 2 and _plain(accept) and _plain(ranges):
        return f"{path}?{query}\n{_field(accept)}\n{_field(ranges)}"
    return json.dumps([f"{path}?{query}", accept, ranges], separators=(",", ":"))


def _plain(values: list[str]) -> bool:
    return not values or (values[0].isascii() and values[0].isprintable())


def _field(values: list[str]) -> str:
    return f"+{values[0]}" if values else "-"


def vary_matches(stored: HeaderValues, headers: Mapping[str, str]) -> bool:
    """True when the request sends the same values for every header the entry varies on."""
    if not stored:
        return True
    return select_headers(headers, (name for name, _ in stored)) == stored


def wants_bypass(query_string: str) -> bool:
    """True for ``bypassServerCache=true`` (value case-insensitive) anywhere in the query."""
    if BYPASS_PARAM not in query_string:
        return False
    for pair in query_string.split("&"):
        name, _, value = pair.partition("=")
        if name == BYPASS_PARAM and value.lower() == "true":
            return True
    return False
