"""Spellings of one target that Finesse (Tomcat, then ``Integer.parseInt`` for team ids)
reads as the same resource: the proxy must read them alike, or at least never mix them up.

Applied at random: a team id as ``05000``, ``+5000`` or ``+05000``; letters or digits as
``%XX`` (either case); ``;jsessionid=...`` path parameters; ``//``, ``./`` and ``x/../``
inside the path; the query's pairs in another order, ``nocache=<ms>``, an encoded letter
in a query value. Never a trailing slash or dot segment (Tomcat keeps a trailing slash:
another resource), never a leading ``//`` (a client would read it as an authority).
"""

from __future__ import annotations

import random
from typing import Final

TEAM_PARENTS: Final = ("Team", "TeamResource")
BYPASS: Final = "bypassServerCache=true"


def spell(target: str, rng: random.Random, *, odd: float = 0.5, bypass: bool = False) -> str:
    """`target` (canonical, with its query) spelled another way Finesse reads alike.

    `odd` is how often each path transformation applies; the query always gets a shuffle
    chance and, usually, a ``nocache``. With `bypass`, ``bypassServerCache=true`` is added.
    """
    path, _, query = target.partition("?")
    segments = path.split("/")[1:]
    if len(segments) > 4 and segments[2] in TEAM_PARENTS and rng.random() < odd:
        segments[3] = team_spelling(segments[3], rng)
    segments = [encode_some(s, rng) if rng.random() < odd / 3 else s for s in segments]
    if rng.random() < odd / 2:
        at = rng.randrange(len(segments))
        segments[at] += f";jsessionid={rng.getrandbits(64):016X}"
    for extra in (["."], [""], ["x", ".."]):
        if rng.random() < odd / 3:
            at = rng.randrange(0 if extra != [""] else 1, len(segments))
            segments[at:at] = extra
    return "/" + "/".join(segments) + spelled_query(query, rng, bypass=bypass)


def team_spelling(team: str, rng: random.Random) -> str:
    return rng.choice((f"0{team}", f"+{team}", f"+0{team}", f"00{team}"))


def encode_some(segment: str, rng: random.Random) -> str:
    """One or two letters or digits of `segment` as %XX (hex digits in either case)."""
    plain = [i for i, c in enumerate(segment) if c.isalnum()]
    if not plain:
        return segment
    chosen = set(rng.sample(plain, min(len(plain), rng.choice((1, 2)))))
    out = []
    for i, char in enumerate(segment):
        if i in chosen:
            code = f"%{ord(char):02X}"
            out.append(code.lower() if rng.random() < 0.5 else code)
        else:
            out.append(char)
    return "".join(out)


def spelled_query(query: str, rng: random.Random, *, bypass: bool) -> str:
    pairs = [p for p in query.split("&") if p]
    if pairs and rng.random() < 0.05:  # `category=%41LL`: Finesse decodes query values
        name, _, value = pairs[0].partition("=")
        pairs[0] = f"{name}={encode_some(value, rng)}"
    if rng.random() < 0.7:
        pairs.append(f"nocache={1_700_000_000_000 + rng.randrange(10**9)}")
    if bypass:
        pairs.append(BYPASS)
    if rng.random() < 0.5:
        rng.shuffle(pairs)
    return "?" + "&".join(pairs) if pairs else ""
