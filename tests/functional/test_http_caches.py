"""Finesse's HTTP caches (desktop, shindig, authmode) through real sockets, in front of a
small origin written for these tests: every header it sends is the test's choice, and it
records every request it is sent."""

from __future__ import annotations

import dataclasses
import gzip
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict, CIMultiDictProxy
from pytest_aiohttp import AiohttpServer

from tests.conftest import AGENT, ManualClock, Proxy, ProxyFactory, settings_for
from webproxy.settings import HttpCacheSettings

SCRIPT = "/desktop/scripts/desktop.js"
GADGET = "/3rdpartygadget/files/Hello/hello.js"
IFR = "/gadgets/ifr"
AUTH_MODE = "/finesse/api/UserAuthMode"
COOKIE = {"Cookie": "JSESSIONID=secret-session"}


@dataclass
class File:
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    gzip: bool = False  # a gzip variant, with Vary: Accept-Encoding
    needs_credential: bool = False  # 401 without Authorization
    status: int = 200


@dataclass
class Seen:
    path_qs: str
    headers: CIMultiDictProxy[str]


class Origin:
    """Serves `files` by path (any query), with ETag-driven 304s; records each request."""

    def __init__(self) -> None:
        self.files: dict[str, File] = {}
        self.seen: list[Seen] = []

    def count(self, path: str) -> int:
        return sum(1 for seen in self.seen if seen.path_qs.partition("?")[0] == path)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(Seen(request.path_qs, request.headers))
        file = self.files.get(request.path)
        if file is None:
            return web.Response(status=404, text="no such file")
        if file.needs_credential and "Authorization" not in request.headers:
            return web.Response(status=401, text="sign in first")
        if file.status != 200:
            return web.Response(status=file.status, text="origin failure")
        headers = dict(file.headers)
        body = file.body
        if file.gzip:
            headers["Vary"] = "Accept-Encoding"
            if "gzip" in request.headers.get("Accept-Encoding", ""):
                body = gzip.compress(body, mtime=0)
                headers["Content-Encoding"] = "gzip"
                if "ETag" in headers:
                    headers["ETag"] = headers["ETag"][:-1] + '-gz"'
        etag = headers.get("ETag")
        if etag is not None and request.headers.get("If-None-Match") == etag:
            kept = {k: v for k, v in headers.items() if k in ("ETag", "Cache-Control", "Vary")}
            return web.Response(status=304, headers=kept)
        return web.Response(body=body, headers=headers)


@pytest.fixture
async def origin(aiohttp_server: AiohttpServer) -> AsyncIterator[tuple[Origin, TestServer]]:
    served = Origin()
    server = await aiohttp_server(served.app())
    yield served, server


@dataclass
class Rig:
    origin: Origin
    proxy: Proxy
    clock: ManualClock
    raw: aiohttp.ClientSession  # no decompression, no default Accept-Encoding

    async def get(self, target: str, **headers: str) -> tuple[int, CIMultiDictProxy[str], bytes]:
        url = self.proxy.client.make_url(target)
        async with self.raw.get(url, headers=headers, allow_redirects=False) as response:
            return response.status, response.headers, await response.read()


@pytest.fixture
async def rig(
    origin: tuple[Origin, TestServer],
    start_proxy: ProxyFactory,
    clock: ManualClock,
    store_section: dict[str, object],
) -> AsyncIterator[Rig]:
    served, server = origin
    url = str(server.make_url("")).rstrip("/")
    cache = {"desktop": HttpCacheSettings(ttl=600.0), "stale_if_error": 60.0}
    proxy = await start_proxy(settings_for(url, store=store_section, cache=cache), clock)
    session = aiohttp.ClientSession(auto_decompress=False, skip_auto_headers=["Accept-Encoding"])
    yield Rig(served, proxy, clock, session)
    await session.close()


def status_of(headers: CIMultiDictProxy[str]) -> str:
    return headers["Cache-Status"]


