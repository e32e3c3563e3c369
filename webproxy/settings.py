"""The settings records: frozen dataclasses whose defaults are webproxy's default config."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Final, Literal, TypeAlias

MASK: Final = "********"
CACHED_RESOURCES: Final[tuple[str, ...]] = (
    "ChatConfig",
    "ECCVariableConfig",
    "MediaDomain",
    "TeamResource",
)
DEFAULT_TTL: Final = 300.0
KIB: Final = 1024
MIB: Final = 1024 * KIB

Backend: TypeAlias = Literal["memory", "redis"]
PurgeFailure: TypeAlias = Literal["refuse", "forward"]
LogLevel: TypeAlias = Literal["debug", "info", "warning", "error", "critical"]
LogFormat: TypeAlias = Literal["text", "json"]
AccessLog: TypeAlias = Literal["off", "info", "debug"]

_HOST: Final = re.compile(r"[A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class Address:
    """A host and port to listen on; `str()` gives `host:port` (`[::1]:port` for IPv6)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(text: str) -> Address:
    """Parse `HOST:PORT`, `[IPV6]:PORT` or `:PORT` (all interfaces); ValueError says why not."""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket:
            raise ValueError("missing ']' after the IPv6 address")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError("not an IPv6 address inside [...]") from None
        if not rest.startswith(":"):
            raise ValueError("missing :PORT")
        port_text = rest[1:]
    else:
        host, colon, port_text = text.rpartition(":")
        if not colon:
            raise ValueError("missing :PORT")
        if ":" in host:
            raise ValueError("an IPv6 address needs brackets, as in [::1]:8080")
        host = host or "0.0.0.0"
        if not _HOST.fullmatch(host):
            raise ValueError("the host is not a name or an IP address")
    if not (port_text.isascii() and port_text.isdigit()):
        raise ValueError("the port is not a number")
    port = int(port_text)
    if port > 65535:
        raise ValueError("the port must be from 0 to 65535")
    return Address(host, port)


@dataclass(frozen=True, slots=True, repr=False)
class Secret:
    """A value that must never be shown: its repr and str are `Secret('********')`."""

    _value: str

    def reveal(self) -> str:
        """The value itself, for the one place that has to use it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        return self.__repr__()


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """`[server]`: the proxy listener."""

    listen: Address = Address("0.0.0.0", 8445)
    tls_cert: str | None = None
    tls_key: str | None = None
    workers: int = 1
    max_header_bytes: int = 16384
    max_head_bytes: int = 64 * KIB
    max_body_bytes: int = 16 * MIB
    body_buffer_bytes: int = 64 * KIB
    client_header_timeout: float = 60.0
    client_body_timeout: float = 60.0
    send_timeout: float = 60.0
    keepalive_timeout: float = 75.0
    max_upstream_per_client: int = 32
    max_long_lived_per_client: int = 256
    max_connections_per_client: int = 1024
    max_client_connections: int = 0
    shutdown_grace: float = 30.0
    fast_lane: bool = True
    """Answer fresh REST hits below aiohttp's request machinery (`webproxy.fastlane`)."""


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    """`[upstream]`: the Finesse server behind the proxy."""

    url: str = "http://127.0.0.1:8082"
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    idle_timeout: float = 120.0
    tls_verify: bool = True
    ca_file: str | None = None
    max_connections: int = 100


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """`[store]`: where cached entries are kept."""

    backend: Backend = "memory"
    redis_url: Secret = Secret("redis://127.0.0.1:6379/0")
    key_prefix: str = "webproxy"
    max_bytes: int = 64 * MIB
    timeout: float = 0.5
    max_connections: int = 200
    on_purge_failure: PurgeFailure = "refuse"
    redis_cluster: bool = False
    """`redis_url` names any node of a Redis Cluster (redis-py's RedisCluster finds the rest)."""
    sentinels: tuple[Address, ...] = ()
    """When set, the master named `sentinel_master` is found (and followed) through these."""
    sentinel_master: str = "mymaster"
    local_max_bytes: int = 0
    """The in-process tier in front of Redis (`webproxy.stores.local`); 0 = off."""
    local_ttl: float = 1.0
    """Longest an entry stays in the local tier without being read from Redis again."""


