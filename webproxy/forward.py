"""Upstream mechanics: one client session, request and response streaming, buffered fetches.

Knows transport and nothing about caching. Third-party errors stop here: aiohttp's
client errors and timeouts become `UpstreamUnavailable` / `UpstreamTimeout`.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from webproxy.cache.routing import read_path
from webproxy.config import ServerSettings, UpstreamSettings
from webproxy.errors import (
    BodyTimeout,
    BodyTooLarge,
    ClientGone,
    PurgeNotRecorded,
    RequestIncomplete,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from webproxy.headers import add_forwarded, add_via, end_to_end
from webproxy.logs import loggable_target

log = logging.getLogger("webproxy.upstream")

#: Paths whose exchanges may idle for long: BOSH long polls and XMPP over WebSocket.
LONG_LIVED_PREFIXES: Final = ("/http-bind", "/ws")


def long_lived(raw_path: str) -> bool:
    """A long poll or WebSocket path, as Finesse reads it: `/http-bind/../finesse/api/x`
    is a REST call, and gets REST's pool, share and timeouts."""
    path = read_path(raw_path.partition("?")[0])
    if path is None:
        return False
    return any(path == prefix or path.startswith(prefix + "/") for prefix in LONG_LIVED_PREFIXES)


#: Request fields this hop consumes: the server side has already answered `Expect`,
#: and the upstream's `Host` is the upstream's own (X-Forwarded-Host keeps the client's).
#: Method and URL overrides are dropped: the method and path the proxy judged (for
#: caching, purging, access) are the ones Finesse must run.
CONSUMED_REQUEST_FIELDS: Final = (
    "host",
    "expect",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-original-url",
    "x-rewrite-url",
)

#: aiohttp's client would add these on its own; a proxy forwards only what the client sent.
SKIP_AUTO_HEADERS: Final = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")

CHUNK: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where and how to reach Finesse: the shared sessions and this hop's timeouts.

    Two pools: REST exchanges share one of `upstream.max_connections`; WebSockets and
    long polls, which hold a connection for minutes, get one of their own without a limit,
    so a few hundred open desktops can never starve REST of connections. Waiting for a
    free connection counts against `connect_timeout`, so a full pool gives a 504, not a hang.
    """

    session: aiohttp.ClientSession
    long_session: aiohttp.ClientSession
    base: URL
    connect_timeout: float
    read_timeout: float
    idle_timeout: float

    def url(self, raw_path_qs: str) -> URL:
        """The upstream URL for a request target, kept byte for byte (already encoded)."""
        return URL(str(self.base) + raw_path_qs, encoded=True)

    def route(self, raw_target: str) -> tuple[aiohttp.ClientSession, aiohttp.ClientTimeout]:
        """The pool and timeouts for a target: a long poll's or WebSocket's, or REST's."""
        long = long_lived(raw_target)
        return (self.long_session if long else self.session), self.timeout(long=long)

    def timeout(self, *, long: bool = False) -> aiohttp.ClientTimeout:
        read = self.idle_timeout if long else self.read_timeout
        return aiohttp.ClientTimeout(
            total=None,
            connect=self.connect_timeout,  # a free pool slot and the connection itself
            sock_connect=self.connect_timeout,
            sock_read=read,
        )

    async def close(self) -> None:
        await self.session.close()
        await self.long_session.close()


def _session(settings: UpstreamSettings, limit: int) -> aiohttp.ClientSession:
    """No cookie jar, no decompression; TLS verified unless configured otherwise."""
    context: ssl.SSLContext | bool = True
    if not settings.tls_verify:
        context = False
    elif settings.ca_file:
        context = ssl.create_default_context(cafile=settings.ca_file)
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, ssl=context),
        cookie_jar=aiohttp.DummyCookieJar(),  # cookies belong to clients, never to the proxy
        auto_decompress=False,
        timeout=aiohttp.ClientTimeout(total=None),
    )


def make_upstream(settings: UpstreamSettings) -> Upstream:
    return Upstream(
        session=_session(settings, settings.max_connections),
        long_session=_session(settings, 0),  # 0: one connection per open desktop, unbounded
        base=URL(settings.url.rstrip("/")),
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        idle_timeout=settings.idle_timeout,
    )