async def test_a_miss_then_a_hit_with_age(rig: Rig) -> None:
    rig.origin.files[SCRIPT] = File(b"console.log(1)", {"Cache-Control": "max-age=300"})
    status, headers, body = await rig.get(SCRIPT)
    assert (status, body) == (200, b"console.log(1)")
    assert status_of(headers) == "webproxy; fwd=miss; fwd-status=200; stored"
    rig.clock.advance(10)
    status, headers, body = await rig.get(SCRIPT)
    assert (status, body) == (200, b"console.log(1)")
    assert status_of(headers) == "webproxy; hit; ttl=290"
    assert headers["Age"] == "10"
    assert rig.origin.count(SCRIPT) == 1


async def test_the_fill_carries_no_credential_and_serves_everyone(rig: Rig) -> None:
    rig.origin.files[SCRIPT] = File(b"shared", {"Cache-Control": "max-age=300"})
    status, headers, _ = await rig.get(SCRIPT, **AGENT, **COOKIE)
    assert status == 200 and status_of(headers).endswith("stored")
    (fill,) = rig.origin.seen
    assert "Authorization" not in fill.headers and "Cookie" not in fill.headers
    status, headers, body = await rig.get(SCRIPT)  # a stranger, with no credential at all
    assert (status, body) == (200, b"shared")
    assert status_of(headers).startswith("webproxy; hit")


async def test_an_answer_that_needs_a_credential_is_never_shared(rig: Rig) -> None:
    rig.origin.files[SCRIPT] = File(b"for the signed-in", needs_credential=True)
    status, headers, body = await rig.get(SCRIPT, **AGENT)
    assert (status, body) == (200, b"for the signed-in")  # its own request, forwarded
    assert status_of(headers) == "webproxy; fwd=miss; detail=not-shared"
    assert [("Authorization" in seen.headers) for seen in rig.origin.seen] == [False, True]
    status, headers, body = await rig.get(SCRIPT)  # a stranger: Finesse decides
    assert (status, body) == (401, b"sign in first")
    assert "for the signed-in" not in body.decode()
    seen = len(rig.origin.seen)
    status, headers, body = await rig.get(SCRIPT, **AGENT)  # remembered: forwarded at once
    assert (status, body) == (200, b"for the signed-in")
    assert status_of(headers) == "webproxy; fwd=uri-miss; detail=not-shared"
    assert len(rig.origin.seen) == seen + 1


@pytest.mark.parametrize(
    "headers",
    [
        {"Cache-Control": "no-store"},
        {"Cache-Control": "private, max-age=300"},
        {"Set-Cookie": "JSESSIONID=abc"},
        {"Vary": "Cookie"},
        {"Vary": "*"},
        {"Cache-Control": "no-cache"},  # no validator: nothing to revalidate with
    ],
    ids=["no-store", "private", "set-cookie", "vary-cookie", "vary-star", "no-cache-bare"],
)
async def test_answers_a_shared_cache_must_not_keep_are_not_stored(
    rig: Rig, headers: dict[str, str]
) -> None:
    rig.origin.files[SCRIPT] = File(b"mine", headers)
    for _ in range(2):
        status, answer, body = await rig.get(SCRIPT)
        assert (status, body) == (200, b"mine")
        assert status_of(answer) == "webproxy; fwd=miss; fwd-status=200"
    assert rig.origin.count(SCRIPT) == 2


async def test_gzip_and_identity_variants_are_kept_apart(rig: Rig) -> None:
    text = b"function hello() { return 'hello'; }" * 20
    rig.origin.files[GADGET] = File(text, {"ETag": '"v1"'}, gzip=True)
    for encoding in ("gzip, deflate, br", "identity", "gzip;q=1.0", ""):
        for _ in range(2):
            headers = {"Accept-Encoding": encoding} if encoding else {}
            status, answer, body = await rig.get(GADGET, **headers)
            assert status == 200
            if "gzip" in encoding:
                assert answer["Content-Encoding"] == "gzip"
                assert gzip.decompress(body) == text
            else:
                assert "Content-Encoding" not in answer
                assert body == text
    assert rig.origin.count(GADGET) == 2  # one fill per variant, every other read a hit
    encodings = [seen.headers.get("Accept-Encoding") for seen in rig.origin.seen]
    assert encodings == ["gzip", None]  # what the key says, never the browser's spelling


