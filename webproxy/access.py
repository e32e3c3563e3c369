"""The access log: one line per request, as Finesse's `set webproxy access-log-level` offers.

`log.access = "off"` writes nothing (one check per request); `info` logs method, path,
status, bytes, duration, upstream time, cache result and worker; `debug` adds the client
address and user agent. The level can change while serving (`PUT /admin/log`): it is read
for each request, so it reaches connections already open too. Credentials never appear:
no request header is logged but `User-Agent`, and query values are shown only for
parameters known to be harmless (`category`, `nocache`, ...); any other value is masked.
"""

from __future__ import annotations

import logging
import os

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from webproxy.appkeys import cache_result_key, upstream_seconds_key
from webproxy.logs import loggable_target

log = logging.getLogger("webproxy.access")


def _field(value: object) -> str:
    """A text line's value; one a client chose (user agent, path) is quoted when it holds a
    space, a quote or `=`, so it can't pass for fields of its own."""
    text = str(value)
    if any(char in text for char in ' "='):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


class AccessLogger(AbstractAccessLogger):
    """Writes to the `webproxy.access` logger; JSON output gets the fields as keys."""

    @property
    def enabled(self) -> bool:
        """Always: aiohttp reads this once per connection, and a desktop keeps its connection
        open for hours; `log` decides per request instead, so a live change reaches it."""
        return True

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if self.logger.disabled or not self.logger.isEnabledFor(logging.INFO):
            return
        upstream = request.get(upstream_seconds_key)
        fields: dict[str, object] = {
            "method": request.method,
            "path": loggable_target(request.raw_path),
            "status": response.status,
            "bytes": response.body_length,
            "duration_ms": round(time * 1000, 3),
            "upstream_ms": None if upstream is None else round(upstream * 1000, 3),
            "cache": str(request.get(cache_result_key, "-")),
            "worker": os.getpid(),
        }
        if self.logger.isEnabledFor(logging.DEBUG):
            fields["remote"] = request.remote
            fields["user_agent"] = request.headers.get("User-Agent", "-")
        text = " ".join(f"{key}={_field(value)}" for key, value in fields.items())
        self.logger.info(text, extra={"fields": fields})
