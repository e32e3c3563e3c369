"""The hit-path benchmark's HTTP probes: the one request every server is sent, warming a
proxy or nginx until it answers that request from its cache, and reading what came back."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from bench.processes import Nginx, Proxy, StartFailed

AGENT: Final = "10001"
TEAM: Final = "5000"
#: Every request to either server sends exactly these (Accept is part of the cache key).
HEADERS: Final = {
    "Authorization": "Basic " + base64.b64encode(f"{AGENT}:finesse".encode()).decode(),
    "Accept": "application/xml",
}
PATH: Final = f"/finesse/api/TeamResource/{TEAM}/ReasonCodes"
QUERY: Final = "?category=ALL"
HOP_BY_HOP: Final = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})
NGINX_STATUS: Final = "X-Cache-Status"  # nginx's $upstream_cache_status (NGINX_CONFIG)


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP answer as urllib read it."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def end_to_end(self) -> dict[str, str]:
        return {k: v for k, v in self.headers if k.lower() not in HOP_BY_HOP}


def http_get(url: str, headers: Mapping[str, str] | None = None) -> Answer:
    """One GET; any status is an Answer (urllib's HTTPError included)."""
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Answer(response.status, tuple(response.headers.items()), response.read())
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, tuple(exc.headers.items()), exc.read())


def http_json(url: str) -> dict[str, object]:
    answer = http_get(url)
    body: dict[str, object] = json.loads(answer.body)
    return body


def counter(data: Mapping[str, object], key: str) -> int:
    value = data.get(key)
    return value if isinstance(value, int) else 0


def is_hit(answer: Answer) -> bool:
    return answer.status == 200 and (answer.header("Cache-Status") or "").startswith(
        "webproxy; hit"
    )


def warm(proxy: Proxy) -> Answer:
    """Sign the agent in, fetch his team's ReasonCodes (stored), and return the hit after."""
    signed = http_get(f"{proxy.url}/finesse/api/User/{AGENT}", HEADERS)
    if signed.status != 200:
        raise StartFailed(f"sign-in of {AGENT} through the proxy answered {signed.status}")
    http_get(proxy.url + PATH + QUERY, HEADERS)
    hit = http_get(proxy.url + PATH + QUERY, HEADERS)
    if not is_hit(hit):
        raise StartFailed(f"no cache hit after warming: {hit.status} {hit.header('Cache-Status')}")
    return hit


def cache_statuses(url: str, count: int, header: str = "Cache-Status") -> list[str]:
    return [str(http_get(url, HEADERS).header(header)) for _ in range(count)]


def warm_nginx(nginx: Nginx) -> tuple[list[str], Answer]:
    """Fetch the URL through nginx once (stored), then once more: the X-Cache-Status of both,
    and the second answer, which must be a hit."""
    first = http_get(nginx.url + PATH + QUERY, HEADERS)
    hit = http_get(nginx.url + PATH + QUERY, HEADERS)
    statuses = [str(first.header(NGINX_STATUS)), str(hit.header(NGINX_STATUS))]
    if hit.status != 200 or statuses[1] != "HIT":
        raise StartFailed(f"nginx: no cache hit after warming: {hit.status} {statuses}")
    return statuses, hit
