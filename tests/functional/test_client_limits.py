"""A client can't hold more than its share: every `[server]` limit refuses the hostile
connection, and another client is served meanwhile.

Real sockets throughout: raw `asyncio` connections for what no well-behaved client sends,
small aiohttp upstreams that hold their answers on events the test releases, and
`webproxy serve` itself under a low descriptor limit.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Final, Protocol

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from tests.conftest import ADMIN, AGENT, Proxy, ProxyFactory, Sim, settings_for
from tests.functional.finesse import eventually, sign_in
from tests.functional.serving import serving
from webproxy.appkeys import services_key
from webproxy.config import Settings

USER_PATH: Final = "/finesse/api/User/10001"
USER_10001: Final = (
    "<User><uri>/finesse/api/User/10001</uri><loginId>10001</loginId><loginName>agent10001"
    "</loginName><roles><role>Agent</role></roles><teamId>5000</teamId></User>"
)
CODES: Final = "/finesse/api/TeamResource/5000/ReasonCodes?category=ALL"
TEAM_CODES_WRITE: Final = "/finesse/api/Team/5000/ReasonCodes"
#: What the streaming upstream sends at most: more than every buffer between it and a
#: client that never reads (the kernel's included), so only an abort ends it early.
BIG: Final = 64 * 1024 * 1024
CHUNK: Final = 64 * 1024


# --- the upstream ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Received:
    """A request body as the upstream got it, and the connection it came on."""

    port: int
    size: int
    complete: bool


@dataclass
class Backend:
    """A small Finesse: a sign-in, one team resource, answers held on `release`, uploads
    it reads to the end (or until the connection drops), and a very large answer."""

    url: str = ""
    release: asyncio.Event = field(default_factory=asyncio.Event)
    held: int = 0
    most_held: int = 0
    uploads_open: int = 0
    most_uploads: int = 0
    received: list[Received] = field(default_factory=list)
    ports: list[tuple[str, int]] = field(default_factory=list)  # (path, peer port) per request
    big_started: asyncio.Event = field(default_factory=asyncio.Event)
    big_failed: asyncio.Event = field(default_factory=asyncio.Event)
    big_sent: int = 0

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.note_port], client_max_size=1 << 24)
        app.router.add_get(USER_PATH, self.user)
        app.router.add_get("/finesse/api/TeamResource/5000/ReasonCodes", self.codes)
        app.router.add_get("/finesse/api/Ping", self.ping)
        app.router.add_route("*", "/finesse/api/Held", self.hold)
        app.router.add_put(TEAM_CODES_WRITE, self.upload)
        app.router.add_put("/finesse/api/Upload", self.upload)
        app.router.add_get("/finesse/api/Big", self.big)
        app.router.add_route("*", "/echo", self.echo)
        app.router.add_post("/http-bind/", self.hold)
        return app

    @web.middleware
    async def note_port(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self.ports.append((request.path, peer_port(request)))
        return await handler(request)

    async def user(self, request: web.Request) -> web.Response:
        return web.Response(text=USER_10001, content_type="application/xml")

    async def codes(self, request: web.Request) -> web.Response:
        return web.Response(text="<ReasonCodes>v1</ReasonCodes>", content_type="application/xml")

    async def ping(self, request: web.Request) -> web.Response:
        return web.Response(text="pong")

    async def hold(self, request: web.Request) -> web.Response:
        self.held += 1
        self.most_held = max(self.most_held, self.held)
        try:
            await self.release.wait()
        finally:
            self.held -= 1
        return web.Response(text="held")

    async def upload(self, request: web.Request) -> web.Response:
        self.uploads_open += 1
        self.most_uploads = max(self.most_uploads, self.uploads_open)
        size, complete = 0, False
        try:
            while chunk := await request.content.readany():
                size += len(chunk)
            complete = size == request.content_length
        except Exception:  # the connection dropped mid-body: that is what is recorded
            complete = False
        finally:
            self.uploads_open -= 1
            self.received.append(Received(peer_port(request), size, complete))
        return web.Response(text=f"got {size}")

    async def big(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = BIG
        await response.prepare(request)
        self.big_started.set()
        chunk = b"b" * CHUNK
        try:
            while self.big_sent < BIG:
                await response.write(chunk)
                self.big_sent += len(chunk)
        except ConnectionError:
            pass
        finally:
            if self.big_sent < BIG:
                self.big_failed.set()
        return response

    async def echo(self, request: web.Request) -> web.Response:
        return web.Response(body=await request.read())


def peer_port(request: web.BaseRequest) -> int:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return int(peer[1]) if peer else 0


@pytest.fixture
async def backend(aiohttp_server: AiohttpServer) -> AsyncIterator[Backend]:
    finesse = Backend()
    server = await aiohttp_server(finesse.app())
    finesse.url = str(server.make_url("")).rstrip("/")
    yield finesse
    finesse.release.set()  # nothing held stops the servers closing


def limits(url: str, upstream: dict[str, object] | None = None, **server: object) -> Settings:
    """Default settings with these `[server]` (and `[upstream]`) values; a short grace, so
    a test that fails with requests in flight still tears down quickly."""
    return settings_for(url, server={"shutdown_grace": 0.5, **server}, upstream=upstream or {})


# --- raw client connections ---------------------------------------------------------------


class Raw:
    """One client connection that sends exactly the bytes the test says."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self, within: float = 5.0) -> tuple[int, bytes]:
        """The next answer's status, and its head and body."""
        async with asyncio.timeout(within):
            head = await self.reader.readuntil(b"\r\n\r\n")
            length = content_length(head)
            body = await self.reader.readexactly(length) if length else b""
        return status_of(head), head + body

    async def closed(self, within: float = 5.0) -> bytes:
        """Everything the proxy sends until it closes the connection (reset counts too)."""
        data = bytearray()
        try:
            async with asyncio.timeout(within):
                while chunk := await self.reader.read(CHUNK):
                    data += chunk
        except ConnectionResetError:
            pass
        except TimeoutError:
            raise AssertionError(f"still open after {within}s, got {bytes(data[:80])!r}") from None
        return bytes(data)

    async def close(self) -> None:
        self.writer.close()
        with suppress(OSError, TimeoutError):
            async with asyncio.timeout(1):
                await self.writer.wait_closed()


