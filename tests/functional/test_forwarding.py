"""Forwarding through the proxy to a small upstream written for these tests."""

from __future__ import annotations

import asyncio
import gzip
import time
from dataclasses import dataclass
from typing import TypeVar

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer
from yarl import URL

from tests.conftest import ProxyFactory, settings_for

T = TypeVar("T")
SEEN = web.AppKey("seen", list[web.Request])
RELEASE = web.AppKey("release", asyncio.Event)


async def record(request: web.Request) -> web.Response:
    request.app[SEEN].append(request)
    await request.read()
    return web.Response(
        text="ok",
        headers={"Connection": "X-Secret", "X-Secret": "hop", "Keep-Alive": "timeout=5"},
    )


async def redirect(request: web.Request) -> web.Response:
    return web.Response(status=302, headers={"Location": "https://finesse.example:8445/desktop/"})


async def gzipped(request: web.Request) -> web.Response:
    return web.Response(
        body=gzip.compress(b"<ChatConfig/>" * 100),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/xml"},
    )


async def trickle(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(request)
    await response.write(b"first;")
    await request.app[RELEASE].wait()
    await response.write(b"second")
    await response.write_eof()
    return response


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("seconds", "5")))  # the upstream is slow
    return web.Response(text="late")


@dataclass
class Upstream:
    app: web.Application
    url: str

    def __getitem__(self, key: web.AppKey[T]) -> T:
        return self.app[key]


@pytest.fixture
async def upstream(aiohttp_server: AiohttpServer) -> Upstream:
    app = web.Application()
    app[SEEN] = []
    app[RELEASE] = asyncio.Event()
    app.router.add_route("*", "/record/{tail:.*}", record)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/gzipped", gzipped)
    app.router.add_get("/trickle", trickle)
    app.router.add_get("/slow", slow)
    app.router.add_post("/http-bind/", slow)
    server = await aiohttp_server(app)
    return Upstream(app, str(server.make_url("")).rstrip("/"))


async def test_hop_by_hop_headers_are_removed_both_ways(
    upstream: Upstream, start_proxy: ProxyFactory
) -> None:
    proxy = await start_proxy(settings_for(upstream.url))
    response = await proxy.client.get(
        "/record/a",
        headers={
            "Connection": "keep-alive, X-Drop-Me",
            "X-Drop-Me": "1",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Proxy-Authorization": "Basic c2VjcmV0",
            "X-Keep-Me": "2",
        },
    )
    assert response.status == 200
    seen = upstream[SEEN][0].headers
    for name in ("X-Drop-Me", "Keep-Alive", "TE", "Proxy-Authorization"):
        assert name not in seen
    assert seen["X-Keep-Me"] == "2"
    assert "X-Secret" not in response.headers
    assert "Keep-Alive" not in response.headers


async def test_forwarded_headers_and_via_are_added(
    upstream: Upstream, start_proxy: ProxyFactory
) -> None:
    proxy = await start_proxy(settings_for(upstream.url))
    response = await proxy.client.get(
        "/record/b", headers={"X-Forwarded-For": "203.0.113.9", "Host": "desk.example:8445"}
    )
    assert response.status == 200
    seen = upstream[SEEN][0]
    assert seen.headers["X-Forwarded-For"] == "203.0.113.9, 127.0.0.1"
    assert seen.headers["X-Forwarded-Proto"] == "http"
    assert seen.headers["X-Forwarded-Host"] == "desk.example:8445"
    assert seen.headers["Via"] == "1.1 webproxy"
    assert seen.host == upstream.url.removeprefix("http://")
    assert response.headers["Via"].endswith("1.1 webproxy")


async def test_method_path_query_and_body_reach_the_upstream_unchanged(
    upstream: Upstream, start_proxy: ProxyFactory, raw_session: aiohttp.ClientSession
) -> None:
    proxy = await start_proxy(settings_for(upstream.url))
    target = "/record/a%20b/C?x=1&x=2&y=%2F%3F&z"
    url = URL(str(proxy.client.make_url("")).rstrip("/") + target, encoded=True)
    async with raw_session.patch(url, data=b"\x00\x01body") as response:
        assert response.status == 200
    seen = upstream[SEEN][0]
    assert (seen.method, seen.raw_path) == ("PATCH", target)


async def test_location_is_left_as_the_upstream_sent_it(
    upstream: Upstream, start_proxy: ProxyFactory
) -> None:
    proxy = await start_proxy(settings_for(upstream.url))
    response = await proxy.client.get("/redirect", allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == "https://finesse.example:8445/desktop/"


async def test_compressed_bodies_pass_through_without_decoding(
    upstream: Upstream, start_proxy: ProxyFactory, raw_session: aiohttp.ClientSession
) -> None:
    proxy = await start_proxy(settings_for(upstream.url))
    async with raw_session.get(proxy.client.make_url("/gzipped")) as response:
        body = await response.read()
    assert response.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body) == b"<ChatConfig/>" * 100


async def test_response_bodies_are_streamed_not_buffered(
    upstream: Upstream, start_proxy: ProxyFactory
) -> None:
    proxy = await start_proxy(settings_for(upstream.url))
    async with proxy.client.get("/trickle") as response:
        first = await response.content.readexactly(len(b"first;"))
        assert first == b"first;"  # arrived while the upstream is still waiting
        upstream[RELEASE].set()
        assert await response.content.read() == b"second"


async def test_an_upstream_that_hangs_gives_504_within_the_read_timeout(
    upstream: Upstream, start_proxy: ProxyFactory
) -> None:
    proxy = await start_proxy(settings_for(upstream.url, upstream={"read_timeout": 0.3}))
    started = time.monotonic()
    async with asyncio.timeout(5):
        response = await proxy.client.get("/slow?seconds=30")
    assert response.status == 504
    assert "timed out" in await response.text()
    assert time.monotonic() - started < 5


async def test_a_long_poll_may_outlive_the_read_timeout(
    upstream: Upstream, start_proxy: ProxyFactory
) -> None:
    settings = settings_for(upstream.url, upstream={"read_timeout": 0.2, "idle_timeout": 5.0})
    proxy = await start_proxy(settings)
    response = await proxy.client.post("/http-bind/?seconds=0.6", data=b"<body/>")
    assert response.status == 200
    assert await response.text() == "late"


async def test_a_stopped_upstream_gives_502_at_once(start_proxy: ProxyFactory) -> None:
    with socket_nobody_listens_on() as port:
        proxy = await start_proxy(settings_for(f"http://127.0.0.1:{port}"))
        async with asyncio.timeout(5):
            response = await proxy.client.get("/finesse/api/SystemInfo")
    assert response.status == 502
    assert "unavailable" in await response.text()
    health = await proxy.admin.get("/readyz")
    assert health.status == 503


class socket_nobody_listens_on:
    """A port that refuses connections: bound, never listening, closed afterwards."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return int(self.sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
