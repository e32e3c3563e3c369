"""Upstream mechanics: one client session, request and response streaming, buffered fetches.

Knows transport and nothing about caching. Third-party errors stop here: aiohttp's
client errors and timeouts become `UpstreamUnavailable` / `UpstreamTimeout`.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from webproxy.config import UpstreamSettings
from webproxy.errors import BodyTooLarge, UpstreamTimeout, UpstreamUnavailable
from webproxy.headers import add_forwarded, add_via, end_to_end

log = logging.getLogger("webproxy.upstream")

#: Paths whose exchanges may idle for long: BOSH long polls and XMPP over WebSocket.
LONG_LIVED_PREFIXES: Final = ("/http-bind", "/ws")

#: Request fields this hop consumes: the server side has already answered `Expect`,
#: and the upstream's `Host` is the upstream's own (X-Forwarded-Host keeps the client's).
CONSUMED_REQUEST_FIELDS: Final = ("host", "expect")

#: aiohttp's client would add these on its own; a proxy forwards only what the client sent.
SKIP_AUTO_HEADERS: Final = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")

CHUNK: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where and how to reach Finesse: the shared session and this hop's timeouts."""

    session: aiohttp.ClientSession
    base: URL
    connect_timeout: float
    read_timeout: float
    idle_timeout: float

    def url(self, raw_path_qs: str) -> URL:
        """The upstream URL for a request target, kept byte for byte (already encoded)."""
        return URL(str(self.base) + raw_path_qs, encoded=True)

    def timeout_for(self, path: str) -> aiohttp.ClientTimeout:
        read = self.idle_timeout if path.startswith(LONG_LIVED_PREFIXES) else self.read_timeout
        return aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout, sock_read=read)


def make_session(settings: UpstreamSettings) -> aiohttp.ClientSession:
    """One session for the process: bounded pool, no cookie jar, no decompression."""
    context: ssl.SSLContext | bool = True
    if not settings.tls_verify:
        context = False
    elif settings.ca_file:
        context = ssl.create_default_context(cafile=settings.ca_file)
    connector = aiohttp.TCPConnector(limit=settings.max_connections, ssl=context)
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),  # cookies belong to clients, never to the proxy
        auto_decompress=False,
        timeout=aiohttp.ClientTimeout(total=None),
    )


def make_upstream(session: aiohttp.ClientSession, settings: UpstreamSettings) -> Upstream:
    return Upstream(
        session=session,
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

    With `keep`, only those fields (lower-case names) are passed on: a request whose
    answer may be stored for others carries nothing that is not in its key.
    """
    headers = end_to_end(request.headers, drop=CONSUMED_REQUEST_FIELDS)
    if keep is not None:
        headers = CIMultiDict((k, v) for k, v in headers.items() if k.lower() in keep)
    add_forwarded(headers, client_ip=request.remote, scheme=request.scheme, host=request.host)
    add_via(headers)
    return headers


def response_headers(response: aiohttp.ClientResponse) -> CIMultiDict[str]:
    headers = end_to_end(response.headers)
    add_via(headers)
    return headers


class LimitedBody:
    """The client's body, streamed upstream chunk by chunk, cut off past `limit` bytes."""

    def __init__(self, request: web.BaseRequest, limit: int) -> None:
        self.request = request
        self.limit = limit
        self.exceeded = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        sent = 0
        async for chunk in self.request.content.iter_chunked(CHUNK):
            sent += len(chunk)
            if sent > self.limit:
                self.exceeded = True
                raise BodyTooLarge(f"request body larger than {self.limit} bytes")
            yield chunk


async def open_exchange(
    upstream: Upstream, request: web.BaseRequest, headers: CIMultiDict[str], body_limit: int
) -> aiohttp.ClientResponse:
    """Send the request upstream, body streamed, and return once the response head is in."""
    body = LimitedBody(request, body_limit) if request.body_exists else None
    try:
        with upstream_errors():
            return await upstream.session.request(
                request.method,
                upstream.url(request.raw_path),
                headers=headers,
                data=body,
                allow_redirects=False,
                skip_auto_headers=SKIP_AUTO_HEADERS,
                timeout=upstream.timeout_for(request.path),
            )
    except UpstreamUnavailable as exc:
        if body is not None and body.exceeded:
            raise BodyTooLarge(str(exc)) from exc
        raise


async def relay(request: web.BaseRequest, response: aiohttp.ClientResponse) -> web.StreamResponse:
    """Stream the upstream's response to the client as it arrives."""
    answer = web.StreamResponse(
        status=response.status, reason=response.reason, headers=response_headers(response)
    )
    await answer.prepare(request)
    try:
        with upstream_errors():
            async for chunk in response.content.iter_any():
                await answer.write(chunk)
    except (UpstreamTimeout, UpstreamUnavailable) as exc:
        # The status line is gone; all a proxy can do is cut the client off, as nginx does.
        log.warning("upstream failed mid-body on %s %s: %s", request.method, request.path, exc)
        if request.transport is not None:
            request.transport.close()
        return answer
    finally:
        response.release()
    await answer.write_eof()
    return answer


@dataclass(frozen=True, slots=True)
class Fetched:
    """A whole upstream answer, read into memory because it may be cached."""

    status: int
    reason: str
    headers: CIMultiDict[str]
    body: bytes


async def fetch(upstream: Upstream, target: str, headers: CIMultiDict[str]) -> Fetched:
    """GET `target` (raw path and query) and read the whole answer: it may be stored.

    Takes plain values, not the request, because it may run in a flight task that
    outlives the client that started it.
    """
    path = target.partition("?")[0]
    with upstream_errors():
        async with upstream.session.get(
            upstream.url(target),
            headers=headers,
            allow_redirects=False,
            skip_auto_headers=SKIP_AUTO_HEADERS,
            timeout=upstream.timeout_for(path),
        ) as response:
            body = await response.read()
            return Fetched(response.status, response.reason or "", response_headers(response), body)
