"""Load Settings from defaults, a TOML file, WEBPROXY_* variables and flags, in that order."""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Final, TypeAlias, get_args
from urllib.parse import urlsplit

from webproxy.errors import ConfigError
from webproxy.settings import (
    CACHED_RESOURCES,
    HTTP_CACHES,
    AccessLog,
    Address,
    AdminSettings,
    Backend,
    CacheSettings,
    LogFormat,
    LogLevel,
    LogSettings,
    PurgeFailure,
    Secret,
    ServerSettings,
    Settings,
    StoreSettings,
    UpstreamSettings,
    describe,
    parse_address,
)

__all__ = [
    "CACHED_RESOURCES",
    "Address",
    "AdminSettings",
    "CacheSettings",
    "ConfigError",
    "LogSettings",
    "Secret",
    "ServerSettings",
    "Settings",
    "StoreSettings",
    "UpstreamSettings",
    "describe",
    "env_name",
    "load_settings",
    "parse_address",
]

ENV_PREFIX: Final = "WEBPROXY_"
MEDIA_PATH_PREFIX: Final = "/finesse/api/"
REDIS_SCHEMES: Final = ("redis://", "rediss://", "unix://")
#: What Kubernetes injects into every pod when a Service is named `webproxy`
#: (WEBPROXY_SERVICE_HOST, WEBPROXY_PORT_8445_TCP_ADDR, ...): not configuration.
KUBERNETES_SERVICE_LINK: Final = re.compile(r"WEBPROXY_(SERVICE_[A-Z0-9_]+|PORT(_[A-Z0-9_]+)?)$")

# A rule turns one raw value into a valid typed one or raises _Invalid. `text` says the raw
# value came as a string to be converted (environment, string flags); TOML values are typed.
Rule: TypeAlias = Callable[[object, bool], object]


class _Invalid(Exception):
    """One value's problem, worded to follow `key: `."""


def _kind(raw: object, *, shown: bool = True) -> str:
    """What a wrong-typed value is; with the value itself unless `shown` is false."""
    if isinstance(raw, bool):
        return f"a boolean ({str(raw).lower()})" if shown else "a boolean"
    if isinstance(raw, str):
        return f"a string {_quoted(raw)}" if shown else "a string"
    if isinstance(raw, int | float):
        return f"a number ({raw})" if shown else "a number"
    if isinstance(raw, list | tuple):
        return "a list"
    return "a table" if isinstance(raw, dict) else f"a {type(raw).__name__}"


def _quoted(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _shown(value: float) -> str:
    return f"{value:g}" if math.isfinite(value) and value.is_integer() else repr(value)


def _string(raw: object) -> str:
    if isinstance(raw, str):
        return raw
    raise _Invalid(f"must be a string, got {_kind(raw)}")


def _boolean(raw: object, text: bool) -> bool:
    if isinstance(raw, bool):
        return raw
    if text and isinstance(raw, str):
        word = raw.strip().lower()
        if word in ("true", "1", "yes"):
            return True
        if word in ("false", "0", "no"):
            return False
        raise _Invalid(f"must be true, false, 1, 0, yes or no, got {_quoted(raw)}")
    raise _Invalid(f"must be true or false, got {_kind(raw)}")


def _integer(raw: object, text: bool) -> int:
    if text and isinstance(raw, str):
        try:
            return int(raw)
        except ValueError:
            raise _Invalid(f"must be an integer, got {_quoted(raw)}") from None
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    raise _Invalid(f"must be an integer, got {_kind(raw)}")


def _number(raw: object, text: bool) -> float:
    if text and isinstance(raw, str):
        try:
            return float(raw)
        except ValueError:
            raise _Invalid(f"must be a number, got {_quoted(raw)}") from None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)
    raise _Invalid(f"must be a number, got {_kind(raw)}")


def _positive(raw: object, text: bool) -> float:
    value = _number(raw, text)
    if math.isfinite(value) and value > 0:
        return value
    raise _Invalid(f"must be a positive number, got {_shown(value)}")


def _not_negative(raw: object, text: bool) -> float:
    value = _number(raw, text)
    if math.isfinite(value) and value >= 0:
        return value
    raise _Invalid(f"must be a number >= 0, got {_shown(value)}")


def _positive_int(raw: object, text: bool) -> int:
    value = _integer(raw, text)
    if value > 0:
        return value
    raise _Invalid(f"must be a positive integer, got {value}")


def _not_negative_int(raw: object, text: bool) -> int:
    value = _integer(raw, text)
    if value >= 0:
        return value
    raise _Invalid(f"must be an integer >= 0, got {value}")


