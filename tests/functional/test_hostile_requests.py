"""Hostile requests can't hurt other clients: bodies pass byte for byte, a write that never
arrived purges nothing, answers too large to hold stream through, logs can't be forged."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
import socket
import struct
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from tests.conftest import ADMIN, AGENT, Proxy, ProxyFactory, Sim, settings_for
from tests.functional.finesse import eventually
from webproxy.appkeys import services_key
from webproxy.cache.rules import Resource, Scope
from webproxy.sim.faults import Fault, FaultKind

CODES = "/finesse/api/TeamResource/5000/ReasonCodes?category=NOT_READY"
CHAT = Scope(Resource.CHAT_CONFIG)


@dataclass
class Recorder:
    """A test upstream that keeps, per request, the bytes it received and its connection."""

    url: str = ""
    bodies: list[bytes] = field(default_factory=list)
    peers: list[object] = field(default_factory=list)


RECORDER = web.AppKey("recorder", Recorder)


async def record(request: web.Request) -> web.Response:
    recorder = request.app[RECORDER]
    recorder.bodies.append(await request.read())
    recorder.peers.append(
        request.transport.get_extra_info("peername") if request.transport else None
    )
    return web.Response(text=f"got {len(recorder.bodies[-1])}")


@pytest.fixture
async def recorder(aiohttp_server: AiohttpServer) -> Recorder:
    """Its own server does not decompress either: it sees the bytes that arrived."""
    found = Recorder()
    app = web.Application(client_max_size=1 << 24)
    app[RECORDER] = found
    app.router.add_route("*", "/{tail:.*}", record)
    server = await aiohttp_server(app, auto_decompress=False)
    found.url = str(server.make_url("")).rstrip("/")
    return found


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data)


def deflated(data: bytes) -> bytes:
    return zlib.compress(data)


BODIES = {
    "gzip": (gzipped(b"<ReasonCode>away</ReasonCode>" * 40), "gzip"),
    "gzip-truncated": (gzipped(b"<ReasonCode>away</ReasonCode>" * 40)[:-9], "gzip"),
    "deflate": (deflated(b"<WrapUpReason/>" * 50), "deflate"),
    "gzip-inflating-far-larger": (gzipped(b"\0" * 1_000_000), "gzip"),
    "gzip-inflating-smaller": (gzipped(os.urandom(64)), "gzip"),
    "not-gzip-at-all": (b"\x1f\x8b garbage", "gzip"),
}


@pytest.mark.parametrize("case", list(BODIES), ids=list(BODIES))
@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
async def test_compressed_request_bodies_reach_finesse_byte_for_byte(
    recorder: Recorder, start_proxy: ProxyFactory, case: str, chunked: bool
) -> None:
    body, encoding = BODIES[case]
    proxy = await start_proxy(settings_for(recorder.url, upstream={"max_connections": 1}))

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    headers = {"Content-Encoding": encoding, "Content-Type": "application/xml"}
    data = pieces() if chunked else body
    answer = await proxy.client.put("/finesse/api/ReasonCode/1", data=data, headers=headers)
    assert answer.status == 200
    assert hashlib.sha256(recorder.bodies[-1]).digest() == hashlib.sha256(body).digest()
    # one pooled connection: the next user's request on it is read as its own
    after = await proxy.client.post("/finesse/api/Dialogs", data=b"<Dialog/>", headers=AGENT)
    assert await after.text() == "got 9"
    assert recorder.bodies[-1] == b"<Dialog/>"


async def warm(proxy: Proxy, path: str = CODES) -> None:
    await proxy.client.get("/finesse/api/User/10001", headers=AGENT)
    first = await proxy.client.get(path, headers=AGENT)
    assert first.status == 200
    second = await proxy.client.get(path, headers=AGENT)
    assert second.headers["Cache-Status"].startswith("webproxy; hit")


async def abort_mid_body(proxy: Proxy, target: str, length: int, sent: int) -> None:
    """Send a write's head and `sent` of its `length` body bytes, then reset the connection."""
    server = proxy.client.server
    _, writer = await asyncio.open_connection(server.host, server.port)
    head = (
        f"PUT {target} HTTP/1.1\r\nHost: finesse\r\nAuthorization: {ADMIN['Authorization']}\r\n"
        f"Content-Type: application/xml\r\nContent-Length: {length}\r\n\r\n"
    )
    writer.write(head.encode() + b"x" * sent)
    await writer.drain()
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()  # RST: the rest of the body never comes


def sample(proxy: Proxy, name: str, **labels: str) -> float:
    value = proxy.app[services_key].metrics.registry.get_sample_value(name, labels)
    return value or 0.0


@pytest.mark.parametrize(
    ("target", "length"),
    [
        ("/finesse/api/Team/5000/ReasonCodes", 100),  # read whole before Finesse sees it
        ("/finesse/api/ReasonCode/1", 100),  # every team's
        ("/finesse/api/ReasonCode/1", 200_000),  # over body_buffer_bytes: streamed
    ],
    ids=["team-buffered", "all-teams-buffered", "all-teams-streamed"],
)
async def test_a_write_abandoned_mid_body_purges_nothing_and_is_no_upstream_error(
    sim: Sim, proxy: Proxy, target: str, length: int
) -> None:
    await warm(proxy)
    await abort_mid_body(proxy, target, length, sent=10 if length < 1000 else 70_000)

    await eventually(
        lambda: sample(proxy, "webproxy_requests_total", route="api", status="499") >= 1
    )
    assert sample(proxy, "webproxy_cache_purges_total", reason="write") == 0
    assert sample(proxy, "webproxy_upstream_errors_total", kind="unavailable") == 0
    still = await proxy.client.get(CODES, headers=AGENT)
    assert still.headers["Cache-Status"].startswith("webproxy; hit")