class Dial(Protocol):
    async def __call__(
        self, where: tuple[str, int], *, local: str | None = None, rcvbuf: int | None = None
    ) -> Raw: ...


@pytest.fixture
async def dial() -> AsyncIterator[Dial]:
    """Open raw connections (from `local`, with a small receive buffer if asked); every one
    is closed at teardown."""
    opened: list[Raw] = []

    async def connect(
        where: tuple[str, int], *, local: str | None = None, rcvbuf: int | None = None
    ) -> Raw:
        if rcvbuf is not None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.setblocking(False)
            try:
                await asyncio.get_running_loop().sock_connect(sock, where)
            except BaseException:
                sock.close()
                raise
            reader, writer = await asyncio.open_connection(sock=sock)
        else:
            local_addr = (local, 0) if local is not None else None
            reader, writer = await asyncio.open_connection(*where, local_addr=local_addr)
        raw = Raw(reader, writer)
        opened.append(raw)
        return raw

    yield connect
    await asyncio.gather(*(raw.close() for raw in opened))


def where(proxy: Proxy) -> tuple[str, int]:
    server = proxy.client.server
    assert server.port is not None
    return server.host, server.port


def content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def head(line: str, *fields: str) -> bytes:
    return ("\r\n".join([line, "Host: finesse.example", *fields]) + "\r\n\r\n").encode()


SIGN_IN: Final = head(f"GET {USER_PATH} HTTP/1.1", f"Authorization: {AGENT['Authorization']}")


def padded_head(size: int, line_bytes: int, *, finished: bool) -> bytes:
    """A sign-in head of about `size` bytes, in padding lines of `line_bytes` each;
    unfinished: exactly `size` bytes and no blank line at the end."""
    start = f"GET {USER_PATH} HTTP/1.1\r\nHost: finesse.example\r\n".encode()
    start += f"Authorization: {AGENT['Authorization']}\r\n".encode()
    lines = [start]
    total = len(start)
    number = 0
    while total < size:
        line = f"X-Pad-{number}: ".encode()
        line += b"p" * (line_bytes - len(line) - 2) + b"\r\n"
        lines.append(line)
        total += len(line)
        number += 1
    data = b"".join(lines)
    return data[:size] if not finished else data + b"\r\n"