def _default_ttls() -> Mapping[str, float]:
    return MappingProxyType(dict.fromkeys(CACHED_RESOURCES, DEFAULT_TTL))


@dataclass(frozen=True, slots=True)
class HttpCacheSettings:
    """`[cache.desktop]`, `[cache.shindig]`, `[cache.authmode]`: one of Finesse's other
    caches (`webproxy.cache.http`). `ttl`: seconds an answer stays fresh when Finesse
    gives no freshness of its own; `max_bytes`: the memory store's bound for this cache."""

    enabled: bool = True
    ttl: float = 3600.0
    max_bytes: int = 64 * MIB


HTTP_CACHES: Final = ("desktop", "shindig", "authmode")
"""The `[cache.<name>]` tables, one per HTTP cache, in `CacheSettings` as fields."""


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """`[cache]` and `[cache.ttl]`: what is cached and for how long.

    `ttl` always holds exactly the names in CACHED_RESOURCES, read-only; a mapping given
    with some of them is completed with DEFAULT_TTL, and an unknown name is a ValueError.
    """

    enabled: bool = True
    identity_ttl: float = 300.0
    stale_if_error: float = 300.0
    coalesce_timeout: float = 10.0
    max_entry_bytes: int = 4 * MIB
    max_key_bytes: int = 8 * KIB
    max_sign_in_bytes: int = 1 * MIB
    repurge_after: float = 35.0
    repurge_every_write: bool = False
    fleet_key: Secret | None = None
    media_domain_path: str = "/finesse/api/MediaDomains"
    override_upstream: tuple[str, ...] = ()
    ttl: Mapping[str, float] = field(default_factory=_default_ttls)
    desktop: HttpCacheSettings = HttpCacheSettings()
    shindig: HttpCacheSettings = HttpCacheSettings(max_bytes=32 * MIB)
    authmode: HttpCacheSettings = HttpCacheSettings(ttl=300.0, max_bytes=4 * MIB)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.ttl) - set(CACHED_RESOURCES))
        if unknown:
            raise ValueError(f"unknown cache.ttl names: {', '.join(unknown)}")
        ttl = {name: float(self.ttl.get(name, DEFAULT_TTL)) for name in CACHED_RESOURCES}
        object.__setattr__(self, "ttl", MappingProxyType(ttl))


@dataclass(frozen=True, slots=True)
class AdminSettings:
    """`[admin]`: the admin listener and the token that guards cache clearing."""

    listen: Address = Address("127.0.0.1", 9901)
    token: Secret | None = None


@dataclass(frozen=True, slots=True)
class LogSettings:
    """`[log]`: log level, line format and access logging."""

    level: LogLevel = "info"
    format: LogFormat = "text"
    access: AccessLog = "off"


@dataclass(frozen=True, slots=True)
class Settings:
    """The whole configuration; `Settings()` is the default one."""

    server: ServerSettings = field(default_factory=ServerSettings)
    upstream: UpstreamSettings = field(default_factory=UpstreamSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    log: LogSettings = field(default_factory=LogSettings)


def describe(settings: Settings) -> dict[str, object]:
    """The effective config as plain JSON-ready data, every secret shown as `********`."""
    return {
        part.name: {item.name: _plain(getattr(section, item.name)) for item in fields(section)}
        for part in fields(settings)
        for section in (getattr(settings, part.name),)
    }


def _plain(value: object) -> object:
    if isinstance(value, HttpCacheSettings):
        return {item.name: _plain(getattr(value, item.name)) for item in fields(value)}
    if isinstance(value, Secret):
        return MASK
    if isinstance(value, Address):
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value
