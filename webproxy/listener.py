"""The proxy listener's connections: aiohttp's HTTP/1.1 protocol with a client's limits.

aiohttp bounds each request line and header line; a reverse proxy facing the internet
needs more, as nginx has. Per connection, below the application:

- the whole request head is bounded (`server.max_head_bytes`, else 431 and closed);
- a head must arrive within `server.client_header_timeout` (from accept for a new
  connection, from its first byte on a kept-alive one): else 408 and closed, or closed
  silently if not a byte came, as nginx does;
- an answer the client leaves unread for `server.send_timeout` (the send buffer stays
  above its high-water mark) aborts the connection, which frees what the answer held;
- idle kept-alive connections close after `server.keepalive_timeout`;
- past `server.max_client_connections` open connections, a new one gets a bare 503 and
  is closed at once, so the process never runs out of descriptors;
- request bodies are never decompressed: Finesse gets the client's bytes;
- a malformed request is one line at INFO (no traceback), and a shutdown waits at most
  its grace for requests in flight, then cancels them.

This reaches into aiohttp's `RequestHandler` and `AppRunner` (pinned in pyproject.toml).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from webproxy.config import ServerSettings
from webproxy.fastlane import FastLane, Reading
from webproxy.forward import long_lived
from webproxy.shares import client_of

log = logging.getLogger("webproxy.server")

#: After the grace, cancelled handlers get this long to unwind before connections close.
CANCEL_WAIT: Final = 1.0
TOO_LARGE: Final = "Request Header Fields Too Large"
#: Where a request head ends (a bare LF too, which lenient parsers take).
HEAD_ENDS: Final = (b"\r\n\r\n", b"\n\n")


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """What one client connection may take, from `[server]`."""

    max_head_bytes: int
    header_timeout: float
    send_timeout: float
    max_connections: int
    max_per_client: int  # 0: no limit

    @classmethod
    def of(cls, server: ServerSettings, max_connections: int | None = None) -> ClientLimits:
        return cls(
            max_head_bytes=server.max_head_bytes,
            header_timeout=server.client_header_timeout,
            send_timeout=server.send_timeout,
            max_connections=max_connections or server.max_client_connections,
            max_per_client=server.max_connections_per_client,
        )


#: Told of every answer the protocol makes itself (408, 431, 503), for metrics.
Refused = Callable[[int], None]


def _raw_answer(status: int, reason: str, text: str) -> bytes:
    body = f"webproxy: {text}\n".encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


class ClientProtocol(RequestHandler):
    """One client connection: aiohttp's request handling, within `ClientLimits`."""

    def __init__(
        self, manager: ClientServer, *, loop: asyncio.AbstractEventLoop, **kwargs: Any
    ) -> None:
        super().__init__(manager, loop=loop, **kwargs)
        self._limits = manager.limits
        self._refused = manager.refused
        self._server = manager
        self._head_bytes = 0
        self._head_tail = b""  # the last bytes of the head so far, for a blank line split
        self._head_timer: asyncio.TimerHandle | None = None
        self._send_timer: asyncio.TimerHandle | None = None
        self._body: StreamReader | None = None  # the last head's body, while it may be due
        self._lane = manager.fast_lane
        self._clean = True  # aiohttp's parser holds no part of a message
        self._reading: asyncio.Task[None] | None = None  # the lane waits for the store
        self._held: list[bytes] = []  # what came meanwhile, for after its answer
        self._held_bytes = 0  # past max_head_bytes, the connection is closed
        self._close_after_read = False  # `close` came while the lane read

    # --- accept ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        manager = self._manager
        if manager is not None and len(manager.connections) > self._limits.max_connections:
            self._answer_and_close(503, "Service Unavailable", "too many connections")
            return
        if not self._server.admit(self):
            self._answer_and_close(503, "Service Unavailable", "too many connections from you")
            return
        self._arm_head_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._server.release(self)
        if self._reading is not None:
            self._reading.cancel()
        self._cancel_head_timer()
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None
        super().connection_lost(exc)

    # --- the request head -------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._reading is not None:
            self._hold(data)
            return
        if self._lane is not None and self._idle():
            answer = self._lane.answer(data)
            if isinstance(answer, bytes):
                self._answered(answer)
                return
            if answer is not None:
                self._read_then_answer(answer, data)
                return
        self._take(data)

    def _take(self, data: bytes) -> None:
        """A read for aiohttp."""
        self._feed(data)
        self._clean = data.endswith(b"\r\n\r\n") and self._body is None

    def _read_then_answer(self, reading: Reading, data: bytes) -> None:
        """The lane answers `data` once the store has read the entry (Redis alone): until
        then the connection is busy (no head or keep-alive deadline runs, later reads
        wait); then the answer is written, or `data` goes to aiohttp, and what came
        meanwhile after it, in order."""
        self._cancel_head_timer()
        self._head_bytes = 0
        self._head_tail = b""
        if self._keepalive_handle is not None:
            self._keepalive_handle.cancel()
            self._keepalive_handle = None
        self._reading = self._loop.create_task(self._answer_when_read(reading, data))

    def _hold(self, data: bytes) -> None:
        """A read that came while the lane waits for the store: kept for after the answer;
        past `max_head_bytes` held, the connection is closed, as the ordinary path closes
        one whose next head outgrows the limit behind a request in progress."""
        self._held.append(data)
        self._held_bytes += len(data)
        if self._held_bytes > self._limits.max_head_bytes:
            log.info("request head over %d bytes: closed", self._limits.max_head_bytes)
            self.force_close()  # (connection_lost cancels the read)

    async def _answer_when_read(self, reading: Reading, data: bytes) -> None:
        try:
            answer = await reading
        except Exception:  # a fault of the lane's own: aiohttp answers, as for any other
            log.exception("fast lane: a read failed; the request goes to aiohttp")
            answer = None
        finally:
            self._reading = None
            held, self._held, self._held_bytes = self._held, [], 0
        if self.transport is None:
            return  # the connection is gone: nothing to answer
        if answer is not None:
            self._answered(answer)
        else:
            self._take(data)
        if self._close_after_read:  # as aiohttp closes after a request in progress
            self._close_after_read = False
            super().close()
        for later in held:
            self.data_received(later)

    def close(self) -> None:
        """aiohttp's `close` (no new requests; close when the one in progress is done),
        which waits, too, for a request the lane is reading the store for."""
        if self._reading is not None:
            self._close_after_read = True
            return
        super().close()

    def _idle(self) -> bool:
        """Between requests, with nothing of one buffered anywhere: the fast lane may
        answer this read whole (`webproxy.fastlane`)."""
        waiter = self._waiter
        return (
            self._clean
            and waiter is not None
            and not waiter.done()
            and not self._messages
            and not self._request_in_progress
            and not self._upgraded
            and self._payload_parser is None
            and not self._force_close
            and not self._close
            and not self.writing_paused
            and self.transport is not None
        )

    def _answered(self, answer: bytes) -> None:
        """A fast-lane answer: written whole, and the connection's clocks as aiohttp sets
        them after any answer (the head timer stopped, keep-alive from now)."""
        self._cancel_head_timer()
        self._head_bytes = 0
        self._head_tail = b""
        assert self.transport is not None
        self.transport.write(answer)
        if self._keepalive_timeout > 0:
            close_time = self._loop.time() + self._keepalive_timeout
            self._next_keepalive_close_time = close_time
            if self._keepalive_handle is None:
                self._keepalive_handle = self._loop.call_at(close_time, self._process_keepalive)

    def _feed(self, data: bytes) -> None:
        """The read for aiohttp, within the head's limits."""
        in_head = (
            not self._upgraded
            and self._payload_parser is None
            and (self._body is None or self._body.is_eof())
        )
        if in_head and data:
            self._body = None
            if self._head_timer is None:
                self._arm_head_timer()
            self._head_bytes += self._head_part(data)
            if self._head_bytes > self._limits.max_head_bytes:
                log.info("request head over %d bytes: closed", self._limits.max_head_bytes)
                self._answer_and_close(431, TOO_LARGE, "request head too large")
                return
        parsed = self._request_count
        super().data_received(data)
        if self._request_count != parsed and self._messages:
            # a head is complete: what follows is its body, or the next head
            self._cancel_head_timer()
            self._head_bytes = 0
            self._head_tail = b""
            body = self._messages[-1][1]
            self._body = None if body.is_eof() else body

    def _head_part(self, data: bytes) -> int:
        """How much of `data` belongs to the head being read: up to its blank line."""
        ends = [at + len(mark) for mark in HEAD_ENDS if (at := data.find(mark)) >= 0]
        tail = self._head_tail
        if tail:  # a blank line split across two reads
            joined = tail + data[:3]
            ends += [at + len(m) - len(tail) for m in HEAD_ENDS if (at := joined.find(m)) >= 0]
        self._head_tail = data[-3:]
        return min(ends) if ends else len(data)

    def _arm_head_timer(self) -> None:
        self._head_timer = self._loop.call_later(self._limits.header_timeout, self._head_late)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        self._head_timer = None
        if self._request_in_progress or self._messages:
            self.close()  # a pipelined head behind a request in progress: close after it
        elif self._head_bytes:
            log.info("request head not complete within %gs: closed", self._limits.header_timeout)
            self._answer_and_close(408, "Request Timeout", "request head timed out")
        else:
            self.force_close()  # not a byte: nothing to answer

    def _answer_and_close(self, status: int, reason: str, text: str) -> None:
        self._cancel_head_timer()
        if self.transport is not None and not self._request_in_progress:
            self.transport.write(_raw_answer(status, reason, text))
            self._refused(status)
        self.force_close()  # transport.close() still sends what is buffered

    # --- the answer -----------------------------------------------------------------

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._send_timer is None:
            self._send_timer = self._loop.call_later(self._limits.send_timeout, self._send_late)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None

    def _send_late(self) -> None:
        self._send_timer = None
        log.info("client read nothing for %gs: connection aborted", self._limits.send_timeout)
        if self.transport is not None:
            self.transport.abort()

    # --- errors and shutdown ------------------------------------------------------------

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A malformed request: one line at INFO and a short 4xx; never a traceback."""
        if status >= 500:
            return super().handle_error(request, status, exc, message)
        # one line: aiohttp's reasons span several; the log escapes what control is left
        reason = " ".join((str(exc) if exc is not None else message or "").split())[:200]
        log.info("malformed request from %s: %s", request.remote, reason)
        response = web.Response(status=status, text="webproxy: malformed request\n")
        response.force_close()
        return response

    @property
    def long_lived(self) -> bool:
        request = self._current_request
        return request is not None and long_lived(request.raw_path)

    @property
    def busy(self) -> bool:
        return self._request_in_progress or self._reading is not None

    async def shutdown(self, timeout: float | None = 15.0) -> None:  # noqa: ASYNC109 (aiohttp's)
        """Wait up to `timeout` for the request in progress (the lane's read of the store,
        then aiohttp's handler, if the read handed it the request), then cancel it and
        close."""
        deadline = self._loop.time() + (timeout or 0.0)
        self._cancel_head_timer()
        if self._keepalive_handle is not None:
            self._keepalive_handle.cancel()
        if self._reading is not None:
            await asyncio.wait([self._reading], timeout=timeout)
        self._force_close = True  # (after the read: a request it hands over is taken)
        handler = self._task_handler
        busy = self._request_in_progress or bool(self._messages)
        if handler is not None and not handler.done() and busy:
            left = max(0.0, deadline - self._loop.time()) if timeout is not None else None
            await asyncio.wait([handler], timeout=left)
        if handler is not None and not handler.done():
            handler.cancel()
            await asyncio.wait([handler], timeout=CANCEL_WAIT)
        self.force_close()


class ClientServer(web.Server):
    """aiohttp's `Server`, making `ClientProtocol`s; its shutdown says what it waits for."""

    def __init__(
        self,
        *args: Any,
        limits: ClientLimits,
        refused: Refused,
        fast_lane: FastLane | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self.refused = refused
        self.fast_lane = fast_lane

        self._per_client: dict[str, int] = {}
        self._client_of: dict[ClientProtocol, str] = {}

    def __call__(self) -> ClientProtocol:
        return ClientProtocol(self, loop=self._loop, **self._kwargs)

    def admit(self, protocol: ClientProtocol) -> bool:
        """Count a new connection against its address's share; False past it."""
        limit = self.limits.max_per_client
        if not limit:
            return True
        peer = protocol.peername
        client = client_of(peer[0] if isinstance(peer, tuple) else None)
        held = self._per_client.get(client, 0)
        if held >= limit:
            return False
        self._per_client[client] = held + 1
        self._client_of[protocol] = client
        return True

    def release(self, protocol: ClientProtocol) -> None:
        client = self._client_of.pop(protocol, None)
        if client is not None:
            left = self._per_client[client] - 1
            if left:
                self._per_client[client] = left
            else:
                del self._per_client[client]

    async def shutdown(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 (aiohttp's)
        protocols = [conn for conn in self.connections if isinstance(conn, ClientProtocol)]
        busy = [conn for conn in protocols if conn.busy]
        if busy:
            long_lived = sum(conn.long_lived for conn in busy)
            log.info(
                "draining: waiting up to %gs for %d requests in flight (%d long polls)",
                timeout or 0.0,
                len(busy),
                long_lived,
            )
        await asyncio.gather(*(conn.shutdown(timeout) for conn in protocols))
        left = [conn for conn in busy if conn.busy]
        if left:
            log.info("drain grace over: %d requests cancelled", len(left))
        self._connections.clear()


class ClientRunner(web.AppRunner):
    """`AppRunner` whose server makes `ClientProtocol`s."""

    def __init__(
        self,
        app: web.Application,
        *,
        limits: ClientLimits,
        refused: Refused,
        fast_lane: FastLane | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self._limits = limits
        self._refused = refused
        self._fast_lane = fast_lane

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        return ClientServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            loop=asyncio.get_running_loop(),
            limits=self._limits,
            refused=self._refused,
            fast_lane=self._fast_lane,
            **plain._kwargs,
        )