# --- other clients, served meanwhile ----------------------------------------------------------


async def signs_in(proxy: Proxy) -> None:
    """A desktop's sign-in through the proxy answers 200."""
    response = await proxy.client.get(USER_PATH, headers=AGENT)
    assert response.status == 200, await response.text()


async def sign_ins_from(proxy: Proxy, local: str, times: int = 1) -> list[int]:
    """The statuses of `times` concurrent sign-ins from the loopback address `local`."""
    connector = aiohttp.TCPConnector(local_addr=(local, 0))
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> int:
            async with session.get(proxy.client.make_url(USER_PATH), headers=AGENT) as response:
                await response.read()
                return response.status

        return list(await asyncio.gather(*(one() for _ in range(times))))


def sample(proxy: Proxy, name: str, **labels: str) -> float:
    value = proxy.app[services_key].metrics.registry.get_sample_value(name, labels)
    return value or 0.0


def upstream_errors(proxy: Proxy) -> float:
    return sum(
        sample(proxy, "webproxy_upstream_errors_total", kind=kind)
        for kind in ("timeout", "unavailable", "error")
    )


def since(started: float) -> float:
    return asyncio.get_running_loop().time() - started


def now() -> float:
    return asyncio.get_running_loop().time()


# --- server.max_head_bytes ----------------------------------------------------------------


async def test_a_head_over_max_head_bytes_gets_431_and_is_closed_and_a_smaller_one_is_served(
    backend: Backend, start_proxy: ProxyFactory, dial: Dial
) -> None:
    proxy = await start_proxy(limits(backend.url, max_header_bytes=1024, max_head_bytes=4096))
    too_large = padded_head(5000, 500, finished=True)
    small = padded_head(3000, 500, finished=True)
    assert max(len(line) for line in too_large.split(b"\r\n")) < 1024
    hostile = await dial(where(proxy))
    await hostile.send(too_large)
    refused = await hostile.closed()
    assert status_of(refused) == 431, refused[:200]
    fine = await dial(where(proxy))
    await fine.send(small)
    status, answer = await fine.answer()
    assert status == 200, answer[:200]
    assert USER_10001.encode() in answer


async def test_fifty_unfinished_heads_just_under_the_limit_are_closed_at_the_header_timeout(
    backend: Backend, start_proxy: ProxyFactory, dial: Dial
) -> None:
    timeout = 1.0
    proxy = await start_proxy(
        limits(
            backend.url, max_header_bytes=1024, max_head_bytes=4096, client_header_timeout=timeout
        )
    )
    unfinished = padded_head(4095, 500, finished=False)
    assert b"\r\n\r\n" not in unfinished and len(unfinished) == 4095
    started = now()
    hostile = [await dial(where(proxy)) for _ in range(50)]
    await asyncio.gather(*(raw.send(unfinished) for raw in hostile))
    outcomes = [asyncio.create_task(raw.closed()) for raw in hostile]
    await signs_in(proxy)
    assert not any(outcome.done() for outcome in outcomes)  # served while all 50 were open
    answers = await asyncio.gather(*outcomes)
    assert since(started) >= timeout - 0.05
    assert [status_of(answer) for answer in answers] == [408] * 50
    await signs_in(proxy)


# --- server.client_header_timeout ---------------------------------------------------------


async def test_half_a_request_line_gets_408_and_is_closed_after_the_header_timeout(
    backend: Backend, start_proxy: ProxyFactory, dial: Dial
) -> None:
    timeout = 1.0
    proxy = await start_proxy(limits(backend.url, client_header_timeout=timeout))
    hostile = await dial(where(proxy))
    started = now()
    await hostile.send(b"GET /finesse/api/Us")
    outcome = asyncio.create_task(hostile.closed())
    await signs_in(proxy)
    assert not outcome.done()
    refused = await outcome
    assert status_of(refused) == 408, refused[:200]
    assert since(started) >= timeout - 0.05
    assert sample(proxy, "webproxy_requests_total", route="other", status="408") == 1