async def test_without_freshness_the_configured_ttl_applies(rig: Rig) -> None:
    rig.origin.files[SCRIPT] = File(b"x", {"ETag": '"a"'})
    await rig.get(SCRIPT)
    rig.clock.advance(599)
    _, headers, _ = await rig.get(SCRIPT)
    assert status_of(headers) == "webproxy; hit; ttl=1"
    assert rig.origin.count(SCRIPT) == 1


async def test_an_expired_entry_is_revalidated_and_kept_on_304(rig: Rig) -> None:
    rig.origin.files[SCRIPT] = File(b"kept", {"ETag": '"v1"', "Cache-Control": "max-age=60"})
    await rig.get(SCRIPT)
    rig.clock.advance(61)
    status, headers, body = await rig.get(SCRIPT)
    assert (status, body) == (200, b"kept")
    assert status_of(headers) == "webproxy; fwd=stale; fwd-status=304; stored; ttl=60"
    assert rig.origin.seen[-1].headers["If-None-Match"] == '"v1"'
    _, headers, _ = await rig.get(SCRIPT)
    assert status_of(headers).startswith("webproxy; hit")
    assert rig.origin.count(SCRIPT) == 2


async def test_a_changed_file_replaces_the_entry_on_revalidation(rig: Rig) -> None:
    rig.origin.files[SCRIPT] = File(b"old", {"ETag": '"v1"', "Cache-Control": "max-age=60"})
    await rig.get(SCRIPT)
    rig.origin.files[SCRIPT] = File(b"new", {"ETag": '"v2"', "Cache-Control": "max-age=60"})
    rig.clock.advance(61)
    status, headers, body = await rig.get(SCRIPT)
    assert (status, body) == (200, b"new")
    assert status_of(headers) == "webproxy; fwd=miss; fwd-status=200; stored"
    _, _, body = await rig.get(SCRIPT)
    assert body == b"new"


async def test_a_browsers_conditional_request_gets_304_from_the_cache(rig: Rig) -> None:
    modified = "Tue, 01 Dec 2026 10:00:00 GMT"
    rig.origin.files[SCRIPT] = File(
        b"body", {"ETag": '"v1"', "Last-Modified": modified, "Cache-Control": "max-age=300"}
    )
    await rig.get(SCRIPT)
    status, headers, body = await rig.get(SCRIPT, **{"If-None-Match": 'W/"v0", "v1"'})
    assert (status, body) == (304, b"")
    assert headers["ETag"] == '"v1"' and status_of(headers).startswith("webproxy; hit")
    status, _, body = await rig.get(SCRIPT, **{"If-None-Match": '"v0"'})
    assert (status, body) == (200, b"body")
    status, _, _ = await rig.get(SCRIPT, **{"If-Modified-Since": "Wed, 02 Dec 2026 00:00:00 GMT"})
    assert status == 304
    status, _, _ = await rig.get(SCRIPT, **{"If-Modified-Since": "Mon, 30 Nov 2026 00:00:00 GMT"})
    assert status == 200
    assert rig.origin.count(SCRIPT) == 1


@pytest.mark.parametrize(
    ("query", "refreshes"),
    [
        ("nocache", True),
        ("nocache=", True),
        ("nocache=1", True),
        ("nocache=0", False),
        ("bypassServerCache=true&nocache", True),
        ("bypassServerCache=TRUE", True),
        ("bypassServerCache=false", False),
    ],
)
async def test_nocache_and_bypass_refresh_desktop_entries(
    rig: Rig, query: str, refreshes: bool
) -> None:
    rig.origin.files[SCRIPT] = File(b"old", {"Cache-Control": "max-age=300"})
    await rig.get(SCRIPT)
    rig.origin.files[SCRIPT] = File(b"new", {"Cache-Control": "max-age=300"})
    status, headers, body = await rig.get(f"{SCRIPT}?{query}")
    assert status == 200
    if refreshes:
        assert body == b"new"
        assert status_of(headers) == "webproxy; fwd=bypass; fwd-status=200; stored"
        assert rig.origin.seen[-1].path_qs == f"{SCRIPT}?{query}"  # Finesse sees it as sent
    else:
        assert body == b"old" and status_of(headers).startswith("webproxy; hit")
    _, _, body = await rig.get(SCRIPT)  # the entry itself, refreshed or not
    assert body == (b"new" if refreshes else b"old")


