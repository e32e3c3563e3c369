"""Property tests: whatever the spelling, the proxy's key and purge decisions follow the
path Finesse routes to, as the simulator's Tomcat reading (`webproxy.sim.tomcat`) has it."""

from __future__ import annotations

from hypothesis import example, given, settings, strategies as st

from webproxy.cache.keys import build_key
from webproxy.cache.routing import read_path
from webproxy.cache.rules import DEFAULT_MEDIA_DOMAIN_PATH, match_cached, purges_for_write
from webproxy.sim.tomcat import Refused, finesse_path

MEDIA = DEFAULT_MEDIA_DOMAIN_PATH
TEAMS = ("5000", "05000", "+5000", "+05000", "5001", "-1", "0", "-0", "2147483648", "50x0")
RESOURCES = (
    "/finesse/api/ChatConfig",
    "/finesse/api/ECCVariableConfig",
    "/finesse/api/MediaDomains",
    "/finesse/api/TeamResource/{team}/ReasonCodes",
    "/finesse/api/TeamResource/{team}/PhoneBooks",
    "/finesse/api/Team/{team}/ReasonCodes",
    "/finesse/api/Team/{team}/WrapUpReasons/7",
    "/finesse/api/ReasonCode/12",
    "/finesse/api/User/10001",
    "/desktop/index.html",
)


def _escape(char: str, upper: bool) -> str:
    code = f"%{ord(char):02X}"
    return code if upper else code.lower()


@st.composite
def spelled_segment(draw: st.DrawFn, segment: str) -> str:
    """One segment, spelled as a client might: escapes, a path parameter, case."""
    chars = []
    for char in segment:
        match draw(st.integers(0, 9)):
            case 0:
                chars.append(_escape(char, draw(st.booleans())))
            case 1:
                chars.append(char.swapcase())
            case _:
                chars.append(char)
    spelled = "".join(chars)
    if draw(st.integers(0, 4)) == 0:
        spelled += draw(st.sampled_from([";jsessionid=A1", ";", ";x=%2F", ";a;b"]))
    return spelled


@st.composite
def targets(draw: st.DrawFn) -> str:
    """A raw path naming one of RESOURCES, with dot segments, slashes and oddities."""
    template = draw(st.sampled_from(RESOURCES))
    path = template.format(team=draw(st.sampled_from(TEAMS)))
    out: list[str] = []
    for segment in path.split("/")[1:]:
        match draw(st.integers(0, 11)):
            case 0:
                out.append(".")
            case 1:
                out.append(draw(st.sampled_from(["x", "%2e%2e%2fx", "TeamResource"])) + "/..")
            case 2:
                out.append("")  # a double slash
            case 3:
                out.append(draw(st.sampled_from(["..", "%2e%2e", ".%2E"])))
            case 4:
                segment += draw(st.sampled_from(["%2F", "%5c", "\\", "%25", "%", "%zz", " "]))
        out.append(draw(spelled_segment(segment)))
    tail = draw(st.sampled_from(["", "", "", "/", "/.", "/.."]))
    return "/" + "/".join(out) + tail


def finesse_reads(raw: str) -> str | None:
    try:
        return finesse_path(raw)
    except Refused:
        return None


@settings(max_examples=500, deadline=None)
@given(targets())
@example("/finesse/api/TeamResource/+5000/ReasonCodes")
@example("/finesse/api/TeamResource/5000/ReasonCodes/.")
@example("/finesse/api/x/%2e%2e/ChatConfig;jsessionid=1")
def test_the_model_reads_a_path_as_tomcat_does_or_admits_it_cannot(raw: str) -> None:
    reading = read_path(raw)
    if reading is None:
        return  # the model can't place it: never cached, purges everything
    tomcat = finesse_reads(raw)
    assert tomcat is not None, f"the model reads {raw!r}, which Finesse refuses (400)"
    cached = match_cached(reading, media_domain_path=MEDIA)
    if cached is not None:
        scope, key_path = cached
        assert key_path == tomcat, "a cached read is keyed by the path Finesse answers for"
        if scope.team is not None:
            assert f"/{scope.team}/" in tomcat