async def test_a_connection_that_sends_nothing_is_closed_without_an_answer(
    backend: Backend, start_proxy: ProxyFactory, dial: Dial
) -> None:
    timeout = 0.5
    proxy = await start_proxy(limits(backend.url, client_header_timeout=timeout))
    started = now()
    silent = await dial(where(proxy))
    outcome = asyncio.create_task(silent.closed())
    await signs_in(proxy)
    assert not outcome.done()
    assert await outcome == b""
    assert timeout - 0.05 <= since(started) < Settings().server.keepalive_timeout


async def test_a_kept_alive_connection_may_idle_past_the_header_timeout_between_requests(
    backend: Backend, start_proxy: ProxyFactory, dial: Dial
) -> None:
    proxy = await start_proxy(limits(backend.url, client_header_timeout=0.3, keepalive_timeout=10))
    desktop = await dial(where(proxy))
    await desktop.send(SIGN_IN)
    assert (await desktop.answer())[0] == 200
    # a connection opened after that answer, closed by the header timeout: at least that
    # long has passed since the desktop's connection went idle
    canary = await dial(where(proxy))
    assert await canary.closed() == b""
    await desktop.send(SIGN_IN)
    assert (await desktop.answer())[0] == 200


async def test_a_kept_alive_requests_header_timeout_starts_at_its_first_byte(
    backend: Backend, start_proxy: ProxyFactory, dial: Dial
) -> None:
    timeout = 0.3
    proxy = await start_proxy(
        limits(backend.url, client_header_timeout=timeout, keepalive_timeout=10)
    )
    desktop = await dial(where(proxy))
    await desktop.send(SIGN_IN)
    assert (await desktop.answer())[0] == 200
    canary = await dial(where(proxy))
    assert await canary.closed() == b""  # the desktop has idled past the header timeout
    first_byte = now()
    await desktop.send(SIGN_IN[:10])
    refused = await desktop.closed()
    assert status_of(refused) == 408, refused[:200]
    assert since(first_byte) >= timeout - 0.05


# --- server.client_body_timeout -----------------------------------------------------------


async def test_a_small_body_that_stalls_gets_408_never_reaches_finesse_and_purges_nothing(
    sim: Sim, start_proxy: ProxyFactory, dial: Dial
) -> None:
    timeout = 0.6
    proxy = await start_proxy(limits(sim.url, client_body_timeout=timeout))
    await sign_in(proxy, "10001")
    warm = await proxy.client.get(CODES, headers=AGENT)
    assert warm.headers["Cache-Status"].endswith("stored")
    writer = await dial(where(proxy))
    started = now()
    await writer.send(
        head(
            f"PUT {TEAM_CODES_WRITE} HTTP/1.1",
            f"Authorization: {ADMIN['Authorization']}",
            "Content-Type: application/xml",
            "Content-Length: 100",
        )
        + b"<ReasonCo"
        + b"d"
    )
    outcome = asyncio.create_task(writer.answer())
    await sign_in(proxy, "10002")
    assert not outcome.done()
    status, refused = await outcome
    assert status == 408, refused[:200]
    assert since(started) >= timeout - 0.05
    assert f"PUT {TEAM_CODES_WRITE}" not in sim.sim.stats()
    after = await proxy.client.get(CODES, headers=AGENT)
    assert after.headers["Cache-Status"].startswith("webproxy; hit")
    assert sample(proxy, "webproxy_cache_purges_total", reason="write") == 0
    assert upstream_errors(proxy) == 0
    assert sample(proxy, "webproxy_requests_total", route="api", status="408") == 1
    assert await writer.closed(within=2) == b""  # and the connection closed after its 408


