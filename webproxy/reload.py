"""Which settings a running proxy can take on at once, and which need a restart.

Safe to change while serving: the cache TTLs (the HTTP caches' `ttl` and `enabled` too),
the stale-if-error window, the coalescing wait, logging and the admin token. Everything
else (listeners, upstream, store, TLS, limits, the identity TTL, the HTTP caches'
`max_bytes`) is baked into sockets, sessions, stores and books made at start.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Final

from webproxy.config import Settings
from webproxy.settings import HTTP_CACHES, HttpCacheSettings

#: (section, key) pairs a reload applies; every other difference needs a restart.
RELOADABLE: Final = frozenset(
    {
        ("cache", "ttl"),
        ("cache", "stale_if_error"),
        ("cache", "coalesce_timeout"),
        ("admin", "token"),
        ("log", "level"),
        ("log", "format"),
        ("log", "access"),
        *(("cache", f"{cache}.{key}") for cache in HTTP_CACHES for key in ("ttl", "enabled")),
    }
)


@dataclass(frozen=True, slots=True)
class Reload:
    """What a reload did: the settings now in force, what changed, what waits for a restart."""

    settings: Settings
    applied: tuple[str, ...]
    needs_restart: tuple[str, ...]


def plan_reload(running: Settings, wanted: Settings) -> Reload:
    """Apply the reloadable differences between `running` and `wanted`; list the rest."""
    applied: list[str] = []
    needs_restart: list[str] = []
    result = running
    for section in fields(Settings):
        old, new = getattr(running, section.name), getattr(wanted, section.name)
        changes: dict[str, object] = {}
        for key in fields(old):
            before, after = getattr(old, key.name), getattr(new, key.name)
            if before == after:  # Secret and the TTL mapping compare by value
                continue
            if isinstance(before, HttpCacheSettings):  # a [cache.<name>] table: by its keys
                taken = _table(section.name, key.name, before, after, applied, needs_restart)
                if taken != before:
                    changes[key.name] = taken
                continue
            name = f"{section.name}.{key.name}"
            if (section.name, key.name) in RELOADABLE:
                changes[key.name] = after
                applied.append(name)
            else:
                needs_restart.append(name)
        if changes:
            result = replace(result, **{section.name: replace(old, **changes)})
    return Reload(result, tuple(applied), tuple(needs_restart))


def _table(
    section: str,
    table: str,
    before: HttpCacheSettings,
    after: HttpCacheSettings,
    applied: list[str],
    needs_restart: list[str],
) -> HttpCacheSettings:
    """The reloadable keys of one nested table taken from `after`, the rest listed."""
    changes: dict[str, Any] = {}
    for key in fields(before):
        if getattr(before, key.name) == getattr(after, key.name):
            continue
        name = f"{table}.{key.name}"
        if (section, name) in RELOADABLE:
            changes[key.name] = getattr(after, key.name)
            applied.append(f"{section}.{name}")
        else:
            needs_restart.append(f"{section}.{name}")
    return replace(before, **changes)
