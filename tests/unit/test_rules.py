"""The contract's tables: which paths are cached under which scope, what each write purges."""

from __future__ import annotations

import pytest

from webproxy.cache.rules import (
    DEFAULT_MEDIA_DOMAIN_PATH,
    TEAM_SLOTS,
    CacheName,
    Purge,
    Resource,
    Scope,
    match_cached,
    purges_for_cache,
    purges_for_write,
)

MEDIA = DEFAULT_MEDIA_DOMAIN_PATH
CHAT = Scope(Resource.CHAT_CONFIG)
ECC = Scope(Resource.ECC_VARIABLE_CONFIG)
MEDIA_DOMAIN = Scope(Resource.MEDIA_DOMAIN)
TEAMS = Purge.all_teams()
REST_CLEAR = purges_for_cache(CacheName.REST)


def team(team_id: str) -> Scope:
    return Scope(Resource.TEAM_RESOURCE, team_id)


def match_id(value: object) -> str:
    if isinstance(value, Scope):
        return value.counters[-1]
    return "not-cached" if value is None else str(value)


def write_id(value: object) -> str:
    if isinstance(value, tuple):
        return "+".join(purge.counter for purge in value) or "no-purge"
    return "no-answer" if value is None else str(value)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/finesse/api/ChatConfig", CHAT),
        ("/finesse/api/ECCVariableConfig", ECC),
        ("/finesse/api/MediaDomains", MEDIA_DOMAIN),
        ("/finesse/api/TeamResource/5000/ReasonCodes", team("5000")),
        ("/finesse/api/TeamResource/5000/WrapUpReasons", team("5000")),
        ("/finesse/api/TeamResource/5000/PhoneBooks", team("5000")),
        ("/finesse/api/TeamResource/5000/Workflows", team("5000")),
        ("/finesse/api/TeamResource/5000/MediaPropertiesLayouts", team("5000")),
        ("/finesse/api/TeamResource/5000/LayoutConfig", team("5000")),
        ("/finesse/api/TeamResource/5000/Anything", team("5000")),
        ("/finesse/api/TeamResource/+5000/ReasonCodes", team("5000")),
        ("/finesse/api/TeamResource/05000/ReasonCodes", team("5000")),
        ("/finesse/api/TeamResource/+05000/ReasonCodes", team("5000")),
        ("/finesse/api/TeamResource/-1/ReasonCodes", team("-1")),
        ("/finesse/api/TeamResource/2147483647/ReasonCodes", team("2147483647")),
        ("/finesse/api/TeamResource/2147483648/ReasonCodes", None),
        ("/finesse/api/TeamResource/team_A-1/Anything", None),
        ("/finesse/api/TeamResource/" + "9" * 65 + "/ReasonCodes", None),
        ("/finesse/api/TeamResource/5000", None),
        ("/finesse/api/TeamResource/5000/", None),
        ("/finesse/api/TeamResource/5000/ReasonCodes/1", None),
        ("/finesse/api/TeamResource/5000/Reason2Codes", None),
        ("/finesse/api/TeamResource/50.00/ReasonCodes", None),
        ("/finesse/api/TeamResource//ReasonCodes", None),
        ("/finesse/api/User/1001", None),
        ("/finesse/api/User/1001/ReasonCodes", None),
        ("/finesse/api/Dialog/1", None),
        ("/finesse/api/Team/5000", None),
        ("/finesse/api/Team/5000/ReasonCodes", None),
        ("/finesse/api/SystemInfo", None),
        ("/finesse/api/ReasonCodes", None),
        ("/finesse/api/chatconfig", None),
        ("/finesse/api/ChatConfig/", None),
        ("/finesse/api/ChatConfigX", None),
        ("/finesse/api/ChatConfig/1", None),
        ("/ws/", None),
        ("/http-bind/", None),
        ("/", None),
    ],
    ids=match_id,
)
def test_match_cached(path: str, expected: Scope | None) -> None:
    found = match_cached(path, media_domain_path=MEDIA)
    assert (found[0] if found is not None else None) == expected


@pytest.mark.parametrize("spelling", ["5000", "05000", "+5000", "+0005000"])
def test_a_team_resource_is_keyed_by_the_team_finesse_reads(spelling: str) -> None:
    path = f"/finesse/api/TeamResource/{spelling}/ReasonCodes"
    assert match_cached(path, media_domain_path=MEDIA) == (
        team("5000"),
        "/finesse/api/TeamResource/5000/ReasonCodes",
    )