async def test_a_streamed_body_that_stalls_gets_408_and_its_upstream_connection_is_dropped(
    backend: Backend, start_proxy: ProxyFactory, dial: Dial
) -> None:
    proxy = await start_proxy(limits(backend.url, client_body_timeout=0.6, body_buffer_bytes=1024))
    await signs_in(proxy)
    warm = await proxy.client.get(CODES, headers=AGENT)
    assert warm.headers["Cache-Status"].endswith("stored")
    writer = await dial(where(proxy))
    await writer.send(
        head(
            f"PUT {TEAM_CODES_WRITE} HTTP/1.1",
            f"Authorization: {ADMIN['Authorization']}",
            "Content-Length: 100000",
        )
        + b"x" * 5000
    )
    outcome = asyncio.create_task(writer.answer())
    await eventually(lambda: any(path == TEAM_CODES_WRITE for path, _ in backend.ports))
    await signs_in(proxy)
    assert not outcome.done()
    status, refused = await outcome
    assert status == 408, refused[:200]
    await eventually(lambda: len(backend.received) == 1)
    (incomplete,) = backend.received
    assert not incomplete.complete and incomplete.size <= 5000
    for _ in range(3):
        assert (await proxy.client.get("/finesse/api/Ping")).status == 200
    later = [port for path, port in backend.ports if path == "/finesse/api/Ping"]
    assert len(later) == 3 and incomplete.port not in later  # never reused
    after = await proxy.client.get(CODES, headers=AGENT)
    assert after.headers["Cache-Status"].startswith("webproxy; hit")
    assert sample(proxy, "webproxy_cache_purges_total", reason="write") == 0
    assert upstream_errors(proxy) == 0
    assert await writer.closed(within=2) == b""  # and the connection closed after its 408


# --- server.send_timeout ------------------------------------------------------------------


async def test_an_answer_left_unread_is_aborted_after_send_timeout_and_frees_finesse(
    backend: Backend, start_proxy: ProxyFactory, dial: Dial
) -> None:
    timeout = 0.5
    proxy = await start_proxy(limits(backend.url, send_timeout=timeout))
    reader = await dial(where(proxy), rcvbuf=4096)
    started = now()
    await reader.send(head("GET /finesse/api/Big HTTP/1.1"))
    async with asyncio.timeout(5):
        await backend.big_started.wait()
    await signs_in(proxy)
    assert not backend.big_failed.is_set()
    async with asyncio.timeout(5):
        await backend.big_failed.wait()  # the upstream's write failed: its connection closed
    assert since(started) >= timeout - 0.05
    assert backend.big_sent < BIG
    got = await reader.closed()
    assert len(got) < BIG
    await signs_in(proxy)


# --- server.keepalive_timeout -------------------------------------------------------------


async def test_an_idle_kept_alive_connection_is_closed_after_keepalive_timeout(
    backend: Backend, start_proxy: ProxyFactory, dial: Dial
) -> None:
    timeout = 0.5
    proxy = await start_proxy(
        limits(backend.url, keepalive_timeout=timeout, client_header_timeout=10)
    )
    idle = await dial(where(proxy))
    await idle.send(SIGN_IN)
    assert (await idle.answer())[0] == 200
    went_idle = now()
    outcome = asyncio.create_task(idle.closed())
    await signs_in(proxy)
    assert not outcome.done()
    assert await outcome == b""
    assert timeout - 0.05 <= since(went_idle) < 5


# --- server.max_upstream_per_client -------------------------------------------------------


async def test_one_address_gets_its_share_of_upstream_connections_then_429(
    backend: Backend, start_proxy: ProxyFactory
) -> None:
    proxy = await start_proxy(
        limits(backend.url, {"connect_timeout": 0.5}, max_upstream_per_client=4)
    )
    started = now()
    requests = [
        asyncio.create_task(proxy.client.get("/finesse/api/Held", headers=AGENT)) for _ in range(10)
    ]
    await eventually(lambda: backend.held == 4)
    assert await sign_ins_from(proxy, "127.0.0.2") == [200]
    await eventually(lambda: sum(request.done() for request in requests) == 6)
    assert since(started) >= 0.5 - 0.05  # they waited for a share as long as for the pool
    refused = [request.result() for request in requests if request.done()]
    assert [response.status for response in refused] == [429] * 6
    assert all(response.headers.get("Retry-After") for response in refused)
    assert backend.most_held == 4
    backend.release.set()
    answered = await asyncio.gather(*(request for request in requests if not request.done()))
    assert [response.status for response in answered] == [200] * 4