async def test_authmode_keeps_one_entry_per_user_and_ignores_nocache(rig: Rig) -> None:
    rig.origin.files[AUTH_MODE] = File(b"<UserAuthMode/>", {"Content-Type": "application/xml"})
    for user in ("alice", "bob", "alice", "bob"):
        await rig.get(f"{AUTH_MODE}?username={user}&nocache=1700000000000")
    assert rig.origin.count(AUTH_MODE) == 2
    assert all("Authorization" not in seen.headers for seen in rig.origin.seen)
    _, headers, _ = await rig.get(f"{AUTH_MODE}?username=alice", **AGENT)
    assert status_of(headers).startswith("webproxy; hit")


@pytest.mark.parametrize(
    ("query", "headers"),
    [("url=/g.xml&st=viewer-token", {}), ("url=/g.xml", dict(AGENT))],
    ids=["security-token", "authorization"],
)
async def test_shindig_never_shares_what_carries_a_token_or_credential(
    rig: Rig, query: str, headers: dict[str, str]
) -> None:
    rig.origin.files[IFR] = File(b"<html>gadget</html>", {"Cache-Control": "public, max-age=3600"})
    for _ in range(2):
        status, answer, _ = await rig.get(f"{IFR}?{query}", **headers)
        assert status == 200
        assert status_of(answer) == "webproxy; fwd=uri-miss; detail=not-shared"
    assert rig.origin.count(IFR) == 2
    assert rig.origin.seen[-1].path_qs == f"{IFR}?{query}"
    for seen in rig.origin.seen:  # forwarded as sent: the credential is the viewer's own
        assert ("Authorization" in seen.headers) == ("Authorization" in headers)


async def test_shindig_keys_by_the_whole_query(rig: Rig) -> None:
    rig.origin.files[IFR] = File(b"gadget", {"Cache-Control": "public, max-age=3600"})
    for target in ("?url=/a.xml&mid=1", "?url=/a.xml&mid=2", "?mid=1&url=/a.xml", "?url=/b.xml"):
        await rig.get(IFR + target)
    assert rig.origin.count(IFR) == 3  # the reordered query is the first one


async def test_stale_if_error_unless_the_answer_forbids_it(rig: Rig) -> None:
    rig.origin.files[SCRIPT] = File(b"old", {"Cache-Control": "max-age=60"})
    rig.origin.files[GADGET] = File(b"strict", {"Cache-Control": "max-age=60, must-revalidate"})
    await rig.get(SCRIPT)
    await rig.get(GADGET)
    rig.clock.advance(70)
    for path in (SCRIPT, GADGET):
        rig.origin.files[path] = dataclasses.replace(rig.origin.files[path], status=503)
    status, headers, body = await rig.get(SCRIPT)
    assert (status, body) == (200, b"old")
    assert (
        status_of(headers) == "webproxy; fwd=stale; fwd-status=503; ttl=-10; detail=stale-if-error"
    )
    status, headers, _ = await rig.get(GADGET)
    assert status == 503
    assert status_of(headers) == "webproxy; fwd=miss; fwd-status=503"


async def test_paths_the_desktop_cache_does_not_cover_are_forwarded_untouched(rig: Rig) -> None:
    for path in ("/desktop/api/v1/session", "/desktop/sso/token", "/desktop/container/data"):
        rig.origin.files[path] = File(b"dynamic", {"Cache-Control": "max-age=300"})
        for _ in range(2):
            status, headers, _ = await rig.get(path, **COOKIE)
            assert status == 200 and "Cache-Status" not in headers
        assert rig.origin.count(path) == 2
        assert rig.origin.seen[-1].headers["Cookie"] == COOKIE["Cookie"]


