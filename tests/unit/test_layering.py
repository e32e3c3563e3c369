"""The decision layer stays pure: webproxy.cache imports only the standard library."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("aiohttp", "multidict", "yarl", "redis")

PROBE = f"""
import importlib, pkgutil, sys
import webproxy.cache
names = sorted(m.name for m in pkgutil.iter_modules(webproxy.cache.__path__, "webproxy.cache."))
for name in names:
    importlib.import_module(name)
print(",".join(names))
print(",".join(sorted({{m.split(".")[0] for m in sys.modules}} & set({FORBIDDEN!r}))))
"""


def test_importing_every_cache_module_loads_no_http_or_redis_library() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=30
    )
    imported, forbidden = result.stdout.splitlines()
    assert set(imported.split(",")) >= {
        "webproxy.cache.access",
        "webproxy.cache.entry",
        "webproxy.cache.keys",
        "webproxy.cache.policy",
        "webproxy.cache.rules",
        "webproxy.cache.users",
    }
    assert forbidden == ""