async def test_a_whole_write_whose_answer_never_comes_still_purges(
    sim: Sim, start_proxy: ProxyFactory
) -> None:
    proxy = await start_proxy(settings_for(sim.url, upstream={"read_timeout": 0.3}))
    await warm(proxy)
    sim.sim.inject(Fault("/finesse/api/ReasonCode/1", FaultKind.HANG))  # it arrived whole
    answer = await proxy.client.put("/finesse/api/ReasonCode/1", data=b"<x/>", headers=ADMIN)
    assert answer.status == 504
    assert sample(proxy, "webproxy_cache_purges_total", reason="write") == 1
    miss = await proxy.client.get(CODES, headers=AGENT)
    assert "fwd=miss" in miss.headers["Cache-Status"]


BIG = os.urandom(3 * 1024 * 1024)


async def big_chat_config(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/xml"})
    if "length" in request.query:
        response.content_length = len(BIG)
    await response.prepare(request)
    for start in range(0, len(BIG), 65536):
        await response.write(BIG[start : start + 65536])
    return response


async def big_user(request: web.Request) -> web.Response:
    padding = "<!--" + "x" * 300_000 + "-->"
    return web.Response(
        text=f"<User><loginId>10001</loginId><teamId>5000</teamId>{padding}</User>",
        content_type="application/xml",
    )


@pytest.fixture
async def big_upstream(aiohttp_server: AiohttpServer) -> str:
    app = web.Application()
    app.router.add_get("/finesse/api/ChatConfig", big_chat_config)
    app.router.add_get("/finesse/api/User/10001", big_user)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/")


@pytest.mark.parametrize("query", ["", "?length=1"], ids=["chunked", "content-length"])
async def test_an_answer_over_max_entry_bytes_streams_through_and_is_not_stored(
    big_upstream: str, start_proxy: ProxyFactory, query: str
) -> None:
    settings = settings_for(big_upstream, cache={"max_entry_bytes": 1024 * 1024})
    proxy = await start_proxy(settings)
    proxy.app[services_key].identities.approve(AGENT["Authorization"], CHAT, asked_at=0.0)
    for _ in range(2):
        answer = await proxy.client.get(f"/finesse/api/ChatConfig{query}", headers=AGENT)
        assert answer.status == 200
        assert answer.headers["Cache-Status"] == (
            "webproxy; fwd=miss; fwd-status=200; detail=too-large"
        )
        assert hashlib.sha256(await answer.read()).digest() == hashlib.sha256(BIG).digest()
    assert (await proxy.app[services_key].store.stats()).entries == 0


async def test_a_sign_in_answer_over_its_limit_is_passed_on_and_binds_nothing(
    big_upstream: str, start_proxy: ProxyFactory
) -> None:
    settings = settings_for(big_upstream, cache={"max_sign_in_bytes": 64 * 1024})
    proxy = await start_proxy(settings)
    answer = await proxy.client.get("/finesse/api/User/10001", headers=AGENT)
    assert answer.status == 200
    assert len(await answer.read()) > 300_000
    assert len(proxy.app[services_key].identities) == 0


async def test_a_key_over_max_key_bytes_is_forwarded_uncached(
    sim: Sim, start_proxy: ProxyFactory
) -> None:
    proxy = await start_proxy(settings_for(sim.url, cache={"max_key_bytes": 512}))
    await proxy.client.get("/finesse/api/User/10001", headers=AGENT)
    long = f"{CODES}&pad={'p' * 600}"
    for _ in range(2):
        answer = await proxy.client.get(long, headers=AGENT)
        assert answer.status == 200
        assert answer.headers["Cache-Status"].endswith("detail=key-too-long")
    short = await proxy.client.get(CODES, headers=AGENT)
    assert "stored" in short.headers["Cache-Status"]


async def test_a_write_that_never_left_the_proxy_purges_nothing(
    start_proxy: ProxyFactory,
) -> None:
    down = await start_proxy(settings_for("http://127.0.0.1:9"))  # refused: never sent
    write = await down.client.put("/finesse/api/ReasonCode/1", data=b"<x/>", headers=ADMIN)
    assert write.status == 502
    assert sample(down, "webproxy_cache_purges_total", reason="write") == 0
    assert len(down.app[services_key].repurges) == 0


LARGE = os.urandom(300_000)


async def test_a_large_cached_answer_is_served_whole_a_slice_at_a_time(
    aiohttp_server: AiohttpServer, start_proxy: ProxyFactory
) -> None:
    async def chat(request: web.Request) -> web.Response:
        return web.Response(body=LARGE, content_type="application/xml")

    app = web.Application()
    app.router.add_get("/finesse/api/ChatConfig", chat)
    server = await aiohttp_server(app)
    proxy = await start_proxy(settings_for(str(server.make_url("")).rstrip("/")))
    proxy.app[services_key].identities.approve(AGENT["Authorization"], CHAT, asked_at=0.0)
    for status in ("fwd=miss", "hit"):
        answer = await proxy.client.get("/finesse/api/ChatConfig", headers=AGENT)
        assert status in answer.headers["Cache-Status"]
        assert answer.headers["Content-Type"] == "application/xml"
        assert answer.headers["Content-Length"] == str(len(LARGE))
        assert await answer.read() == LARGE