async def test_each_cache_is_cleared_on_its_own(rig: Rig) -> None:
    targets = {
        "desktop": SCRIPT,
        "shindig": f"{IFR}?url=/a.xml",
        "authmode": f"{AUTH_MODE}?username=alice",
    }
    for target in targets.values():
        rig.origin.files[target.partition("?")[0]] = File(b"x", {"Cache-Control": "max-age=300"})
        await rig.get(target)
    for name in targets:
        response = await rig.proxy.admin.post("/admin/cache/clear", params={"cache": name})
        assert response.status == 200
        assert await response.json() == {"cleared": {"cache": name}}
        for other, other_target in targets.items():
            _, headers, _ = await rig.get(other_target)
            expected = "webproxy; fwd=miss" if other == name else "webproxy; hit"
            assert status_of(headers).startswith(expected), (name, other)
    response = await rig.proxy.admin.post("/admin/cache/clear", params={"cache": "all"})
    assert response.status == 200
    for target in targets.values():
        _, headers, _ = await rig.get(target)
        assert status_of(headers).startswith("webproxy; fwd=miss")


@pytest.mark.parametrize(
    "params",
    [
        {"cache": "nonsense"},
        {"cache": "desktop", "team": "5000"},
        {"cache": "all", "resource": "x"},
    ],
)
async def test_a_bad_clear_is_refused_and_clears_nothing(rig: Rig, params: dict[str, str]) -> None:
    rig.origin.files[SCRIPT] = File(b"x", {"Cache-Control": "max-age=300"})
    await rig.get(SCRIPT)
    response = await rig.proxy.admin.post("/admin/cache/clear", params=params)
    assert response.status == 400
    _, headers, _ = await rig.get(SCRIPT)
    assert status_of(headers).startswith("webproxy; hit")


async def test_stats_and_metrics_count_each_cache(rig: Rig) -> None:
    rig.origin.files[SCRIPT] = File(b"x" * 1000, {"Cache-Control": "max-age=300"})
    await rig.get(SCRIPT)
    await rig.get(SCRIPT)
    response = await rig.proxy.admin.get("/admin/cache")
    stats = await response.json()
    desktop = stats["caches"]["desktop"]
    assert (desktop["entries"], desktop["hits"], desktop["misses"]) == (1, 1, 1)
    assert desktop["bytes"] >= 1000
    assert stats["caches"]["shindig"] == {"entries": 0, "bytes": 0, "hits": 0, "misses": 0}
    scrape = await (await rig.proxy.admin.get("/metrics")).text()
    assert 'webproxy_cache_lookups_total{cache="desktop",resource="desktop",result="hit"} 1.0' in (
        scrape
    )


async def test_the_desktop_cache_has_its_own_byte_bound(
    origin: tuple[Origin, TestServer], start_proxy: ProxyFactory, clock: ManualClock
) -> None:
    served, server = origin
    url = str(server.make_url("")).rstrip("/")
    cache = {"desktop": HttpCacheSettings(max_bytes=64 * 1024)}
    proxy = await start_proxy(settings_for(url, cache=cache), clock)
    served.files[SCRIPT] = File(b"x" * 100_000, {"Cache-Control": "max-age=300"})
    served.files[AUTH_MODE] = File(b"y" * 100_000, {"Cache-Control": "max-age=300"})
    for target in (SCRIPT, SCRIPT, f"{AUTH_MODE}?username=a", f"{AUTH_MODE}?username=a"):
        response = await proxy.client.get(target)
        assert response.status == 200
    assert served.count(SCRIPT) == 2  # over the desktop cache's bound: never kept
    assert served.count(AUTH_MODE) == 1  # the authmode cache's own bound holds it


async def test_a_disabled_cache_forwards_everything(
    origin: tuple[Origin, TestServer], start_proxy: ProxyFactory
) -> None:
    served, server = origin
    url = str(server.make_url("")).rstrip("/")
    cache = {"desktop": HttpCacheSettings(enabled=False)}
    proxy = await start_proxy(settings_for(url, cache=cache))
    served.files[SCRIPT] = File(b"x", {"Cache-Control": "max-age=300"})
    for _ in range(2):
        response = await proxy.client.get(SCRIPT, headers=CIMultiDict(COOKIE))
        assert "Cache-Status" not in response.headers
    assert served.count(SCRIPT) == 2