@pytest.mark.parametrize(
    ("media_domain_path", "path", "expected"),
    [
        ("/finesse/api/MediaDomain", "/finesse/api/MediaDomain", MEDIA_DOMAIN),
        ("/finesse/api/MediaDomain", "/finesse/api/MediaDomains", None),
        ("/finesse/api/Media.Domains", "/finesse/api/MediaxDomains", None),
        ("/custom/mrd", "/custom/mrd", MEDIA_DOMAIN),
        ("/custom/mrd", "/custom/mrd/x", None),
    ],
    ids=["configured", "default-not-cached-when-moved", "dot-is-literal", "outside-api", "exact"],
)
def test_match_cached_uses_the_configured_media_domain_path(
    media_domain_path: str, path: str, expected: Scope | None
) -> None:
    found = match_cached(path, media_domain_path=media_domain_path)
    assert found == (None if expected is None else (expected, path))


@pytest.mark.parametrize(
    ("method", "path", "status", "expected"),
    [
        ("PUT", "/finesse/api/Team/5000/ReasonCodes", 200, (Purge.team("5000"),)),
        ("PUT", "/finesse/api/Team/5000/WrapUpReasons", 200, (Purge.team("5000"),)),
        ("PUT", "/finesse/api/Team/5000/PhoneBooks", 200, (Purge.team("5000"),)),
        ("PUT", "/finesse/api/Team/5000/Workflows", 200, (Purge.team("5000"),)),
        ("PUT", "/finesse/api/Team/5000/LayoutConfig", 200, (Purge.team("5000"),)),
        ("PUT", "/finesse/api/Team/5000/MediaPropertiesLayouts", 200, (Purge.team("5000"),)),
        ("PUT", "/finesse/api/Team/5000/ReasonCodes/x", 200, (Purge.team("5000"),)),
        ("PUT", "/finesse/api/team/5000/reasoncodes", 200, (Purge.team("5000"),)),
        ("PUT", "/finesse/api/Team/5000", 200, ()),
        ("PUT", "/finesse/api/Team/5000/Users", 200, ()),
        ("POST", "/finesse/api/ReasonCode", 200, (TEAMS,)),
        ("PUT", "/finesse/api/ReasonCode/12", 200, (TEAMS,)),
        ("DELETE", "/finesse/api/ReasonCode/12", 204, (TEAMS,)),
        ("POST", "/finesse/api/WrapUpReason", 200, (TEAMS,)),
        ("PUT", "/finesse/api/WrapUpReason/3", 200, (TEAMS,)),
        ("POST", "/finesse/api/PhoneBook", 200, (TEAMS,)),
        ("POST", "/finesse/api/PhoneBook/1/Contact", 200, (TEAMS,)),
        ("PUT", "/finesse/api/PhoneBook/1/Contact/7", 200, (TEAMS,)),
        ("POST", "/finesse/api/PhoneBook/1/Contacts", 200, (TEAMS,)),
        ("POST", "/finesse/api/Workflow", 200, (TEAMS,)),
        ("PATCH", "/finesse/api/Workflow/4", 200, (TEAMS,)),
        ("POST", "/finesse/api/WorkflowAction", 200, (TEAMS,)),
        ("DELETE", "/finesse/api/WorkflowAction/9", 200, (TEAMS,)),
        ("POST", "/finesse/api/MediaPropertiesLayout", 200, (TEAMS,)),
        ("PUT", "/finesse/api/MediaPropertiesLayout/default", 200, (TEAMS,)),
        ("PUT", "/finesse/api/LayoutConfig/default", 200, (TEAMS,)),
        ("PUT", "/finesse/api/ChatConfig", 200, (Purge.resource(Resource.CHAT_CONFIG),)),
        ("PUT", "/finesse/api/ChatConfig/", 200, (Purge.resource(Resource.CHAT_CONFIG),)),
        (
            "PUT",
            "/finesse/api/ECCVariableConfig",
            200,
            (Purge.resource(Resource.ECC_VARIABLE_CONFIG),),
        ),
        ("PUT", "/finesse/api/MediaDomains", 200, (Purge.resource(Resource.MEDIA_DOMAIN),)),
        ("put", "/finesse/api/ChatConfig", 200, (Purge.resource(Resource.CHAT_CONFIG),)),
        ("PUT", "/finesse/api/ChatConfig", 500, (Purge.resource(Resource.CHAT_CONFIG),)),
        ("PUT", "/finesse/api/ChatConfig", 503, (Purge.resource(Resource.CHAT_CONFIG),)),
        ("PUT", "/finesse/api/ChatConfig", 302, (Purge.resource(Resource.CHAT_CONFIG),)),
        ("PUT", "/finesse/api/ChatConfig", None, (Purge.resource(Resource.CHAT_CONFIG),)),
        ("PUT", "/finesse/api/ChatConfig", 400, ()),
        ("PUT", "/finesse/api/ChatConfig", 401, ()),
        ("PUT", "/finesse/api/ChatConfig", 403, ()),
        ("PUT", "/finesse/api/ReasonCode/12", 404, ()),
        ("PUT", "/finesse/api/ReasonCode/12", 499, ()),
        ("GET", "/finesse/api/ReasonCode/12", 200, ()),
        ("HEAD", "/finesse/api/ChatConfig", 200, ()),
        ("OPTIONS", "/finesse/api/ChatConfig", 200, ()),
        ("PUT", "/finesse/api/User/1001", 202, ()),
        ("PUT", "/finesse/api/Dialog/1", 202, ()),
        ("POST", "/finesse/api/TeamMessage", 200, ()),
        ("POST", "/http-bind/", 200, ()),
        ("POST", "/finesse//api/ReasonCode/1", 200, (TEAMS,)),
        ("POST", "/finesse/api/%52easonCode/1", 200, (TEAMS,)),
        ("PUT", "/finesse/api/./ChatConfig", 200, (Purge.resource(Resource.CHAT_CONFIG),)),
        ("PUT", "/finesse/x/../api/ChatConfig", 200, (Purge.resource(Resource.CHAT_CONFIG),)),
        (
            "PUT",
            "/finesse/api/ChatConfig;jsessionid=1",
            200,
            (Purge.resource(Resource.CHAT_CONFIG),),
        ),
        ("PUT", "/x/..%2Ffinesse/api/ChatConfig", 200, REST_CLEAR),
        (
            "PUT",
            "/finesse/api/ChatConfig;jsessionid=1",
            None,
            (Purge.resource(Resource.CHAT_CONFIG),),
        ),
        ("PUT", "/finesse/api/ChatConfig;jsessionid=1", 401, ()),
    ],
    ids=write_id,
)
def test_purges_for_write(
    method: str, path: str, status: int | None, expected: tuple[Purge, ...]
) -> None:
    assert purges_for_write(method, path, status, media_domain_path=MEDIA) == expected


