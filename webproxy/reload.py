"""Which settings a running proxy can take on at once, and which need a restart.

Safe to change while serving: the cache TTLs, the stale-if-error window, the coalescing
wait, logging and the admin token. Everything else (listeners, upstream, store, TLS,
limits, the identity TTL) is baked into sockets, sessions and books made at start.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Final

from webproxy.config import Settings

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
            name = f"{section.name}.{key.name}"
            if (section.name, key.name) in RELOADABLE:
                changes[key.name] = after
                applied.append(name)
            else:
                needs_restart.append(name)
        if changes:
            result = replace(result, **{section.name: replace(old, **changes)})
    return Reload(result, tuple(applied), tuple(needs_restart))
