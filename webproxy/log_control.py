"""`GET /admin/log` and `PUT /admin/log`: the access-log level and log severity, live.

As Finesse's `set webproxy access-log-level off|info|debug` and `set webproxy log-severity
debug|warn|error|crit|alert|emerg` (plus `info`, and the config's `warning`, `critical`),
but with no restart: `PUT /admin/log` takes `{"access_log_level": ..., "log_severity":
...}` (either or both), puts them in force and answers the levels now in force, as
`GET /admin/log` does (open, as `GET /admin/cache` is; a `PUT` needs the admin token, as
clearing does). A body that is not a small JSON object of known keys and values is refused
with 400 and changes nothing.

Every worker: with `--workers N`, whichever worker answers the `PUT` writes the levels to
the group's `SharedLogLevels` (shared memory), follows them itself and signals the
supervisor (SIGUSR1), which signals every worker, each of which reads the shared levels
and records the version it follows. The `PUT` is answered once every worker follows the
new levels (or after `FOLLOW_TIMEOUT`: a worker being restarted reads them as it starts).
A signal, not a per-request check: nothing is added to the request path.

A live level lasts until the proxy (the supervisor, with workers) stops, as Finesse's
`set` persists: a reload (SIGHUP, `POST /admin/reload`) takes on the file's other changes
but puts the live levels back over its `[log] level` and `[log] access`; a worker that is
restarted takes them on too. The file's values count again after a restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from typing import Final

from aiohttp import web

from webproxy.admin import _refuse_unauthorised
from webproxy.appkeys import services_key
from webproxy.logs import (
    ACCESS_LEVELS,
    SEVERITIES,
    LogLevels,
    SharedLogLevels,
    go_live,
    live_levels,
)

log = logging.getLogger("webproxy.admin")

BODY_LIMIT: Final = 1024
FOLLOW_TIMEOUT: Final = 2.0
FOLLOW_POLL: Final = 0.005
ACCESS_KEY: Final = "access_log_level"
SEVERITY_KEY: Final = "log_severity"


async def show_log(request: web.Request) -> web.Response:
    """`GET /admin/log`: the access-log level and the severity in force."""
    return web.json_response(_in_force(request.app))


async def set_log(request: web.Request) -> web.Response:
    """`PUT /admin/log`: set either level or both, in every worker; the levels now in force."""
    refused = _refuse_unauthorised(request)
    if refused is not None:
        return refused
    try:
        change = parse_change(await _small_body(request))
    except ValueError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    log.info("log levels set live: %s", _described(change))
    app = request.app
    settings = app[services_key].settings.log
    worker = app[services_key].worker
    shared = worker.log_levels if worker is not None else None
    if worker is None or shared is None:
        go_live(live_levels.current.updated(change), settings)
        return web.json_response(_in_force(app))
    version = shared.update(change)
    shared.follow(worker.index, settings)
    os.kill(shared.supervisor, signal.SIGUSR1)  # it passes the news on to every worker
    behind = await _followed(shared, version)
    if behind:
        log.warning(
            "workers %s do not follow the new log levels yet (each will as it starts)",
            ", ".join(map(str, behind)),
        )
    return web.json_response(_in_force(app))


async def _followed(shared: SharedLogLevels, version: int) -> list[int]:
    """Wait until every worker follows `version`, or `FOLLOW_TIMEOUT`; those still behind."""
    for _ in range(round(FOLLOW_TIMEOUT / FOLLOW_POLL)):
        if not shared.behind(version):
            return []
        await asyncio.sleep(FOLLOW_POLL)
    return shared.behind(version)


def parse_change(body: bytes) -> LogLevels:
    """The levels a `PUT /admin/log` body sets; ValueError, saying why, for anything else."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise ValueError("the body must be a JSON object") from None
    if not isinstance(document, dict):
        raise ValueError("the body must be a JSON object")
    if not document:
        raise ValueError(f"nothing to set: give {ACCESS_KEY}, {SEVERITY_KEY} or both")
    if set(document) - {ACCESS_KEY, SEVERITY_KEY}:
        raise ValueError(f"unknown key: the keys are {ACCESS_KEY} and {SEVERITY_KEY}")
    access, severity = document.get(ACCESS_KEY), document.get(SEVERITY_KEY)
    if ACCESS_KEY in document and access not in ACCESS_LEVELS:
        raise ValueError(f"{ACCESS_KEY} must be one of {', '.join(ACCESS_LEVELS)}")
    if SEVERITY_KEY in document and not (isinstance(severity, str) and severity in SEVERITIES):
        raise ValueError(f"{SEVERITY_KEY} must be one of {', '.join(SEVERITIES)}")
    return LogLevels(access, severity)


async def _small_body(request: web.Request) -> bytes:
    """The request body, if it is at most `BODY_LIMIT` bytes; ValueError otherwise."""
    if request.content_length is not None and request.content_length > BODY_LIMIT:
        raise ValueError(f"the body must be at most {BODY_LIMIT} bytes")
    body = b""
    while chunk := await request.content.read(BODY_LIMIT + 1 - len(body)):
        body += chunk
        if len(body) > BODY_LIMIT:
            raise ValueError(f"the body must be at most {BODY_LIMIT} bytes")
    return body


def _in_force(app: web.Application) -> dict[str, str]:
    worker = app[services_key].worker
    shared = worker.log_levels if worker is not None else None
    levels = live_levels.current if shared is None else shared.read()[1]
    access, severity = levels.over(app[services_key].settings.log)
    return {ACCESS_KEY: access, SEVERITY_KEY: severity}


def _described(change: LogLevels) -> str:
    """What a change sets (validated names only: nothing a client wrote as it sent it)."""
    named = ((ACCESS_KEY, change.access), (SEVERITY_KEY, change.severity))
    return ", ".join(f"{key}={value}" for key, value in named if value is not None)