#: One path of each HTTP cache, with the query a client sends.
EACH_CACHE = {
    "desktop": SCRIPT,
    "shindig": "/gadgets/js/core:rpc.js?v=abc&c=1",
    "authmode": f"{AUTH_MODE}?username=alice",
}


@pytest.mark.parametrize("target", EACH_CACHE.values(), ids=list(EACH_CACHE))
async def test_each_cache_misses_hits_answers_validators_and_keeps_variants_apart(
    rig: Rig, target: str
) -> None:
    path = target.partition("?")[0]
    text = b"the same file, " * 40
    rig.origin.files[path] = File(text, {"ETag": '"v1"', "Cache-Control": "max-age=300"}, gzip=True)
    statuses = []
    for encoding in ("gzip", "identity", "gzip", "identity"):
        status, headers, body = await rig.get(target, **{"Accept-Encoding": encoding})
        assert status == 200
        assert (gzip.decompress(body) if encoding == "gzip" else body) == text
        statuses.append(status_of(headers).partition(";")[2].strip().partition(";")[0])
    assert statuses == ["fwd=miss", "fwd=miss", "hit", "hit"]
    status, headers, body = await rig.get(
        target, **{"Accept-Encoding": "gzip", "If-None-Match": '"v1-gz"'}
    )
    assert (status, body) == (304, b"")
    assert status_of(headers).startswith("webproxy; hit") and headers["ETag"] == '"v1-gz"'
    assert rig.origin.count(path) == 2


@pytest.mark.parametrize("target", EACH_CACHE.values(), ids=list(EACH_CACHE))
async def test_each_cache_never_serves_what_needs_a_credential_to_another(
    rig: Rig, target: str
) -> None:
    path = target.partition("?")[0]
    rig.origin.files[path] = File(b"only with a credential", needs_credential=True)
    headers = dict(COOKIE) if "/gadgets/" in path else {**AGENT, **COOKIE}
    if "/gadgets/" not in path:
        status, answer, body = await rig.get(target, **headers)
        assert (status, body) == (200, b"only with a credential")
        assert "not-shared" in status_of(answer)
    for _ in range(2):
        status, answer, body = await rig.get(target)
        assert (status, body) == (401, b"sign in first")
        assert "Cache-Status" in answer


@pytest.mark.parametrize(
    ("target", "refreshing", "ignored"),
    [
        (SCRIPT, ("nocache", "bypassServerCache=true"), ("nocache=0",)),
        (EACH_CACHE["shindig"], ("nocache=1", "bypassServerCache=true"), ("nocache=0",)),
        (EACH_CACHE["authmode"], ("bypassServerCache=true",), ("nocache=1", "nocache")),
    ],
    ids=list(EACH_CACHE),
)
async def test_each_caches_bypass_rules(
    rig: Rig, target: str, refreshing: tuple[str, ...], ignored: tuple[str, ...]
) -> None:
    path = target.partition("?")[0]
    rig.origin.files[path] = File(b"one", {"Cache-Control": "max-age=300"})
    await rig.get(target)
    joiner = "&" if "?" in target else "?"
    for parameter in ignored:
        _, headers, body = await rig.get(f"{target}{joiner}{parameter}")
        assert (status_of(headers).startswith("webproxy; hit"), body) == (True, b"one")
    for number, parameter in enumerate(refreshing):
        fresh = f"refreshed {number}".encode()
        rig.origin.files[path] = File(fresh, {"Cache-Control": "max-age=300"})
        _, headers, body = await rig.get(f"{target}{joiner}{parameter}")
        assert body == fresh and status_of(headers).startswith("webproxy; fwd=bypass")
        _, headers, body = await rig.get(target)
        assert body == fresh and status_of(headers).startswith("webproxy; hit")