def test_media_domain_writes_follow_the_configured_path() -> None:
    assert purges_for_write("PUT", "/custom/mrd", 200, media_domain_path="/custom/mrd") == (
        Purge.resource(Resource.MEDIA_DOMAIN),
    )
    assert purges_for_write("PUT", "/finesse/api/MediaDomains", 200, media_domain_path="/x") == ()


@pytest.mark.parametrize(
    ("scope", "counters", "label"),
    [
        (CHAT, ("all", "resource:ChatConfig"), "ChatConfig"),
        (ECC, ("all", "resource:ECCVariableConfig"), "ECCVariableConfig"),
        (MEDIA_DOMAIN, ("all", "resource:MediaDomain"), "MediaDomain"),
        (team("5000"), ("all", "teams", "team:904"), "TeamResource"),  # 5000 % 4096
    ],
    ids=["chat", "ecc", "media-domain", "team"],
)
def test_scope_counters_and_label(scope: Scope, counters: tuple[str, ...], label: str) -> None:
    assert scope.counters == counters
    assert scope.label == label


@pytest.mark.parametrize(
    ("purge", "counter"),
    [
        (Purge.everything(), "all"),
        (Purge.all_teams(), "teams"),
        (Purge.team("5000"), "team:904"),
        (Purge.resource(Resource.CHAT_CONFIG), "resource:ChatConfig"),
        (Purge.resource(Resource.MEDIA_DOMAIN), "resource:MediaDomain"),
        (Purge.resource(Resource.TEAM_RESOURCE), "teams"),
    ],
    ids=["everything", "all-teams", "team", "chat", "media-domain", "team-resource-is-all-teams"],
)
def test_purge_counters(purge: Purge, counter: str) -> None:
    assert purge.counter == counter


@pytest.mark.parametrize(
    ("purge", "scope", "reaches"),
    [
        (Purge.everything(), CHAT, True),
        (Purge.everything(), team("1"), True),
        (Purge.all_teams(), team("1"), True),
        (Purge.all_teams(), CHAT, False),
        (Purge.team("1"), team("1"), True),
        (Purge.team("1"), team("2"), False),
        (Purge.team("1"), team("10"), False),
        (Purge.resource(Resource.CHAT_CONFIG), CHAT, True),
        (Purge.resource(Resource.CHAT_CONFIG), ECC, False),
        (Purge.resource(Resource.CHAT_CONFIG), team("1"), False),
    ],
    ids=[
        "everything-global",
        "everything-team",
        "all-teams-team",
        "all-teams-not-global",
        "own-team",
        "other-team",
        "team-id-prefix",
        "own-resource",
        "other-resource",
        "resource-not-team",
    ],
)
def test_a_purge_reaches_exactly_the_scopes_listing_its_counter(
    purge: Purge, scope: Scope, reaches: bool
) -> None:
    assert (purge.counter in scope.counters) is reaches


