"""Typed keys for the objects the proxy and admin applications share."""

from __future__ import annotations

from aiohttp import web

from webproxy.config import Settings
from webproxy.forward import Upstream

settings_key = web.AppKey("settings", Settings)
upstream_key = web.AppKey("upstream", Upstream)