@contextmanager
def upstream_errors() -> Iterator[None]:
    """Translate aiohttp's errors into ours, once, at the edge."""
    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:  # a pool connection, or the connect itself
        raise UpstreamTimeout("upstream timed out connecting", sent=False) from exc
    except aiohttp.ClientConnectorError as exc:
        raise UpstreamUnavailable(f"upstream refused: {type(exc).__name__}", sent=False) from exc
    except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
        raise UpstreamTimeout("upstream timed out") from exc
    except aiohttp.ClientError as exc:
        raise UpstreamUnavailable(f"upstream unavailable: {type(exc).__name__}") from exc
    except OSError as exc:
        raise UpstreamUnavailable(f"upstream unavailable: {exc.strerror or exc}") from exc


def upstream_headers(
    request: web.BaseRequest, *, keep: frozenset[str] | None = None
) -> CIMultiDict[str]:
    """The headers to send upstream: end-to-end fields, this hop's X-Forwarded-* and Via.

    With `keep` (lower-case names), a request whose answer may be stored for others, or
    that teaches the proxy who a credential is, carries only those fields, taken as the
    client sent them: `Connection` cannot remove one of them, so what Finesse sees is what
    the key and the credential checks saw. It carries no client-chosen `X-Forwarded-*`
    either (no earlier `X-Forwarded-For`, no `X-Forwarded-Host`).
    """
    if keep is None:
        headers = end_to_end(request.headers, drop=CONSUMED_REQUEST_FIELDS)
        add_forwarded(headers, client_ip=request.remote, scheme=request.scheme, host=request.host)
    else:
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() in keep)
        add_forwarded(headers, client_ip=request.remote, scheme=request.scheme, host=None)
    add_via(headers)
    return headers


def response_headers(response: aiohttp.ClientResponse) -> CIMultiDict[str]:
    headers = end_to_end(response.headers)
    add_via(headers)
    return headers


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """How much of a request body, how slowly, and how much of it read before Finesse."""

    max_bytes: int
    buffer_bytes: int  # a body with a Content-Length up to this is read whole first
    timeout: float  # longest pause between two reads of it

    @classmethod
    def of(cls, server: ServerSettings) -> BodyLimits:
        return cls(server.max_body_bytes, server.body_buffer_bytes, server.client_body_timeout)


