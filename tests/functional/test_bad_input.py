"""Malformed or hostile requests get a clear 4xx from the proxy, and the proxy keeps serving."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from tests.conftest import Proxy, ProxyFactory, settings_for

MAX_HEADER = 1024
MAX_BODY = 4096


async def echo(request: web.Request) -> web.Response:
    return web.Response(body=await request.read())


@pytest.fixture
async def proxy(aiohttp_server: AiohttpServer, start_proxy: ProxyFactory) -> Proxy:
    app = web.Application(client_max_size=1 << 24)
    app.router.add_route("*", "/{tail:.*}", echo)
    upstream = await aiohttp_server(app)
    settings = settings_for(
        str(upstream.make_url("")).rstrip("/"),
        server={"max_header_bytes": MAX_HEADER, "max_body_bytes": MAX_BODY},
    )
    return await start_proxy(settings)


async def exchange(proxy: Proxy, raw: bytes) -> bytes:
    """Send raw bytes on a fresh connection; return everything the proxy answers."""
    server = proxy.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(raw)
        await writer.drain()
        async with asyncio.timeout(5):
            head = await reader.readuntil(b"\r\n\r\n")
            return head + await _rest(reader, head)
    finally:
        writer.close()


async def _rest(reader: asyncio.StreamReader, head: bytes) -> bytes:
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return await reader.readexactly(int(line.split(b":")[1]))
    return b""


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def request(line: bytes, *headers: bytes, body: bytes = b"") -> bytes:
    lines = [line, b"Host: finesse.example", *headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


CASES = [
    pytest.param(b"NONSENSE\r\n\r\n", range(400, 401), id="malformed-request-line"),
    pytest.param(
        request(b"GET /" + b"a" * (MAX_HEADER * 2) + b" HTTP/1.1"),
        range(400, 432),
        id="long-target",
    ),
    pytest.param(
        request(b"GET / HTTP/1.1", b"X-Big: " + b"b" * (MAX_HEADER * 2)),
        range(400, 432),
        id="oversized-header",
    ),
    pytest.param(
        request(b"GET /finesse/api/%zz HTTP/1.1"), range(400, 401), id="invalid-percent-encoding"
    ),
    pytest.param(
        request(b"GET http://evil.example/finesse/api/ChatConfig HTTP/1.1"),
        range(400, 401),
        id="absolute-form",
    ),
    pytest.param(request(b"CONNECT evil.example:443 HTTP/1.1"), range(405, 406), id="connect"),
    pytest.param(
        request(
            b"POST /finesse/api/ClientLog HTTP/1.1",
            b"Content-Length: %d" % (MAX_BODY + 1),
            body=b"x" * (MAX_BODY + 1),
        ),
        range(413, 414),
        id="oversized-body",
    ),
    pytest.param(
        request(b"GET / HTTP/1.1", b"Content-Length: 5", b"Content-Length: 6", body=b"hello!"),
        range(400, 401),
        id="conflicting-content-length",
    ),
]


@pytest.mark.parametrize(("raw", "statuses"), CASES)
async def test_bad_request_gets_a_4xx_and_the_next_request_succeeds(
    proxy: Proxy, raw: bytes, statuses: range
) -> None:
    answer = await exchange(proxy, raw)
    assert status_of(answer) in statuses, answer[:200]
    assert b"Traceback" not in answer
    good = await proxy.client.post("/finesse/api/ClientLog", data=b"fine")
    assert good.status == 200
    assert await good.read() == b"fine"


async def test_an_oversized_chunked_body_is_refused(proxy: Proxy) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(MAX_BODY // 512 + 4):
            yield b"y" * 512

    response = await proxy.client.post("/finesse/api/ClientLog", data=chunks())
    assert response.status == 413
    good = await proxy.client.get("/finesse/api/SystemInfo")
    assert good.status == 200