def _workers(raw: object, text: bool) -> int:
    value = _integer(raw, text)
    if 1 <= value <= 64:
        return value
    raise _Invalid(f"must be an integer from 1 to 64, got {value}")


def _choice(options: tuple[str, ...]) -> Rule:
    def rule(raw: object, text: bool) -> str:
        if isinstance(raw, str) and raw.strip().lower() in options:
            return raw.strip().lower()
        raise _Invalid(f"must be one of {', '.join(options)}")

    return rule


def _address(raw: object, text: bool) -> Address:
    shown = str(raw) if isinstance(raw, Address) else _string(raw)
    try:
        return parse_address(shown)
    except ValueError as error:
        raise _Invalid(f"invalid address {_quoted(shown)}: {error}") from None


def _file(raw: object, text: bool) -> str:
    path = _string(raw)
    if not path:
        raise _Invalid("must not be empty")
    if not os.path.isfile(path):
        raise _Invalid(f"no such file: {path}")
    if not os.access(path, os.R_OK):
        raise _Invalid(f"cannot read file: {path}")
    return path


def _upstream_url(raw: object, text: bool) -> str:
    url = _string(raw)
    problem = "must be an absolute http:// or https:// URL"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError:
        raise _Invalid(problem) from None
    if parts.scheme not in ("http", "https") or not parts.hostname or url.split() != [url]:
        raise _Invalid(problem)
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise _Invalid("must not have a query or a fragment")
    if "@" in parts.netloc:
        raise _Invalid("must not contain credentials")
    return url.removesuffix("/")


def _media_path(raw: object, text: bool) -> str:
    path = _string(raw)
    tail = path.removeprefix(MEDIA_PATH_PREFIX)
    if tail == path or not tail or any(c in tail for c in "?# ") or tail != tail.strip():
        raise _Invalid(f"must be a path under {MEDIA_PATH_PREFIX}, got {_quoted(path)}")
    return path


def _resources(raw: object, text: bool) -> tuple[str, ...]:
    if text and isinstance(raw, str):
        raw = [name.strip() for name in raw.split(",") if name.strip()]
    if not isinstance(raw, list | tuple) or not all(isinstance(name, str) for name in raw):
        raise _Invalid(f"must be a list of resource names, got {_kind(raw)}")
    unknown = [repr(name) for name in raw if name not in CACHED_RESOURCES]
    if unknown:
        known = ", ".join(CACHED_RESOURCES)
        raise _Invalid(f"unknown resource {', '.join(unknown)} (known: {known})")
    return tuple(dict.fromkeys(str(name) for name in raw))


def _sentinels(raw: object, text: bool) -> tuple[Address, ...]:
    if text and isinstance(raw, str):
        raw = [item.strip() for item in raw.split(",") if item.strip()]
    if not isinstance(raw, list | tuple) or not all(isinstance(item, str) for item in raw):
        raise _Invalid(f"must be a list of HOST:PORT, got {_kind(raw)}")
    addresses = []
    for item in raw:
        try:
            addresses.append(parse_address(str(item)))
        except ValueError as exc:
            raise _Invalid(f"{_quoted(str(item))}: {exc}") from None
    return tuple(dict.fromkeys(addresses))


def _name(raw: object, text: bool) -> str:
    name = _string(raw)
    if name and name.isprintable() and name.split() == [name]:
        return name
    raise _Invalid(f"must be non-empty without spaces, got {_quoted(name)}")


def _key_prefix(raw: object, text: bool) -> str:
    prefix = _string(raw)
    if prefix and prefix.split() == [prefix]:
        return prefix
    raise _Invalid(f"must be non-empty without spaces, got {_quoted(prefix)}")


def _secret_text(raw: object) -> str:
    """The secret's text; its problems never show the value."""
    if isinstance(raw, Secret):
        return raw.reveal()
    if isinstance(raw, str):
        return raw
    raise _Invalid(f"must be a string, got {_kind(raw, shown=False)}")


def _redis_url(raw: object, text: bool) -> Secret:
    url = _secret_text(raw)
    if not url.lower().startswith(REDIS_SCHEMES):
        raise _Invalid(f"must start with {', '.join(REDIS_SCHEMES[:-1])} or {REDIS_SCHEMES[-1]}")
    try:
        urlsplit(url).port  # noqa: B018 - parsing it is the check
    except ValueError:
        raise _Invalid("has a port that is not a number from 0 to 65535") from None
    return Secret(url)


def _token(raw: object, text: bool) -> Secret:
    token = _secret_text(raw)
    if not token:
        raise _Invalid("must not be empty")
    if not (token.isascii() and token.isprintable()) or " " in token:
        raise _Invalid("must be printable ASCII without spaces")
    return Secret(token)