async def test_three_hundred_slow_body_senders_from_one_address_do_not_stop_sign_ins(
    backend: Backend, start_proxy: ProxyFactory, dial: Dial
) -> None:
    share, senders = 8, 300
    proxy = await start_proxy(
        limits(
            backend.url,
            {"max_connections": 20, "connect_timeout": 1.0},
            max_upstream_per_client=share,
            body_buffer_bytes=1024,
            client_body_timeout=5.0,
        )
    )
    opening = asyncio.Semaphore(50)

    async def slow_sender() -> Raw:
        async with opening:
            raw = await dial(where(proxy), local="127.0.0.2")
        await raw.send(head("PUT /finesse/api/Upload HTTP/1.1", "Content-Length: 1000000") + b"x")
        return raw

    slow = await asyncio.gather(*(slow_sender() for _ in range(senders)))

    async def trickle() -> None:
        while True:
            await asyncio.sleep(0.2)  # a byte now and then, well within the body timeout
            for raw in slow:
                if not raw.writer.is_closing():
                    raw.writer.write(b"x")

    trickling = asyncio.create_task(trickle())
    answers: list[asyncio.Task[tuple[int, bytes]]] = []
    try:
        await eventually(lambda: backend.uploads_open == share)
        assert await sign_ins_from(proxy, "127.0.0.3", times=10) == [200] * 10
        answers += [asyncio.create_task(raw.answer(within=10)) for raw in slow]
        await eventually(lambda: sum(a.done() for a in answers) >= senders - share, within=10)
        statuses = [a.result()[0] for a in answers if a.done() and not a.exception()]
        assert statuses == [429] * (senders - share)
        assert await sign_ins_from(proxy, "127.0.0.3", times=10) == [200] * 10
        assert backend.most_uploads == share
    finally:
        trickling.cancel()
        for answer in answers:
            answer.cancel()


# --- server.max_client_connections --------------------------------------------------------


async def test_connections_past_max_client_connections_get_a_bare_503_and_are_closed(
    backend: Backend, start_proxy: ProxyFactory, dial: Dial
) -> None:
    proxy = await start_proxy(limits(backend.url, max_client_connections=20))
    first = await dial(where(proxy))
    await first.send(SIGN_IN)
    assert (await first.answer())[0] == 200
    others = [await dial(where(proxy)) for _ in range(19)]
    extra = [await dial(where(proxy)) for _ in range(5)]
    for raw in extra:
        refused = await raw.closed()
        assert status_of(refused) == 503, refused[:200]
        assert b"Connection: close" in refused
    assert sample(proxy, "webproxy_requests_total", route="other", status="503") == 5
    await first.send(SIGN_IN)
    assert (await first.answer())[0] == 200
    # a connection that goes frees its place for the next one
    await others[0].close()

    async def served() -> bool:
        raw = await dial(where(proxy))
        await raw.send(SIGN_IN)
        status, _ = await raw.answer()
        await raw.close()
        return status == 200

    deadline = now() + 5
    while not await served():
        assert now() < deadline, "no place freed by a closed connection"
        await asyncio.sleep(0.02)  # polling: each try is a new connection


# --- the descriptor limit -----------------------------------------------------------------

NOFILE: Final = 128


