"""The contract's two Finesse tables as data: which GETs are cached, and what each write purges."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Final
from urllib.parse import unquote

from webproxy.cache.routing import java_int, read_path

API_PREFIX: Final = "/finesse/api/"
DEFAULT_MEDIA_DOMAIN_PATH: Final = "/finesse/api/MediaDomains"
WRITE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})

ALL_COUNTER: Final = "all"
TEAMS_COUNTER: Final = "teams"
TEAM_SLOTS: Final = 4096
"""Team generation counters: team ids come from requests, so they share a fixed number
of counters (`team_counter`) and no client can make the store hold more."""

#: A team id segment as written: anything up to the next slash. Finesse reads it with
#: ``Integer.parseInt`` (`java_int`): `5000`, `05000`, `+5000` are all team 5000.
_TEAM_SEGMENT: Final = "[^/]{1,64}"


def valid_team_id(team: str) -> bool:
    """True for a team id Finesse can read: an int as ``Integer.parseInt`` takes it."""
    return java_int(team) is not None


def canonical_team(team: str) -> str:
    """A team id as Finesse reads it, in decimal (`05000`, `+5000` -> `5000`); ValueError
    for one it can't read."""
    number = java_int(team)
    if number is None:
        raise ValueError(f"not a team id: {team!r}")
    return str(number)


def team_counter(team: str) -> str:
    """The generation counter of a (canonical) team id: one of `TEAM_SLOTS`.

    Ids take their value modulo the slots, so any 4096 consecutive ids never share one.
    Sharing only means a purge of one team also purges the other: a miss, never a stale
    entry.
    """
    return f"team:{int(team) % TEAM_SLOTS}"


class CacheName(StrEnum):
    """Finesse's caches, by the names its CLI clears them (`utils webproxy cache clear`)."""

    REST = "rest"
    DESKTOP = "desktop"
    SHINDIG = "shindig"
    AUTHMODE = "authmode"


class Resource(StrEnum):
    """What entries belong to; the values are metric labels, and for the REST cache the
    contract's resource names and `cache.ttl` keys."""

    CHAT_CONFIG = "ChatConfig"
    ECC_VARIABLE_CONFIG = "ECCVariableConfig"
    MEDIA_DOMAIN = "MediaDomain"
    TEAM_RESOURCE = "TeamResource"
    DESKTOP = "desktop"
    SHINDIG = "shindig"
    USER_AUTH_MODE = "UserAuthMode"

    @property
    def cache(self) -> CacheName:
        return _CACHE_OF.get(self, CacheName.REST)


_CACHE_OF: Final = {
    Resource.DESKTOP: CacheName.DESKTOP,
    Resource.SHINDIG: CacheName.SHINDIG,
    Resource.USER_AUTH_MODE: CacheName.AUTHMODE,
}
REST_RESOURCES: Final = tuple(resource for resource in Resource if resource not in _CACHE_OF)
"""The REST cache's resources (SPEC 4): those the admin API's `resource=` names."""
HTTP_RESOURCES: Final = {cache: resource for resource, cache in _CACHE_OF.items()}
"""The one resource of each HTTP cache (`webproxy.cache.http`)."""


def cache_counter(cache: CacheName) -> str:
    """The generation counter of one HTTP cache; REST's is `ALL_COUNTER`."""
    return f"cache:{cache}"


class PurgeReason(StrEnum):
    """Why entries were invalidated; the values are metric labels."""

    WRITE = "write"
    ADMIN = "admin"
    BYPASS = "bypass"


@dataclass(frozen=True, slots=True)
class Scope:
    """What an entry belongs to: a global resource, one team's TeamResource, or one of
    the HTTP caches."""

    resource: Resource
    team: str | None = None
    counters: tuple[str, ...] = field(init=False, repr=False, compare=False)
    """Generation counters whose bump invalidates this scope's entries (computed once)."""
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if (self.resource is Resource.TEAM_RESOURCE) != (self.team is not None):
            raise ValueError(f"a team is required for TeamResource and only for it: {self!r}")
        if self.team is not None and canonical_team(self.team) != self.team:
            raise ValueError(f"a Scope's team id must be canonical, got {self.team!r}")
        if self.resource.cache is not CacheName.REST:
            counters: tuple[str, ...] = (ALL_COUNTER, cache_counter(self.resource.cache))
        elif self.team is None:
            counters = (ALL_COUNTER, f"resource:{self.resource}")
        else:
            counters = (ALL_COUNTER, TEAMS_COUNTER, team_counter(self.team))
        object.__setattr__(self, "counters", counters)
        object.__setattr__(self, "_hash", hash((self.resource, self.team)))

    def __hash__(self) -> int:
        return self._hash  # computed once: scopes key the identity book's approvals

    @property
    def label(self) -> str:
        """A bounded metric/stats label: the resource name (never the team id)."""
        return self.resource.value  # one shared string, not a new one per call