@pytest.mark.parametrize(
    ("resource", "team_id"),
    [
        (Resource.TEAM_RESOURCE, None),
        (Resource.CHAT_CONFIG, "5000"),
        (Resource.TEAM_RESOURCE, ""),
        (Resource.TEAM_RESOURCE, "a b"),
        (Resource.TEAM_RESOURCE, "x" * 65),
    ],
    ids=["team-without-id", "global-with-team", "empty-id", "space-in-id", "id-too-long"],
)
def test_impossible_scopes_are_refused(resource: Resource, team_id: str | None) -> None:
    with pytest.raises(ValueError):
        Scope(resource, team_id)


@pytest.mark.parametrize(
    "team_id", ["", "a b", "1:2", "x" * 65], ids=["empty", "space", "colon", "long"]
)
def test_purge_team_refuses_ids_no_entry_can_have(team_id: str) -> None:
    with pytest.raises(ValueError):
        Purge.team(team_id)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/finesse//api/ReasonCode/1", (TEAMS,)),
        ("/finesse/x/../api/ReasonCode", (TEAMS,)),
        ("/%66inesse/api/ReasonCode", (TEAMS,)),
        ("/finesse/api/Team/%2B1/ReasonCodes", (Purge.team("1"),)),
        ("/finesse/api/Team/5000;x=1/ReasonCodes;y", (Purge.team("5000"),)),
        ("/Finesse;jsessionid=1/API/ReasonCode", (TEAMS,)),
        ("/%2566inesse/api/ReasonCode", REST_CLEAR),
        ("/finesse/api/Team/5000%2FReasonCodes", REST_CLEAR),
        ("/finesse/api/Team/5000%5CReasonCodes", REST_CLEAR),
        ("/finesse/api/Team/abc/ReasonCodes", (TEAMS,)),
        ("/desktop/%41", ()),
        ("/desktop//login", ()),
        ("/http-bind/%20", ()),
    ],
    ids=[
        "double-slash",
        "dot-dot",
        "encoded-letter",
        "encoded-plus-team",
        "path-params",
        "path-param-and-case",
        "double-encoded-is-ambiguous",
        "encoded-slash-is-ambiguous",
        "encoded-backslash-is-ambiguous",
        "team-finesse-cannot-read",
        "desktop-encoded",
        "desktop-double-slash",
        "http-bind",
    ],
)
def test_a_write_purges_what_finesse_reads_and_everything_when_that_is_unsure(
    path: str, expected: tuple[Purge, ...]
) -> None:
    assert purges_for_write("POST", path, 200, media_domain_path=MEDIA) == expected


@pytest.mark.parametrize("spelling", ["5000", "05000", "+5000", "+05000"])
def test_every_spelling_of_a_team_id_reads_and_purges_that_team(spelling: str) -> None:
    found = match_cached(
        f"/finesse/api/TeamResource/{spelling}/ReasonCodes", media_domain_path=MEDIA
    )
    assert found is not None and found[0] == team("5000")
    assert purges_for_write(
        "PUT", f"/finesse/api/Team/{spelling}/ReasonCodes", 200, media_domain_path=MEDIA
    ) == (Purge.team("5000"),)
    assert Purge.team(spelling) == Purge.team("5000")


def test_any_number_of_team_ids_shares_a_bounded_set_of_counters() -> None:
    names = {Purge.team(str(team)).counter for team in range(-50_000, 100_000, 7)}
    assert len(names) <= TEAM_SLOTS


def test_consecutive_numeric_team_ids_never_share_a_counter() -> None:
    counters = {Purge.team(str(team)).counter for team in range(5000, 5000 + TEAM_SLOTS)}
    assert len(counters) == TEAM_SLOTS
    assert Purge.team("05000").counter == Purge.team("5000").counter == team("5000").counters[2]


def test_clearing_the_rest_cache_reaches_every_rest_scope_and_no_http_cache() -> None:
    rest = {purge.counter for purge in REST_CLEAR}
    for scope in (CHAT, ECC, MEDIA_DOMAIN, team("1"), team("5000")):
        assert rest & set(scope.counters), scope
    for resource in (Resource.DESKTOP, Resource.SHINDIG, Resource.USER_AUTH_MODE):
        scope = Scope(resource)
        assert not rest & set(scope.counters), scope
        assert {purge.counter for purge in purges_for_cache(resource.cache)} < set(scope.counters)
        assert Purge.everything().counter in scope.counters