@settings(max_examples=400, deadline=None)
@given(targets(), targets())
def test_two_spellings_share_a_key_only_when_finesse_routes_them_alike(a: str, b: str) -> None:
    keys = []
    for raw in (a, b):
        reading = read_path(raw)
        cached = match_cached(reading, media_domain_path=MEDIA) if reading else None
        keys.append(None if cached is None else build_key(cached[1], "category=ALL", {}))
    if keys[0] is not None and keys[0] == keys[1]:
        assert finesse_reads(a) == finesse_reads(b)
    if keys[0] is not None and keys[1] is not None and finesse_reads(a) == finesse_reads(b):
        assert keys[0] == keys[1]


@settings(max_examples=500, deadline=None)
@given(targets(), targets())
@example("/finesse/api/Team/+5000/ReasonCodes", "/finesse/api/TeamResource/5000/ReasonCodes")
@example("/finesse/api/Team/05000/ReasonCodes;x", "/finesse/api/TeamResource/5000/PhoneBooks")
def test_a_write_purges_every_cached_read_of_what_finesse_changes(write: str, read: str) -> None:
    """If Finesse routes the write to a team's collections (or a shared definition), every
    cached read of that team (or of every team) is reached by the purge."""
    written = finesse_reads(write)
    reading = read_path(read)
    cached = match_cached(reading, media_domain_path=MEDIA) if reading else None
    if written is None or cached is None:
        return  # Finesse refuses the write (400), or the read is never cached
    scope = cached[0]
    purges = {p.counter for p in purges_for_write("PUT", write, 200, media_domain_path=MEDIA)}
    changes_team = (
        scope.team is not None
        and written.startswith(f"/finesse/api/Team/{scope.team}/")
        and written.split("/")[5:6] in (["ReasonCodes"], ["WrapUpReasons"], ["PhoneBooks"])
    )
    changes_all_teams = scope.team is not None and written.startswith("/finesse/api/ReasonCode")
    changes_chat = scope.team is None and written == "/finesse/api/ChatConfig"
    if changes_team or changes_all_teams or changes_chat:
        assert purges & set(scope.counters), (write, read, purges)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["category", "nocache", "a", "b", "bypassServerCache", "c%3D"]),
            st.sampled_from(["", "1", "X%26Y", "X%2526Y", "X&Y", "%2B", "+", "%3D", "%3B"]),
        ),
        max_size=5,
    ),
    st.lists(
        st.tuples(
            st.sampled_from(["category", "nocache", "a", "b", "bypassServerCache", "c%3D"]),
            st.sampled_from(["", "1", "X%26Y", "X%2526Y", "X&Y", "%2B", "+", "%3D", "%3B"]),
        ),
        max_size=5,
    ),
)
def test_queries_that_finesse_reads_apart_never_share_a_key(
    one: list[tuple[str, str]], other: list[tuple[str, str]]
) -> None:
    """The key holds the query's bytes as sent (less nocache/bypassServerCache): two keys
    meet only if the kept pairs are the same bytes, name by name in the same order."""
    path = "/finesse/api/TeamResource/5000/ReasonCodes"
    ignored = {"nocache", "bypassServerCache"}

    def query(pairs: list[tuple[str, str]]) -> str:
        return "&".join(f"{name}={value}" for name, value in pairs)

    def kept(pairs: list[tuple[str, str]]) -> list[str]:
        texts = "&".join(f"{name}={value}" for name, value in pairs).split("&")
        found = [text for text in texts if text and text.partition("=")[0] not in ignored]
        return sorted(found, key=lambda text: text.partition("=")[0])

    same_key = build_key(path, query(one), {}) == build_key(path, query(other), {})
    assert same_key == (kept(one) == kept(other))