async def test_past_the_descriptor_limit_healthz_and_open_connections_are_still_served(
    sim: Sim, dial: Dial
) -> None:
    env = {
        "WEBPROXY_SERVER_CLIENT_HEADER_TIMEOUT": "2",
        "WEBPROXY_SERVER_SHUTDOWN_GRACE": "1",
        "WEBPROXY_UPSTREAM_MAX_CONNECTIONS": "10",  # room for (128 - 64 - 10) / 2 clients
    }
    async with (
        serving(["--upstream", sim.url], env, descriptors=NOFILE) as served,
        aiohttp.ClientSession() as session,
    ):
        host, port = served.proxy.removeprefix("http://").rsplit(":", 1)
        proxy_at = (host, int(port))
        first = await dial(proxy_at)
        await first.send(SIGN_IN)
        assert (await first.answer())[0] == 200

        # a shift start's burst: the connections wait in the backlog while the proxy is
        # stopped, then it accepts them all at once, past its descriptor limit
        served.signal(signal.SIGSTOP)
        try:
            dialing = [asyncio.create_task(dial(proxy_at)) for _ in range(NOFILE + 22)]
            await asyncio.wait(dialing, timeout=2)  # a short listen queue: the rest on SIGCONT
        finally:
            served.signal(signal.SIGCONT)
        burst = await asyncio.gather(*dialing)
        outcomes_of = [asyncio.create_task(raw.closed(within=15)) for raw in burst]
        await eventually(lambda: sum(b.done() for b in outcomes_of) >= NOFILE // 2, within=10)
        async with session.get(f"{served.admin}/healthz") as health:
            assert health.status == 200
        await first.send(SIGN_IN)
        assert (await first.answer())[0] == 200
        outcomes = await asyncio.gather(*outcomes_of)
        refused = [outcome for outcome in outcomes if outcome]
        assert all(status_of(outcome) == 503 for outcome in refused)
        assert len(refused) >= NOFILE // 2
        async with session.get(f"{served.admin}/healthz") as health:
            assert health.status == 200
        await first.send(SIGN_IN)
        assert (await first.answer())[0] == 200
        served.signal(signal.SIGTERM)
        assert await served.exit_code() == 0
    logged = "".join(served.stderr)
    assert "Traceback" not in logged, logged[-2000:]
    assert len(served.stderr) <= 6, logged[-2000:]


# --- malformed requests and clients that leave ----------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(head("GET /\x01 HTTP/1.1"), id="control-character-in-target"),
        pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\xee\xff\r\n\r\n", id="garbage"),
    ],
)
async def test_a_malformed_request_is_logged_as_one_line_without_a_traceback(
    backend: Backend,
    start_proxy: ProxyFactory,
    dial: Dial,
    caplog: pytest.LogCaptureFixture,
    raw: bytes,
) -> None:
    caplog.set_level(logging.INFO)
    proxy = await start_proxy(limits(backend.url))
    bad = await dial(where(proxy))
    await bad.send(raw)
    answer = await bad.closed()
    assert status_of(answer) == 400, answer[:200]
    await signs_in(proxy)
    records = [r for r in caplog.records if r.name == "webproxy.server"]
    assert len(records) == 1, [r.getMessage() for r in records]
    (record,) = records
    assert record.levelno == logging.INFO
    assert record.exc_info is None
    message = record.getMessage()
    assert "\n" not in message and "\r" not in message and "\x01" not in message
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_a_client_that_leaves_while_finesse_is_slow_is_counted_as_499_not_500(
    backend: Backend, start_proxy: ProxyFactory, dial: Dial
) -> None:
    proxy = await start_proxy(limits(backend.url))
    leaving = await dial(where(proxy))
    await leaving.send(head("GET /finesse/api/Held HTTP/1.1"))
    await eventually(lambda: backend.held == 1)
    await leaving.close()
    await signs_in(proxy)
    backend.release.set()
    await eventually(
        lambda: sample(proxy, "webproxy_requests_total", route="api", status="499") == 1
    )
    assert sample(proxy, "webproxy_requests_total", route="api", status="500") == 0
    assert upstream_errors(proxy) == 0


# --- Expect: 100-continue -----------------------------------------------------------------

EXPECT_MAX_BODY: Final = 8192


@pytest.fixture
async def expecting(backend: Backend, start_proxy: ProxyFactory) -> Proxy:
    return await start_proxy(
        limits(backend.url, max_body_bytes=EXPECT_MAX_BODY, body_buffer_bytes=1024)
    )


@pytest.mark.parametrize(
    ("request_head", "refusal"),
    [
        pytest.param(
            head(
                "PUT /echo HTTP/1.1",
                f"Content-Length: {EXPECT_MAX_BODY + 1}",
                "Expect: 100-continue",
            ),
            413,
            id="body-over-max_body_bytes",
        ),
        pytest.param(
            head(
                "PUT http://evil.example/echo HTTP/1.1",
                "Content-Length: 10",
                "Expect: 100-continue",
            ),
            400,
            id="absolute-form-target",
        ),
    ],
)
async def test_a_refused_request_gets_its_refusal_without_a_100_continue_first(
    expecting: Proxy, dial: Dial, request_head: bytes, refusal: int
) -> None:
    client = await dial(where(expecting))
    await client.send(request_head)
    status, answer = await client.answer()
    assert status == refusal, answer[:200]
    assert b"100 Continue" not in answer
    await signs_in(expecting)