_RULES: Final[Mapping[str, Rule]] = MappingProxyType(
    {
        "server.listen": _address,
        "server.tls_cert": _file,
        "server.tls_key": _file,
        "server.workers": _workers,
        "server.max_header_bytes": _positive_int,
        "server.max_head_bytes": _positive_int,
        "server.max_body_bytes": _positive_int,
        "server.body_buffer_bytes": _not_negative_int,
        "server.client_header_timeout": _positive,
        "server.client_body_timeout": _positive,
        "server.send_timeout": _positive,
        "server.keepalive_timeout": _positive,
        "server.max_upstream_per_client": _not_negative_int,
        "server.max_long_lived_per_client": _not_negative_int,
        "server.max_connections_per_client": _not_negative_int,
        "server.max_client_connections": _not_negative_int,
        "server.shutdown_grace": _positive,
        "server.fast_lane": _boolean,
        "upstream.url": _upstream_url,
        "upstream.connect_timeout": _positive,
        "upstream.read_timeout": _positive,
        "upstream.idle_timeout": _positive,
        "upstream.tls_verify": _boolean,
        "upstream.ca_file": _file,
        "upstream.max_connections": _positive_int,
        "store.backend": _choice(get_args(Backend)),
        "store.redis_url": _redis_url,
        "store.key_prefix": _key_prefix,
        "store.max_bytes": _positive_int,
        "store.timeout": _positive,
        "store.max_connections": _positive_int,
        "store.on_purge_failure": _choice(get_args(PurgeFailure)),
        "store.redis_cluster": _boolean,
        "store.sentinels": _sentinels,
        "store.sentinel_master": _name,
        "store.local_max_bytes": _not_negative_int,
        "store.local_ttl": _not_negative,
        "cache.enabled": _boolean,
        "cache.identity_ttl": _positive,
        "cache.stale_if_error": _not_negative,
        "cache.coalesce_timeout": _positive,
        "cache.max_entry_bytes": _positive_int,
        "cache.max_key_bytes": _positive_int,
        "cache.max_sign_in_bytes": _positive_int,
        "cache.repurge_after": _positive,
        "cache.repurge_every_write": _boolean,
        "cache.fleet_key": _token,
        "cache.media_domain_path": _media_path,
        "cache.override_upstream": _resources,
        **{f"cache.ttl.{name}": _positive for name in CACHED_RESOURCES},
        **{
            f"cache.{cache}.{key}": rule
            for cache in HTTP_CACHES
            for key, rule in (
                ("enabled", _boolean),
                ("ttl", _positive),
                ("max_bytes", _positive_int),
            )
        },
        "admin.listen": _address,
        "admin.token": _token,
        "log.level": _choice(get_args(LogLevel)),
        "log.format": _choice(get_args(LogFormat)),
        "log.access": _choice(get_args(AccessLog)),
    }
)
_TABLES: Final = frozenset(key.rpartition(".")[0] for key in _RULES)


def env_name(key: str) -> str:
    """The environment variable for a dotted key: `cache.ttl.ChatConfig` ->
    `WEBPROXY_CACHE_TTL_CHATCONFIG`."""
    return ENV_PREFIX + key.replace(".", "_").upper()


_ENV_KEYS: Final[Mapping[str, str]] = MappingProxyType({env_name(key): key for key in _RULES})


def load_settings(
    path: str | os.PathLike[str] | None,
    environ: Mapping[str, str],
    flags: Mapping[str, object] | None = None,
) -> Settings:
    """Layer defaults < the TOML file at `path` < `WEBPROXY_*` in `environ` < `flags`.

    `flags` maps dotted keys (`"upstream.url"`) to typed values or strings; None values are
    skipped. Every problem in every layer is collected into one ConfigError, one
    `key: problem` line each; secret values never appear in it.
    """
    layers = _Layers()
    if path is not None:
        _read_file(os.fspath(path), layers)
    _read_environ(environ, layers)
    _read_flags(flags or {}, layers)
    settings = _assemble(layers.values)
    _cross_check(settings, layers)
    if layers.problems:
        raise ConfigError(layers.problems)
    return settings


class _Layers:
    """The values read so far (later layers overwrite), the label naming each one's source,
    the keys that had a bad value somewhere, and every problem."""

    __slots__ = ("failed", "problems", "values")

    def __init__(self) -> None:
        self.values: dict[str, tuple[object, str]] = {}
        self.failed: set[str] = set()
        self.problems: list[str] = []

    def offer(self, key: str, raw: object, label: str, *, text: bool) -> None:
        try:
            self.values[key] = (_RULES[key](raw, text), label)
        except _Invalid as problem:
            self.failed.add(key)
            self.problems.append(f"{label}: {problem}")

    def label(self, key: str) -> str:
        return self.values[key][1] if key in self.values else key


