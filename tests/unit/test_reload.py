"""What a reload applies while serving and what waits for a restart."""

from __future__ import annotations

from dataclasses import replace

from webproxy.config import Settings
from webproxy.reload import plan_reload
from webproxy.settings import HttpCacheSettings


def test_an_http_caches_ttl_and_switch_apply_and_its_byte_bound_waits() -> None:
    running = Settings()
    wanted = replace(
        running,
        cache=replace(
            running.cache,
            desktop=HttpCacheSettings(enabled=False, ttl=60.0, max_bytes=1024),
            authmode=replace(running.cache.authmode, ttl=30.0),
        ),
    )
    done = plan_reload(running, wanted)
    assert done.applied == ("cache.desktop.enabled", "cache.desktop.ttl", "cache.authmode.ttl")
    assert done.needs_restart == ("cache.desktop.max_bytes",)
    desktop = done.settings.cache.desktop
    assert (desktop.enabled, desktop.ttl, desktop.max_bytes) == (False, 60.0, 64 * 1024 * 1024)
    assert done.settings.cache.authmode.ttl == 30.0
    assert done.settings.cache.shindig == running.cache.shindig


def test_nothing_changed_applies_nothing() -> None:
    done = plan_reload(Settings(), Settings())
    assert (done.applied, done.needs_restart) == ((), ())
    assert done.settings == Settings()