@dataclass(frozen=True, slots=True)
class Purge:
    """One generation counter to bump; build it with the class methods."""

    counter: str

    @classmethod
    def everything(cls) -> Purge:
        """Every entry of every cache (`clear all`): the store's own `all` counter."""
        return cls(ALL_COUNTER)

    @classmethod
    def all_teams(cls) -> Purge:
        return cls(TEAMS_COUNTER)

    @classmethod
    def team(cls, team: str) -> Purge:
        """Purge one team (its id made canonical); ValueError for an id `valid_team_id` refuses."""
        if not valid_team_id(team):
            raise ValueError(f"invalid team id {team!r}")
        return cls(team_counter(canonical_team(team)))

    @classmethod
    def resource(cls, resource: Resource) -> Purge:
        """Purge one resource; TeamResource means every team, an HTTP cache's its cache."""
        if resource is Resource.TEAM_RESOURCE:
            return cls.all_teams()
        if resource.cache is not CacheName.REST:
            return cls(cache_counter(resource.cache))
        return cls(f"resource:{resource}")


def purges_for_cache(cache: CacheName) -> tuple[Purge, ...]:
    """What clearing one cache bumps: the REST cache's four resource counters (its every
    entry, leaving the HTTP caches alone), or an HTTP cache's own counter."""
    if cache is CacheName.REST:
        return tuple(Purge.resource(resource) for resource in REST_RESOURCES)
    return (Purge(cache_counter(cache)),)


@dataclass(frozen=True, slots=True)
class CachedRoute:
    """A row of the cached-resources table: GETs whose canonical path fully matches."""

    resource: Resource
    pattern: re.Pattern[str]
    """Fully matched; a ``team`` group makes the scope that team's."""

    def match(self, path: str) -> tuple[Scope, str] | None:
        """The scope of `path`, and the path with its team id as Finesse reads it."""
        match = self.pattern.fullmatch(path)
        if match is None:
            return None
        if "team" not in self.pattern.groupindex:
            return _scope(self.resource, None), path
        team = java_int(match["team"])
        if team is None:
            return None
        canonical = str(team)
        if canonical != match["team"]:
            start, end = match.span("team")
            path = path[:start] + canonical + path[end:]
        return _scope(self.resource, canonical), path


@dataclass(frozen=True, slots=True)
class WriteTrigger:
    """A row of the purge table: a write whose canonical path fully matches purges `purge`."""

    pattern: re.Pattern[str]
    purge: Purge | None
    """None: purge the team named by the pattern's ``team`` group."""

    def purge_for(self, path: str) -> Purge | None:
        """A team Finesse can't read as an int purges every team: it can't be placed."""
        match = self.pattern.fullmatch(path)
        if match is None:
            return None
        if self.purge is not None:
            return self.purge
        team = match["team"]
        return Purge.team(team) if valid_team_id(team) else Purge.all_teams()


CACHED_ROUTES: Final = (
    CachedRoute(Resource.CHAT_CONFIG, re.compile(r"/finesse/api/ChatConfig")),
    CachedRoute(Resource.ECC_VARIABLE_CONFIG, re.compile(r"/finesse/api/ECCVariableConfig")),
    CachedRoute(
        Resource.TEAM_RESOURCE,
        re.compile(rf"/finesse/api/TeamResource/(?P<team>{_TEAM_SEGMENT})/[A-Za-z]+"),
    ),
)
"""The fixed rows; the MediaDomain row comes from config (see `cached_routes`)."""

TEAM_WRITE_COLLECTIONS: Final = (
    "ReasonCodes",
    "WrapUpReasons",
    "PhoneBooks",
    "Workflows",
    "LayoutConfig",
    "MediaPropertiesLayouts",
)
GLOBAL_WRITE_OBJECTS: Final = (
    "ReasonCode",
    "WrapUpReason",
    "PhoneBook",
    "Workflow",
    "WorkflowAction",
    "MediaPropertiesLayout",
    "LayoutConfig",
)

# Write patterns ignore case and allow a trailing slash: matching too much only over-purges,
# while missing a write Finesse applied would serve stale entries.
_WRITE_FLAGS: Final = re.IGNORECASE
_TEAM_COLLECTIONS: Final = f"(?:{'|'.join(TEAM_WRITE_COLLECTIONS)})"
_GLOBAL_OBJECTS: Final = f"(?:{'|'.join(GLOBAL_WRITE_OBJECTS)})"

