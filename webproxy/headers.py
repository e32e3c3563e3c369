"""Header rules for a reverse proxy: hop-by-hop removal, X-Forwarded-* and Via."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from multidict import CIMultiDict, CIMultiDictProxy

#: RFC 9110 7.6.1 connection-specific fields, plus the non-standard ones proxies also drop.
#: Proxy-Authorization and Proxy-Authenticate are meant for this proxy, never for Finesse.
HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

VIA_TOKEN: Final = "1.1 webproxy"


def connection_tokens(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> frozenset[str]:
    """Header names listed in `Connection`, lower-cased: hop-by-hop for this message only."""
    names: set[str] = set()
    for value in headers.getall("Connection", ()):
        names.update(token.strip().lower() for token in value.split(",") if token.strip())
    return frozenset(names)


def end_to_end(
    headers: CIMultiDictProxy[str] | CIMultiDict[str], *, drop: Iterable[str] = ()
) -> CIMultiDict[str]:
    """A copy of `headers` without hop-by-hop fields, those named in `Connection`, and `drop`."""
    skip = HOP_BY_HOP | connection_tokens(headers) | {name.lower() for name in drop}
    return CIMultiDict((name, value) for name, value in headers.items() if name.lower() not in skip)


def add_via(headers: CIMultiDict[str]) -> None:
    """Append this proxy to `Via` (RFC 9110 7.6.3)."""
    previous = ", ".join(headers.getall("Via", ()))
    headers.popall("Via", None)
    headers["Via"] = f"{previous}, {VIA_TOKEN}" if previous else VIA_TOKEN


def add_forwarded(
    headers: CIMultiDict[str], *, client_ip: str | None, scheme: str, host: str | None
) -> None:
    """Append the client to `X-Forwarded-For`; set `X-Forwarded-Proto` and `X-Forwarded-Host`.

    `X-Forwarded-For` keeps what earlier proxies added (as nginx's
    `$proxy_add_x_forwarded_for` does); Proto and Host describe this hop's listener, so
    a client cannot choose them.
    """
    previous = ", ".join(headers.getall("X-Forwarded-For", ()))
    headers.popall("X-Forwarded-For", None)
    client = client_ip or "unknown"
    headers["X-Forwarded-For"] = f"{previous}, {client}" if previous else client
    headers["X-Forwarded-Proto"] = scheme
    headers.popall("X-Forwarded-Host", None)
    if host:
        headers["X-Forwarded-Host"] = host
