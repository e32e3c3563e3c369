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

    def session_for(self, path: str) -> aiohttp.ClientSession:
        return self.long_session if path.startswith(LONG_LIVED_PREFIXES) else self.session

    def timeout_for(self, path: str) -> aiohttp.ClientTimeout:
        read = self.idle_timeout if path.startswith(LONG_LIVED_PREFIXES) else self.read_timeout
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
            return await upstream.session_for(request.path).request(
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
        async with upstream.session_for(path).get(
            upstream.url(target),
            headers=headers,
            allow_redirects=False,
            skip_auto_headers=SKIP_AUTO_HEADERS,
            timeout=upstream.timeout_for(path),
        ) as response:
            body = await response.read()
            return Fetched(response.status, response.reason or "", response_headers(response), body)