WRITE_TRIGGERS: Final = (
    WriteTrigger(
        re.compile(
            rf"/finesse/api/Team/(?P<team>{_TEAM_SEGMENT})/{_TEAM_COLLECTIONS}(?:/.*)?",
            _WRITE_FLAGS,
        ),
        None,
    ),
    WriteTrigger(
        re.compile(rf"/finesse/api/{_GLOBAL_OBJECTS}.*", _WRITE_FLAGS),
        Purge.all_teams(),
    ),
    WriteTrigger(
        re.compile(r"/finesse/api/ChatConfig/?", _WRITE_FLAGS),
        Purge.resource(Resource.CHAT_CONFIG),
    ),
    WriteTrigger(
        re.compile(r"/finesse/api/ECCVariableConfig/?", _WRITE_FLAGS),
        Purge.resource(Resource.ECC_VARIABLE_CONFIG),
    ),
)
"""The fixed rows; the MediaDomain row comes from config (see `write_triggers`)."""


@lru_cache(maxsize=8)
def cached_routes(media_domain_path: str) -> tuple[CachedRoute, ...]:
    """The cached-resources table with the configured MediaDomain path."""
    media = CachedRoute(Resource.MEDIA_DOMAIN, re.compile(re.escape(media_domain_path)))
    return (*CACHED_ROUTES, media)


@lru_cache(maxsize=8)
def write_triggers(media_domain_path: str) -> tuple[WriteTrigger, ...]:
    """The purge table with the configured MediaDomain path."""
    pattern = re.compile(re.escape(media_domain_path.rstrip("/")) + "/?", _WRITE_FLAGS)
    return (*WRITE_TRIGGERS, WriteTrigger(pattern, Purge.resource(Resource.MEDIA_DOMAIN)))


def match_cached(path: str, *, media_domain_path: str) -> tuple[Scope, str] | None:
    """The scope of a cached resource at `path` (as `read_path` gives it), and the path to
    key it by (its team id as Finesse reads it), or None if it is not cached.

    Case-sensitive and exact, as Finesse routes: ``/finesse/api/chatconfig`` and
    ``/finesse/api/ChatConfig/`` are forwarded uncached.
    """
    if not path.startswith(API_PREFIX) and path != media_domain_path:
        return None
    literal, patterned = _split_routes(media_domain_path)
    exact = literal.get(path)
    if exact is not None:
        return exact
    for route in patterned:
        found = route.match(path)
        if found is not None:
            return found
    return None


@lru_cache(maxsize=8)
def _split_routes(
    media_domain_path: str,
) -> tuple[dict[str, tuple[Scope, str]], tuple[CachedRoute, ...]]:
    """The table split for the hot path: plain paths by path (one dict lookup), the rest."""
    routes = cached_routes(media_domain_path)
    literal = {
        # a pattern without groups is an escaped literal path (canonical: no backslash)
        path: (_scope(route.resource, None), path)
        for route in routes
        if not route.pattern.groupindex
        for path in (route.pattern.pattern.replace("\\", ""),)
    }
    return literal, tuple(route for route in routes if route.pattern.groupindex)


@lru_cache(maxsize=4096)
def _scope(resource: Resource, team: str | None) -> Scope:
    """One Scope object per resource and team, built and validated once."""
    return Scope(resource, team)


def purges_for_write(
    method: str, path: str, status: int | None, *, media_domain_path: str
) -> tuple[Purge, ...]:
    """What to purge after the upstream answered `method` on raw `path` with `status`.

    Only POST, PUT, PATCH and DELETE purge (method compared case-insensitively). A 4xx
    purges nothing (Finesse refused the write). None (no answer: timeout, refused, reset)
    purges like a success, because the write may have been applied. The path is read as
    Finesse reads it (`read_path`: ``;params`` dropped, ``%XX`` decoded, ``//`` merged, dot
    segments resolved, team ids as ints); one the model can't read with certainty purges
    everything if, decoded and normalised the ways a router might, it could reach
    ``/finesse/api``: we can't tell which table row it would be (every REST entry, not
    the HTTP caches: no write reaches them).
    """
    if method.upper() not in WRITE_METHODS:
        return ()
    if status is not None and 400 <= status < 500:
        return ()
    canonical = read_path(path)
    if canonical is None:
        return purges_for_cache(CacheName.REST) if _may_reach_api(path) else ()
    purges = (trigger.purge_for(canonical) for trigger in write_triggers(media_domain_path))
    return tuple(dict.fromkeys(purge for purge in purges if purge is not None))


def _may_reach_api(raw_path: str) -> bool:
    """Could a router that decodes, drops `;` parameters, merges slashes, resolves dot
    segments or ignores case take `raw_path` into the API? Decoded until stable, at most
    three times, for double encodings."""
    path = raw_path
    for _ in range(3):
        decoded = unquote(path)
        if decoded == path:
            break
        path = decoded
    segments = (segment.partition(";")[0] for segment in path.replace("\\", "/").split("/"))
    normal = posixpath.normpath("/" + "/".join(segment for segment in segments if segment))
    return normal.lower().startswith(API_PREFIX.rstrip("/").lower())