class RequestBody:
    """The client's body on its way upstream, and whether it arrived whole.

    Read as the client sent it (the listener never decompresses), cut off past
    `max_bytes`, and given up if the client pauses longer than `timeout` or goes away:
    `failure` then says why, `complete` stays False, and the upstream connection it was
    being sent on is dropped by aiohttp, never reused. `Expect: 100-continue` is answered
    at the first read, so only a request that passed every check before it gets one.
    """

    def __init__(
        self,
        request: web.BaseRequest,
        limits: BodyLimits,
        arrived: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self.request = request
        self.limits = limits
        self.complete = False
        self.failure: RequestIncomplete | None = None
        self._arrived = arrived
        expect = request.headers.get("Expect", "")
        self._continue = request.version >= (1, 1) and expect.lower() == "100-continue"

    @property
    def buffered(self) -> bool:
        length = self.request.content_length
        return length is not None and length <= self.limits.buffer_bytes

    async def whole(self) -> bytes:
        """The whole body, read before anything is sent upstream."""
        return b"".join([chunk async for chunk in self.chunks()])

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives; its last bytes go upstream only after `arrive` has run,
        so nothing upstream can act on a request the proxy refuses. With a Content-Length
        the last read is known; a chunked body is passed on one read behind."""
        length = self.request.content_length
        received = 0
        held = b""
        while chunk := await self._read():
            received += len(chunk)
            if received > self.limits.max_bytes:
                too_large = f"request body larger than {self.limits.max_bytes} bytes"
                raise self._failed(BodyTooLarge(too_large))
            if length is not None:
                if received >= length:
                    await self.arrive()
                yield chunk
                continue
            if held:
                yield held
            held = chunk
        if not self.complete:
            await self.arrive()
        if held:
            yield held

    async def arrive(self) -> None:
        """The request is all here: run the `arrived` check (can a write's purge be
        recorded?) before what completes it goes upstream; `PurgeNotRecorded` if not."""
        if self._arrived is not None and not await self._arrived():
            raise self._failed(PurgeNotRecorded("cache store unavailable: write not sent"))
        self.complete = True

    async def _read(self) -> bytes:
        if self._continue:
            self._continue = False
            await self.request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.request.writer.output_size = 0  # the answer itself has not started
        try:
            async with asyncio.timeout(self.limits.timeout):
                return await self.request.content.readany()
        except TimeoutError:
            raise self._failed(BodyTimeout("request body timed out")) from None
        except (OSError, aiohttp.ClientError) as exc:
            raise self._failed(ClientGone(f"client went away: {type(exc).__name__}")) from exc

    def _failed(self, failure: RequestIncomplete) -> RequestIncomplete:
        self.failure = failure
        return failure


async def open_exchange(
    upstream: Upstream, request: web.BaseRequest, headers: CIMultiDict[str], body: RequestBody
) -> aiohttp.ClientResponse:
    """Send the request upstream and return once the response head is in.

    A small body is read whole first (a slow sender holds no upstream connection, and a
    body that never completes never reaches Finesse); a larger one is streamed. Raises
    `RequestIncomplete` when the client's side failed, `UpstreamError` when Finesse's did.
    """
    data: bytes | AsyncIterator[bytes] | None = None
    if request.body_exists:
        data = await body.whole() if body.buffered else body.chunks()
    else:
        await body.arrive()
    session, timeout = upstream.route(request.raw_path)
    try:
        with upstream_errors():
            return await session.request(
                request.method,
                upstream.url(request.raw_path),
                headers=headers,
                data=data,
                allow_redirects=False,
                skip_auto_headers=SKIP_AUTO_HEADERS,
                timeout=timeout,
            )
    except UpstreamError as exc:
        if body.failure is not None:
            raise body.failure from exc
        raise


async def relay(
    request: web.BaseRequest,
    response: aiohttp.ClientResponse,
    *,
    prefix: bytes = b"",
    cache_status: str | None = None,
) -> web.StreamResponse:
    """Stream the upstream's response to the client as it arrives (after `prefix`, the part
    already read). A client that goes away raises `ClientGone`; the upstream connection
    is then dropped, as it is when Finesse fails mid-body."""
    headers = response_headers(response)
    if cache_status is not None:
        headers["Cache-Status"] = cache_status
    answer = web.StreamResponse(status=response.status, reason=response.reason, headers=headers)
    try:
        await answer.prepare(request)
        chunk = prefix
        while True:
            if chunk:
                await answer.write(chunk)
            with upstream_errors():
                chunk = await response.content.readany()
            if not chunk:
                break
        await answer.write_eof()
    except UpstreamError as exc:
        # The status line is gone; all a proxy can do is cut the client off, as nginx does.
        target = loggable_target(request.raw_path)
        log.warning("upstream failed mid-body on %s %s: %s", request.method, target, exc)
        response.close()
        if request.transport is not None:
            request.transport.close()
    except ConnectionError as exc:
        response.close()
        raise ClientGone("client went away during the answer") from exc
    finally:
        response.release()
    return answer


@dataclass(frozen=True, slots=True)
class Fetched:
    """A whole upstream answer, read into memory because it may be cached."""

    status: int
    reason: str
    headers: CIMultiDict[str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Oversized:
    """An upstream answer longer than the fetch's limit: its head, the part read, and the
    response still open for the rest. Whoever holds it relays it or closes it."""

    response: aiohttp.ClientResponse
    prefix: bytes

    def close(self) -> None:
        self.response.close()


async def fetch(
    upstream: Upstream, target: str, headers: CIMultiDict[str], *, limit: int
) -> Fetched | Oversized:
    """GET `target` (raw path and query) and read the answer whole, up to `limit` bytes.

    Takes plain values, not the request, because it may run in a flight task that
    outlives the client that started it. An answer over `limit` (by its Content-Length, or
    as it arrives) comes back `Oversized`, open: memory stays bounded by `limit`.
    """
    session, timeout = upstream.route(target)
    with upstream_errors():
        response = await session.get(
            upstream.url(target),
            headers=headers,
            allow_redirects=False,
            skip_auto_headers=SKIP_AUTO_HEADERS,
            timeout=timeout,
        )
        try:
            body = await _read_up_to(response, limit)
        except BaseException:
            response.close()
            raise
    if isinstance(body, Oversized):
        return body
    response.release()
    return Fetched(response.status, response.reason or "", response_headers(response), body)


async def _read_up_to(response: aiohttp.ClientResponse, limit: int) -> bytes | Oversized:
    length = response.content_length
    if length is not None and length > limit:
        return Oversized(response, b"")
    parts: list[bytes] = []
    size = 0
    while chunk := await response.content.readany():
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            return Oversized(response, b"".join(parts))
    return b"".join(parts)
