"""Attacks on Finesse's HTTP caches (desktop, shindig, authmode) from outside: a hostile
client, or an upstream that answers in surprising ways. Real sockets: the proxy in front
of a small origin written here, whose every answer is the test's choice.

A test that fails is a finding; one that passes is an attack the design refused.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDictProxy
from pytest_aiohttp import AiohttpServer
from yarl import URL

from tests.conftest import AGENT, ManualClock, Proxy, ProxyFactory, settings_for
from tests.functional.test_shared_redis import on_redis
from webproxy.settings import HttpCacheSettings

SCRIPT = "/desktop/scripts/desktop.js"
CONTAINER = "/desktop/container/"
IFR = "/gadgets/ifr"
AUTH_MODE = "/finesse/api/UserAuthMode"
COOKIE = {"Cookie": "JSESSIONID=victim-session"}
FRESH = {"Cache-Control": "max-age=300"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    raw_path: str
    headers: CIMultiDictProxy[str]


@dataclass
class Origin:
    """Answers every request with `handler`, and records what it was sent."""

    handler: Handler | None = None
    seen: list[Seen] = field(default_factory=list)

    def count(self, path: str) -> int:
        return sum(1 for seen in self.seen if seen.raw_path.partition("?")[0] == path)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(Seen(request.raw_path, request.headers))
        assert self.handler is not None
        return await self.handler(request)


def serve(body: bytes, headers: dict[str, str] | None = None, status: int = 200) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, body=body, headers=headers or {})

    return handler


@dataclass
class Rig:
    origin: Origin
    proxy: Proxy
    clock: ManualClock
    raw: aiohttp.ClientSession  # sends only what the test says; no decompression

    async def get(
        self, target: str, method: str = "GET", **headers: str
    ) -> tuple[int, CIMultiDictProxy[str], bytes]:
        base = str(self.proxy.client.make_url("")).rstrip("/")
        url = URL(base + target, encoded=True)  # the target byte for byte
        async with self.raw.request(method, url, headers=headers, allow_redirects=False) as answer:
            return answer.status, answer.headers, await answer.read()

    async def clear(self, cache: str) -> None:
        response = await self.proxy.admin.post("/admin/cache/clear", params={"cache": cache})
        assert response.status == 200


class RigFactory(Protocol):
    def __call__(self, **sections: object) -> Awaitable[Rig]: ...


@pytest.fixture
async def make_rig(
    aiohttp_server: AiohttpServer, start_proxy: ProxyFactory, clock: ManualClock
) -> AsyncIterator[RigFactory]:
    """Rigs with `sections` over the defaults (`cache=` merged into the test's cache)."""
    sessions: list[aiohttp.ClientSession] = []

    async def make(**sections: object) -> Rig:
        origin = Origin()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", origin.handle)
        server: TestServer = await aiohttp_server(app)
        url = str(server.make_url("")).rstrip("/")
        cache: dict[str, object] = {"desktop": HttpCacheSettings(ttl=600.0), "stale_if_error": 60.0}
        extra = sections.pop("cache", {})
        assert isinstance(extra, dict)
        cache.update(extra)
        proxy = await start_proxy(settings_for(url, cache=cache, **sections), clock)
        session = aiohttp.ClientSession(
            auto_decompress=False, skip_auto_headers=("Accept-Encoding", "Accept", "User-Agent")
        )
        sessions.append(session)
        return Rig(origin, proxy, clock, session)

    yield make
    for session in sessions:
        await session.close()


@pytest.fixture
async def rig(make_rig: RigFactory) -> Rig:
    return await make_rig()


@pytest.fixture
async def store_rig(make_rig: RigFactory, store_section: dict[str, object]) -> Rig:
    return await make_rig(store=store_section)


# --- Poisoning through inputs the fill forwards but the key does not hold -------------


async def test_accept_chosen_by_one_caller_does_not_become_everyones_authmode_answer(
    rig: Rig,
) -> None:
    """Finesse's REST layer answers JSON to `Accept: application/json` and sends no Vary
    (which is why the REST cache keys on Accept). The authmode fill forwards Accept but
    the key leaves it out: one request picks the format every desktop then gets."""

    async def negotiated(request: web.Request) -> web.StreamResponse:
        if "json" in request.headers.get("Accept", ""):
            return web.Response(body=b'{"authMode":"NON_SSO"}', content_type="application/json")
        return web.Response(body=b"<UserAuthMode/>", content_type="application/xml")

    rig.origin.handler = negotiated
    target = f"{AUTH_MODE}?username=victim"
    status, _, body = await rig.get(target, Accept="application/json")  # the attacker
    assert (status, body) == (200, b'{"authMode":"NON_SSO"}')
    status, headers, body = await rig.get(target, Accept="application/xml")  # the victim
    assert status == 200
    assert body == b"<UserAuthMode/>", headers.get("Cache-Status")


async def test_accept_language_chosen_by_one_caller_does_not_become_everyones_page(
    rig: Rig,
) -> None:
    """The fill forwards Accept-Language; an answer localised without Vary is then stored
    for every language under one key."""

    async def localised(request: web.Request) -> web.StreamResponse:
        language = request.headers.get("Accept-Language", "en")
        return web.Response(body=f"page in {language}".encode(), headers=FRESH)

    rig.origin.handler = localised
    await rig.get(CONTAINER, **{"Accept-Language": "xx-attacker"})
    status, headers, body = await rig.get(CONTAINER, **{"Accept-Language": "en"})
    assert status == 200
    assert body == b"page in en", headers.get("Cache-Status")


async def test_an_answer_varying_on_a_field_the_fill_never_sent_is_not_labelled_with_it(
    rig: Rig,
) -> None:
    """The fill sends no User-Agent (nor Origin, ...), but the entry records the caller's
    value for the Vary it names: Finesse's answer for "no User-Agent" is then served as
    the answer for the caller's User-Agent."""

    async def by_agent(request: web.Request) -> web.StreamResponse:
        agent = request.headers.get("User-Agent", "none")
        return web.Response(body=f"for {agent}".encode(), headers={**FRESH, "Vary": "User-Agent"})

    rig.origin.handler = by_agent
    status, headers, body = await rig.get(SCRIPT, **{"User-Agent": "Mobile"})
    assert status == 200
    assert body == b"for Mobile", headers.get("Cache-Status")


# --- Spelling tricks: a key for one thing, a request for another ---------------------


@pytest.mark.parametrize(
    ("attack", "plain"),
    [
        (f"{CONTAINER};jsessionid=attacker-session", CONTAINER),
        (f"{SCRIPT};jsessionid=attacker-session", SCRIPT),
        (
            f"{AUTH_MODE};jsessionid=attacker-session?username=agent1",
            f"{AUTH_MODE}?username=agent1",
        ),
    ],
    ids=["container", "static-file", "authmode"],
)
async def test_a_path_parameter_session_never_fills_the_shared_entry(
    rig: Rig, attack: str, plain: str
) -> None:
    """`;jsessionid=` is Tomcat's URL session tracking: a credential in the path. The key
    drops path parameters (as Tomcat maps), but the fill sends the target raw, so the
    answer Finesse gives that session is stored for every caller of the plain path."""

    async def per_session(request: web.Request) -> web.StreamResponse:
        session = "anonymous"
        if ";jsessionid=" in request.raw_path:
            session = request.raw_path.partition(";jsessionid=")[2].partition("?")[0]
        return web.Response(body=f"session {session}".encode(), headers=FRESH)

    rig.origin.handler = per_session
    status, _, body = await rig.get(attack)
    assert (status, body) == (200, b"session attacker-session")
    status, headers, body = await rig.get(plain)  # a stranger, or a victim
    assert status == 200
    assert body == b"session anonymous", headers.get("Cache-Status")


@pytest.mark.parametrize(
    "query",
    ["url=/g.xml&%73t=viewer-token", "url=/g.xml&s%74=viewer-token"],
    ids=["s-encoded", "t-encoded"],
)
async def test_a_percent_encoded_security_token_is_never_shared(rig: Rig, query: str) -> None:
    """Shindig reads parameter names decoded, so `%73t=` is its `st=`: the rendering is
    the viewer's and outlives the token in the cache."""
    rig.origin.handler = serve(b"<html>viewer's gadget</html>", {"Cache-Control": "max-age=3600"})
    status, headers, _ = await rig.get(f"{IFR}?{query}")
    assert status == 200
    assert headers["Cache-Status"] == "webproxy; fwd=uri-miss; detail=not-shared"


@pytest.mark.parametrize(
    "target",
    [
        "/desktop/x/%2e%2e/api/session.json",
        "/desktop/./api/session.json",
        "/desktop//api/session.json",
        "/desktop;a=b/api/session.json",
        "/desktop/api;x=y/session.json",
        "/desktop/%61pi/session.json",
        "/3rdpartygadget/files/../../desktop/api/session.json",
    ],
)
async def test_spellings_of_the_desktop_api_are_never_cached(rig: Rig, target: str) -> None:
    rig.origin.handler = serve(b"session data", FRESH)
    for _ in range(2):
        status, headers, _ = await rig.get(target, **COOKIE)
        assert status == 200 and "Cache-Status" not in headers
    assert rig.origin.seen[-1].headers["Cookie"] == COOKIE["Cookie"]
    assert len(rig.origin.seen) == 2


@pytest.mark.parametrize(
    "target",
    ["/desktop/%2fapi/x.js", "/desktop/%5capi/x.js", "/desktop/x%252ejs.js", "/desktop/%C3%A9.js"],
)
async def test_targets_finesse_may_read_otherwise_are_not_cached(rig: Rig, target: str) -> None:
    rig.origin.handler = serve(b"x", FRESH)
    for _ in range(3):
        _, headers, _ = await rig.get(target)
        assert not headers.get("Cache-Status", "").startswith("webproxy; hit")


async def test_queries_that_finesse_reads_apart_do_not_share_an_entry(rig: Rig) -> None:
    async def echo(request: web.Request) -> web.StreamResponse:
        return web.Response(body=request.query.get("username", "").encode(), headers=FRESH)

    rig.origin.handler = echo
    answers = {}
    for query in ("username=alice", "username=bob", "username=alice&username=bob",
                  "username=bob&username=alice", "username=Alice"):  # fmt: skip
        _, _, answers[query] = await rig.get(f"{AUTH_MODE}?{query}")
    assert answers == {
        "username=alice": b"alice",
        "username=bob": b"bob",
        "username=alice&username=bob": b"alice",
        "username=bob&username=alice": b"bob",
        "username=Alice": b"Alice",
    }


async def test_desktop_and_shindig_entries_never_collide(rig: Rig) -> None:
    async def by_path(request: web.Request) -> web.StreamResponse:
        return web.Response(body=request.path.encode(), headers=FRESH)

    rig.origin.handler = by_path
    _, _, one = await rig.get("/gadgets/js/core.js?c=1")
    _, _, two = await rig.get("/desktop/gadgets/js/core.js?c=1")
    _, _, three = await rig.get("/3rdpartygadget/files/gadgets/js/core.js?c=1")
    assert (one, two, three) == (
        b"/gadgets/js/core.js",
        b"/desktop/gadgets/js/core.js",
        b"/3rdpartygadget/files/gadgets/js/core.js",
    )


# --- What needs a credential --------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403, 302])
async def test_a_credentialed_callers_own_answer_is_never_shared(rig: Rig, status: int) -> None:
    async def guarded(request: web.Request) -> web.StreamResponse:
        if "Cookie" in request.headers or "Authorization" in request.headers:
            return web.Response(body=b"alice's desktop", headers=FRESH)
        headers = {"Location": "/desktop/sso/"} if status == 302 else {}
        return web.Response(status=status, body=b"sign in", headers={**headers, **FRESH})

    rig.origin.handler = guarded
    status_one, headers, body = await rig.get(CONTAINER, **COOKIE, **AGENT)
    assert (status_one, body) == (200, b"alice's desktop")
    assert headers["Cache-Status"] == "webproxy; fwd=miss; detail=not-shared"
    for _ in range(2):
        got, headers, body = await rig.get(CONTAINER)
        assert (got, body) == (status, b"sign in")
        assert "Cache-Status" in headers


async def test_an_answer_differing_with_a_cookie_never_leaks_the_cookies_version(
    rig: Rig,
) -> None:
    async def personal(request: web.Request) -> web.StreamResponse:
        who = "alice" if "Cookie" in request.headers else "anyone"
        return web.Response(body=f"hello {who}".encode(), headers=FRESH)  # no Vary: Cookie

    rig.origin.handler = personal
    await rig.get(CONTAINER, **COOKIE)
    _, _, body = await rig.get(CONTAINER)
    assert body == b"hello anyone"
    assert all("Cookie" not in seen.headers for seen in rig.origin.seen)


@pytest.mark.parametrize(
    "on_304",
    [{"Cache-Control": "private"}, {"Set-Cookie": "JSESSIONID=minted"}],
    ids=["private", "set-cookie"],
)
async def test_a_304_that_takes_back_sharing_is_neither_stored_nor_served(
    rig: Rig, on_304: dict[str, str]
) -> None:
    validated = {"ETag": '"v1"', "Cache-Control": "max-age=60"}

    async def revalidating(request: web.Request) -> web.StreamResponse:
        if request.headers.get("If-None-Match") == '"v1"':
            return web.Response(status=304, headers={"ETag": '"v1"', **on_304})
        return web.Response(body=b"body", headers={**validated, **on_304})

    rig.origin.handler = serve(b"body", validated)
    await rig.get(SCRIPT)
    rig.origin.handler = revalidating
    rig.clock.advance(61)
    status, headers, _ = await rig.get(SCRIPT)
    assert status == 200
    assert "stored" not in headers["Cache-Status"]
    if "Set-Cookie" in on_304:
        assert "Set-Cookie" in headers  # the cookie went to the one who asked
    status, headers, _ = await rig.get(SCRIPT)
    assert not headers["Cache-Status"].startswith("webproxy; hit")
    assert "Set-Cookie" not in headers or "Set-Cookie" in on_304


async def test_an_entry_finesse_took_back_as_private_is_never_served_stale(rig: Rig) -> None:
    """Once a 304 has said `private`, the old entry is what Finesse no longer lets a
    shared cache hand out; it stays in the store and stale-if-error serves it."""
    rig.origin.handler = serve(b"was public", {"ETag": '"v1"', "Cache-Control": "max-age=60"})
    await rig.get(SCRIPT)
    rig.clock.advance(61)

    async def now_private(request: web.Request) -> web.StreamResponse:
        if request.headers.get("If-None-Match") == '"v1"':
            return web.Response(status=304, headers={"ETag": '"v1"', "Cache-Control": "private"})
        return web.Response(body=b"mine", headers={"Cache-Control": "private"})

    rig.origin.handler = now_private
    await rig.get(SCRIPT)
    rig.origin.handler = serve(b"down", status=503)
    status, headers, body = await rig.get(SCRIPT)
    assert (status, body) == (503, b"down"), headers.get("Cache-Status")


# --- Stale after a clear -------------------------------------------------------------


async def test_a_clear_during_an_inflight_fill_is_not_undone_by_it(store_rig: Rig) -> None:
    rig = store_rig
    arrived, release = asyncio.Event(), asyncio.Event()

    async def slow(request: web.Request) -> web.StreamResponse:
        arrived.set()
        await release.wait()
        return web.Response(body=b"fetched before the clear", headers=FRESH)

    rig.origin.handler = slow
    inflight = asyncio.create_task(rig.get(SCRIPT))
    await arrived.wait()
    await rig.clear("desktop")
    release.set()
    status, headers, _ = await inflight
    assert status == 200 and "stored" not in headers["Cache-Status"]
    rig.origin.handler = serve(b"after the clear", FRESH)
    _, headers, body = await rig.get(SCRIPT)
    assert body == b"after the clear"
    assert headers["Cache-Status"].startswith("webproxy; fwd=miss")


async def test_clear_all_during_an_inflight_fill_is_not_undone_by_it(store_rig: Rig) -> None:
    rig = store_rig
    arrived, release = asyncio.Event(), asyncio.Event()

    async def slow(request: web.Request) -> web.StreamResponse:
        arrived.set()
        await release.wait()
        return web.Response(body=b"old", headers=FRESH)

    rig.origin.handler = slow
    inflight = asyncio.create_task(rig.get(f"{AUTH_MODE}?username=a"))
    await arrived.wait()
    await rig.clear("all")
    release.set()
    await inflight
    rig.origin.handler = serve(b"new", FRESH)
    _, _, body = await rig.get(f"{AUTH_MODE}?username=a")
    assert body == b"new"


async def test_a_cleared_entry_is_never_served_stale_on_error(store_rig: Rig) -> None:
    rig = store_rig
    rig.origin.handler = serve(b"old", {"Cache-Control": "max-age=10"})
    await rig.get(SCRIPT)
    await rig.clear("desktop")
    rig.clock.advance(11)
    rig.origin.handler = serve(b"down", status=503)
    status, headers, _ = await rig.get(SCRIPT)
    assert status == 503 and "stale" not in headers["Cache-Status"]


async def test_a_clear_through_the_local_tier_reaches_the_next_read(
    make_rig: RigFactory, redis_url: str, redis_prefix: str
) -> None:
    store = on_redis(redis_url, redis_prefix, local_max_bytes=1 << 20, local_ttl=60.0)
    rig = await make_rig(store=store)
    rig.origin.handler = serve(b"old", FRESH)
    await rig.get(SCRIPT)
    _, headers, _ = await rig.get(SCRIPT)
    assert headers["Cache-Status"].startswith("webproxy; hit")
    await rig.clear("desktop")
    rig.origin.handler = serve(b"new", FRESH)
    _, _, body = await rig.get(SCRIPT)
    assert body == b"new"


# --- Memory -----------------------------------------------------------------------------


async def test_many_keys_on_one_cache_stay_within_its_byte_bound(make_rig: RigFactory) -> None:
    bound = 64 * 1024
    cache = {"authmode": HttpCacheSettings(ttl=300.0, max_bytes=bound)}
    rig = await make_rig(cache=cache)
    rig.origin.handler = serve(b"<UserAuthMode/>", FRESH)
    for number in range(600):
        status, _, _ = await rig.get(f"{AUTH_MODE}?username=u{number}&pad={'x' * 200}")
        assert status == 200
    stats = await (await rig.proxy.admin.get("/admin/cache")).json()
    authmode = stats["caches"]["authmode"]
    assert 0 < authmode["bytes"] <= bound
    assert stats["caches"]["desktop"]["entries"] == 0


async def test_an_oversized_answer_costs_finesse_one_request_a_read_after_the_first(
    make_rig: RigFactory,
) -> None:
    """Over `cache.max_entry_bytes` the first fill is closed and the request sent again;
    the key is then remembered (`http_cached.Passes`), so later reads are forwarded at
    once: one request each, not two."""
    rig = await make_rig(cache={"max_entry_bytes": 1024})
    rig.origin.handler = serve(b"x" * 100_000, FRESH)
    for reads in range(1, 4):
        status, headers, body = await rig.get(SCRIPT)
        assert (status, len(body)) == (200, 100_000)
        assert headers["Cache-Status"] == "webproxy; fwd=uri-miss; detail=too-large" or reads == 1
        assert rig.origin.count(SCRIPT) == reads + 1


# --- Smuggling-ish requests and answers ---------------------------------------------------


async def test_a_range_request_is_passed_and_never_stored(rig: Rig) -> None:
    async def ranged(request: web.Request) -> web.StreamResponse:
        if "Range" in request.headers:
            headers = {**FRESH, "Content-Range": "bytes 0-0/4"}
            return web.Response(status=206, body=b"a", headers=headers)
        return web.Response(body=b"abcd", headers=FRESH)

    rig.origin.handler = ranged
    status, headers, body = await rig.get(SCRIPT, Range="bytes=0-0")
    assert (status, body) == (206, b"a")
    assert "Cache-Status" in headers
    status, _, body = await rig.get(SCRIPT)
    assert (status, body) == (200, b"abcd")


async def test_a_chunked_body_on_a_cached_get_cannot_smuggle_a_request(rig: Rig) -> None:
    """A GET with a body the cache never reads: the body is drained, never taken for the
    next request on the connection, and never reaches Finesse."""
    rig.origin.handler = serve(b"x", FRESH)
    await rig.get(SCRIPT)  # an entry, so the attack is answered from the cache
    smuggled = b"GET /desktop/smuggled.js HTTP/1.1\r\nHost: x\r\n\r\n"
    chunk = b"%x\r\n%s\r\n0\r\n\r\n" % (len(smuggled), smuggled)
    attack = (
        f"GET {SCRIPT} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        + chunk
        + f"GET {SCRIPT}?second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    )
    port = rig.proxy.client.port
    assert port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(attack)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    assert answer.count(b"HTTP/1.1 ") == 2
    assert rig.origin.count("/desktop/smuggled.js") == 0


async def test_head_is_forwarded_and_does_not_fill(rig: Rig) -> None:
    rig.origin.handler = serve(b"full body", FRESH)
    status, _, body = await rig.get(SCRIPT, method="HEAD")
    assert status == 200 and body == b""
    status, _, body = await rig.get(SCRIPT)
    assert (status, body) == (200, b"full body")


async def test_hop_by_hop_fields_are_never_stored_or_replayed(rig: Rig) -> None:
    rig.origin.handler = serve(
        b"x",
        {
            **FRESH,
            "Connection": "X-Internal-Hop",
            "X-Internal-Hop": "secret",
            "Keep-Alive": "timeout=999",
            "Proxy-Authenticate": "Basic realm=finesse",
            "Trailer": "X-Checksum",
            "Upgrade": "h2c",
        },
    )
    for _ in range(2):
        _, headers, _ = await rig.get(SCRIPT)
        for name in ("X-Internal-Hop", "Keep-Alive", "Proxy-Authenticate", "Trailer", "Upgrade"):
            assert name not in headers, name
    assert headers["Cache-Status"].startswith("webproxy; hit")


async def test_a_304_cannot_change_a_variants_content_encoding(rig: Rig) -> None:
    plain = b"console.log('plain')"

    async def first(request: web.Request) -> web.StreamResponse:
        headers = {"ETag": '"v1"', "Cache-Control": "max-age=60", "Vary": "Accept-Encoding"}
        return web.Response(body=plain, headers=headers)

    async def lying_304(request: web.Request) -> web.StreamResponse:
        headers = {"ETag": '"v1"', "Content-Encoding": "gzip", "Content-Type": "text/html"}
        return web.Response(status=304, headers=headers)

    rig.origin.handler = first
    await rig.get(SCRIPT)
    rig.clock.advance(61)
    rig.origin.handler = lying_304
    for _ in range(2):
        status, headers, body = await rig.get(SCRIPT)
        assert (status, body) == (200, plain)
        assert "Content-Encoding" not in headers


async def test_gzip_variant_goes_only_to_callers_that_accept_gzip(rig: Rig) -> None:
    text = b"function f() {}" * 50

    async def negotiated(request: web.Request) -> web.StreamResponse:
        headers = {**FRESH, "Vary": "Accept-Encoding"}
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return web.Response(body=gzip.compress(text, mtime=0), headers=headers)
        return web.Response(body=text, headers=headers)

    rig.origin.handler = negotiated
    await rig.get(SCRIPT, **{"Accept-Encoding": "gzip"})
    for refusal in ("gzip;q=0", "identity", "br", "gzip;q=0.000", "x-gzip;q=0, br"):
        _, headers, body = await rig.get(SCRIPT, **{"Accept-Encoding": refusal})
        assert "Content-Encoding" not in headers, refusal
        assert body == text


async def test_an_unsolicited_304_is_not_stored_nor_replayed(rig: Rig) -> None:
    rig.origin.handler = serve(b"", {"ETag": '"v1"', **FRESH}, status=304)
    await rig.get(SCRIPT)
    rig.origin.handler = serve(b"body", FRESH)
    status, _, body = await rig.get(SCRIPT)
    assert (status, body) == (200, b"body")


@pytest.mark.parametrize(
    "conditional",
    [
        {"If-None-Match": "*"},
        {"If-None-Match": '"v1", *'},
        {"If-None-Match": 'W/"v1"'},
        {"If-Modified-Since": "Tue, 01 Dec 2099 10:00:00 GMT"},
    ],
)
async def test_a_conditional_request_matching_the_entry_gets_304(
    rig: Rig, conditional: dict[str, str]
) -> None:
    headers = {"ETag": '"v1"', "Last-Modified": "Tue, 01 Dec 2026 10:00:00 GMT", **FRESH}
    rig.origin.handler = serve(b"body", headers)
    await rig.get(SCRIPT)
    status, answer, body = await rig.get(SCRIPT, **conditional)
    assert (status, body) == (304, b"")
    assert answer["Cache-Status"].startswith("webproxy; hit")


@pytest.mark.parametrize(
    "since",
    ["garbage", "Mon, 99 Dec 9999999999 00:00:00 GMT", "Fri, 31 Dec 9999 23:59:59 -2400", ""],
)
async def test_weird_if_modified_since_is_ignored_not_a_crash(rig: Rig, since: str) -> None:
    headers = {"Last-Modified": "Tue, 01 Dec 2026 10:00:00 GMT", **FRESH}
    rig.origin.handler = serve(b"body", headers)
    await rig.get(SCRIPT)
    status, _, body = await rig.get(SCRIPT, **{"If-Modified-Since": since})
    assert (status, body) == (200, b"body")


@pytest.mark.parametrize(
    "upstream",
    [
        {"Expires": "garbage"},
        {"Expires": "Mon, 01 Jan 10000 00:00:00 GMT", "Date": "nonsense"},
        {"Expires": "Fri, 31 Dec 9999 23:59:59 GMT", "Date": "Thu, 01 Jan 1970 00:00:00 GMT"},
        {"Cache-Control": "max-age=99999999999999999999999"},
        {"Cache-Control": "max-age=-1, s-maxage=abc"},
        {"Age": "99999999999999999999", "Cache-Control": "max-age=300"},
        {"Age": "-5", "Cache-Control": "max-age=300"},
        {"Last-Modified": "garbage", "Cache-Control": "no-cache"},
    ],
)
async def test_surprising_freshness_fields_never_crash_the_proxy(
    rig: Rig, upstream: dict[str, str]
) -> None:
    rig.origin.handler = serve(b"body", upstream)
    for _ in range(2):
        status, headers, body = await rig.get(SCRIPT)
        assert (status, body) == (200, b"body")
        assert "Cache-Status" in headers
        assert int(headers.get("Age", "0")) >= 0


async def test_age_on_a_hit_counts_the_age_finesse_gave(rig: Rig) -> None:
    rig.origin.handler = serve(b"x", {"Cache-Control": "max-age=300", "Age": "100"})
    await rig.get(SCRIPT)
    rig.clock.advance(10)
    _, headers, _ = await rig.get(SCRIPT)
    assert headers["Age"] == "110"
    assert headers["Cache-Status"] == "webproxy; hit; ttl=190"


# --- Cache-Status everywhere -------------------------------------------------------------


async def test_every_answer_on_a_cached_path_carries_cache_status(rig: Rig) -> None:
    rig.origin.handler = serve(b"nope", status=404)
    for target, headers in [
        (SCRIPT, {}),
        (SCRIPT, dict(AGENT)),
        (f"{IFR}?url=/g.xml&st=t", {}),
        (f"{AUTH_MODE}?username={'x' * 5000}", {}),
        (f"{SCRIPT}?q=%C3%A9", {}),
        (SCRIPT, {"Range": "bytes=0-1"}),
    ]:
        _, answer, _ = await rig.get(target, **headers)
        assert "Cache-Status" in answer, target
        assert answer["Cache-Status"].startswith("webproxy; "), answer["Cache-Status"]


async def test_an_unreachable_upstream_still_carries_cache_status(
    start_proxy: ProxyFactory, clock: ManualClock
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proxy = await start_proxy(settings_for(f"http://127.0.0.1:{port}"), clock)
    for target, headers in ((SCRIPT, {}), (SCRIPT, dict(AGENT)), (f"{IFR}?st=t", {})):
        response = await proxy.client.get(target, headers=headers)
        assert response.status == 502
        assert response.headers["Cache-Status"].startswith("webproxy; fwd=")