@pytest.mark.parametrize(
    "size", [pytest.param(100, id="buffered"), pytest.param(5000, id="streamed")]
)
async def test_an_accepted_put_gets_100_continue_and_then_its_answer(
    expecting: Proxy, dial: Dial, size: int
) -> None:
    client = await dial(where(expecting))
    await client.send(head("PUT /echo HTTP/1.1", f"Content-Length: {size}", "Expect: 100-continue"))
    async with asyncio.timeout(5):
        interim = await client.reader.readuntil(b"\r\n\r\n")
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    body = bytes(range(256)) * (size // 256) + b"e" * (size % 256)
    await client.send(body)
    status, answer = await client.answer()
    assert status == 200, answer[:200]
    assert answer.endswith(body)


async def test_a_request_over_its_share_gets_429_without_a_100_continue_first(
    backend: Backend, start_proxy: ProxyFactory, dial: Dial
) -> None:
    proxy = await start_proxy(
        limits(backend.url, {"connect_timeout": 0.3}, max_upstream_per_client=1)
    )
    holding = asyncio.create_task(proxy.client.get("/finesse/api/Held"))
    await eventually(lambda: backend.held == 1)
    client = await dial(where(proxy))  # the same address: its one share is taken
    await client.send(
        head("PUT /finesse/api/Upload HTTP/1.1", "Content-Length: 10", "Expect: 100-continue")
    )
    status, answer = await client.answer()
    assert status == 429, answer[:200]
    assert b"100 Continue" not in answer
    assert backend.received == []
    backend.release.set()
    assert (await holding).status == 200


# --- server.max_connections_per_client, max_long_lived_per_client -------------------------


async def test_connections_past_a_clients_share_get_503_while_another_address_is_served(
    backend: Backend, start_proxy: ProxyFactory, dial: Dial
) -> None:
    proxy = await start_proxy(limits(backend.url, max_connections_per_client=5))
    held = [await dial(where(proxy), local="127.0.0.2") for _ in range(5)]
    refused = await (await dial(where(proxy), local="127.0.0.2")).closed()
    assert status_of(refused) == 503 and b"too many connections from you" in refused
    assert await sign_ins_from(proxy, "127.0.0.3", times=3) == [200, 200, 200]
    await held[0].close()  # a connection that goes frees its place

    async def admitted() -> bool:
        raw = await dial(where(proxy), local="127.0.0.2")
        await raw.send(SIGN_IN)
        status, _ = await raw.answer()
        await raw.close()
        return status == 200

    deadline = now() + 5
    while not await admitted():
        assert now() < deadline, "no place freed by a closed connection"
        await asyncio.sleep(0.02)  # polling: each try is a new connection


async def test_long_polls_from_one_address_are_capped_and_others_still_get_theirs(
    backend: Backend, start_proxy: ProxyFactory
) -> None:
    settings = limits(backend.url, {"connect_timeout": 0.3}, max_long_lived_per_client=3)
    proxy = await start_proxy(settings)
    url = proxy.client.make_url("/http-bind/")

    async def long_poll(local: str) -> int:
        connector = aiohttp.TCPConnector(local_addr=(local, 0))
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.post(url, data=b"<body/>") as response:
                await response.read()
                return response.status

    polls = [asyncio.create_task(long_poll("127.0.0.2")) for _ in range(3)]
    await eventually(lambda: backend.held == 3)
    assert await long_poll("127.0.0.2") == 429  # its share is held: waited, then refused
    other = asyncio.create_task(long_poll("127.0.0.3"))
    await eventually(lambda: backend.held == 4)  # another address's poll reached Finesse
    backend.release.set()
    assert await asyncio.gather(*polls, other) == [200, 200, 200, 200]


async def test_a_rest_call_spelled_under_http_bind_takes_a_rest_share(
    backend: Backend, start_proxy: ProxyFactory
) -> None:
    settings = limits(backend.url, {"connect_timeout": 0.3}, max_upstream_per_client=2)
    proxy = await start_proxy(settings)
    held = [asyncio.create_task(proxy.client.get("/finesse/api/Held")) for _ in range(2)]
    await eventually(lambda: backend.held == 2)
    sneaky = await proxy.client.get("/http-bind/../finesse/api/Held")
    assert sneaky.status == 429  # read as Finesse reads it: REST, and over its share
    backend.release.set()
    assert [(await answer).status for answer in held] == [200, 200]
