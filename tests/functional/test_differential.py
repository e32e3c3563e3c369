"""The same requests, straight to the simulator and through the proxy, give the same answers.

Compared: status, body, and end-to-end response headers (less `Date`, which may tick,
and `Via`, which the proxy adds); and, through `/sim/echo`, the request the simulator
saw (less what a reverse proxy adds: `Host`, `X-Forwarded-*`, `Via`).
"""

# ruff: noqa: E501 -- the request tables read best one request per line

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from yarl import URL

from tests.conftest import Proxy, Sim
from webproxy.headers import HOP_BY_HOP

IGNORED_RESPONSE_FIELDS = HOP_BY_HOP | {"date", "via"}
ADDED_BY_A_PROXY = {"host", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "via"}
FIVE_MB = os.urandom(5 * 1024 * 1024)


@dataclass(frozen=True)
class Case:
    method: str
    target: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    chunked: bool = False
    extra: dict[str, str] = field(default_factory=dict)


CASES = [
    Case("GET", "/sim/echo/plain"),
    Case("HEAD", "/sim/echo/head"),
    Case("OPTIONS", "/sim/echo/options"),
    Case("DELETE", "/sim/echo/delete"),
    Case("POST", "/sim/echo/empty", body=b""),
    Case("POST", "/sim/echo/small", (("Content-Type", "application/xml"),), b"<User/>"),
    Case("PUT", "/sim/echo/binary", (("Content-Type", "application/octet-stream"),), bytes(range(256)) * 4),
    Case("PATCH", "/sim/echo/five-mb", body=FIVE_MB),
    Case("POST", "/sim/echo/chunked", body=b"chunk-" * 5000, chunked=True),
    Case("GET", "/sim/echo/q?a=%2F%3F%26&b=%E2%82%AC&c=&c=2&%20d=x+y"),
    Case("GET", "/sim/echo/path%20with%20spaces/%E2%82%AC"),
    Case("GET", "/sim/echo/repeat", (("X-Dup", "one"), ("X-Dup", "two"), ("X-Dup", "three"))),
    Case("GET", "/sim/echo/odd", (("X-Empty", ""), ("X-Quoted", '"a, b"; q=0.5'), ("x-lower", "L"))),
    Case("GET", "/sim/echo/no-content?status=204"),
    Case("GET", "/sim/echo/not-modified?status=304", (("If-None-Match", '"v1"'),)),
    Case("GET", "/sim/echo/created?status=201&header=Location:/finesse/api/ReasonCode/9"),
    Case("GET", "/sim/echo/streamed?size=3000000"),
    Case("GET", "/finesse/api/User/10001", (("Authorization", "Basic MTAwMDE6ZmluZXNzZQ=="),)),
    Case("GET", "/finesse/api/User/10001", (("Authorization", "Basic MTAwMDE6d3Jvbmc="),)),
    Case("GET", "/finesse/api/NoSuchThing", (("Authorization", "Basic MTAwMDE6ZmluZXNzZQ=="),)),
]  # fmt: skip


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


async def send(session: aiohttp.ClientSession, base: str, case: Case) -> Answer:
    data: bytes | io.BytesIO | AsyncIterator[bytes] | None = case.body
    if case.chunked and case.body is not None:
        data = _chunks(case.body)
    elif case.body is not None and len(case.body) > 1_000_000:
        data = io.BytesIO(case.body)  # aiohttp streams a file-like body without blocking
    url = URL(base + case.target, encoded=True)
    async with session.request(
        case.method, url, headers=list(case.headers), data=data, allow_redirects=False
    ) as response:
        body = await response.read()
        kept = [
            (k, v) for k, v in response.headers.items() if k.lower() not in IGNORED_RESPONSE_FIELDS
        ]
        # field order matters only among lines of one name: a stable sort by name keeps it
        return Answer(response.status, sorted(kept, key=lambda h: h[0].lower()), body)


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 7000):
        yield body[start : start + 7000]


def seen_by_upstream(answer: Answer) -> list[list[str]] | None:
    """The request headers /sim/echo reported, less those a reverse proxy adds."""
    for name, value in answer.headers:
        if name == "X-Echo-Headers":
            return [h for h in json.loads(value) if h[0].lower() not in ADDED_BY_A_PROXY]
    return None


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.method}-{c.target[:40]}")
async def test_direct_and_proxied_answers_are_identical(
    sim: Sim, proxy: Proxy, raw_session: aiohttp.ClientSession, case: Case
) -> None:
    direct = await send(raw_session, sim.url, case)
    proxied = await send(raw_session, str(proxy.client.make_url("")).rstrip("/"), case)
    assert proxied.status == direct.status
    assert hashlib.sha256(proxied.body).hexdigest() == hashlib.sha256(direct.body).hexdigest()
    assert seen_by_upstream(proxied) == seen_by_upstream(direct)
    echo_free = {"X-Echo-Headers"}
    assert [h for h in proxied.headers if h[0] not in echo_free] == [
        h for h in direct.headers if h[0] not in echo_free
    ]