def _unknown(what: str, name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.75)
    return f"unknown {what}" + (f" (did you mean {close[0]}?)" if close else "")


def _read_file(path: str, layers: _Layers) -> None:
    try:
        with open(path, "rb") as file:
            document = tomllib.load(file)
    except FileNotFoundError:
        layers.problems.append(f"{path}: no such file")
    except tomllib.TOMLDecodeError as error:
        layers.problems.append(f"{path}: invalid TOML: {error}")
    except UnicodeDecodeError:
        layers.problems.append(f"{path}: invalid TOML: not UTF-8 text")
    except OSError as error:
        layers.problems.append(f"{path}: cannot read: {error.strerror or error}")
    else:
        _read_table(document, "", layers)


def _read_table(table: Mapping[str, object], prefix: str, layers: _Layers) -> None:
    for name, raw in table.items():
        key = prefix + name
        if key in _TABLES:
            if isinstance(raw, dict):
                _read_table(raw, f"{key}.", layers)
            else:
                layers.problems.append(f"{key}: must be a table, got {_kind(raw, shown=False)}")
        elif key in _RULES:
            layers.offer(key, raw, key, text=False)
        else:
            unknown = _unknown("key", key, _RULES) if prefix else _unknown("section", key, _TABLES)
            layers.problems.append(f"{key}: {unknown}")


def _read_environ(environ: Mapping[str, str], layers: _Layers) -> None:
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or KUBERNETES_SERVICE_LINK.match(name):
            continue
        key = _ENV_KEYS.get(name)
        if key is None:
            layers.problems.append(f"{name}: {_unknown('variable', name, _ENV_KEYS)}")
        else:
            layers.offer(key, environ[name], f"{key} ({name})", text=True)


def _read_flags(flags: Mapping[str, object], layers: _Layers) -> None:
    for key, raw in flags.items():
        if raw is None:
            continue
        if key in _RULES:
            layers.offer(key, raw, f"{key} (flag)", text=isinstance(raw, str))
        else:
            layers.problems.append(f"{key} (flag): {_unknown('key', key, _RULES)}")


def _assemble(values: Mapping[str, tuple[object, str]]) -> Settings:
    base = Settings()
    changes: dict[str, dict[str, object]] = {}
    ttl: dict[str, object] = dict(base.cache.ttl)
    http_caches: dict[str, dict[str, object]] = {}
    for key, (value, _) in values.items():
        section, _, name = key.partition(".")
        table, _, field_name = name.partition(".")
        if table == "ttl" and field_name:
            ttl[field_name] = value
        elif table in HTTP_CACHES and field_name:
            http_caches.setdefault(table, {})[field_name] = value
        else:
            changes.setdefault(section, {})[name] = value
    cache = changes.setdefault("cache", {})
    cache["ttl"] = ttl
    for table, fields in http_caches.items():
        cache[table] = replace(getattr(base.cache, table), **fields)
    sections = {name: replace(getattr(base, name), **fields) for name, fields in changes.items()}
    return replace(base, **sections)


def _cross_check(settings: Settings, layers: _Layers) -> None:
    """Problems between keys, each against its first key; skipped when either key already
    had a bad value (that problem is reported)."""
    server = settings.server
    conflicts: list[tuple[str, str, str]] = []
    if server.tls_key is not None and server.tls_cert is None:
        conflicts.append(("server.tls_key", "server.tls_cert", "set without server.tls_cert"))
    if server.tls_cert is not None and server.tls_key is None:
        conflicts.append(("server.tls_cert", "server.tls_key", "set without server.tls_key"))
    if settings.admin.listen == server.listen and server.listen.port != 0:
        conflicts.append(("admin.listen", "server.listen", "same address as server.listen"))
    if server.max_head_bytes < server.max_header_bytes:
        conflicts.append(
            ("server.max_head_bytes", "server.max_header_bytes", "smaller than max_header_bytes")
        )
    if settings.cache.repurge_after <= settings.upstream.read_timeout:
        conflicts.append(
            (
                "cache.repurge_after",
                "upstream.read_timeout",
                "not longer than upstream.read_timeout",
            )
        )
    if settings.store.sentinels and settings.store.redis_cluster:
        conflicts.append(("store.sentinels", "store.redis_cluster", "set with redis_cluster"))
    if server.body_buffer_bytes > server.max_body_bytes:
        conflicts.append(
            ("server.body_buffer_bytes", "server.max_body_bytes", "larger than max_body_bytes")
        )
    for key, other, problem in conflicts:
        if not layers.failed & {key, other}:
            layers.problems.append(f"{layers.label(key)}: {problem}")
