"""Logging set-up: one logger per subsystem under `webproxy`, text or JSON lines.

A log line can't be written by a client: control characters in a message (CR, LF, ESC,
C1 controls...) are escaped as `\\xNN`, so a request path can neither start a line of
its own nor send a terminal escape. In text lines, a traceback's lines are indented, so
no line it holds starts where a record does; JSON lines are escaped ASCII, and say which
process wrote them (`pid`: with `--workers N`, which worker).

Two levels can change while serving, as Finesse's `set webproxy access-log-level` and
`set webproxy log-severity` offer (`PUT /admin/log`, `webproxy set ...`): the access log's
(`[log] access`) and the severity of everything else (`[log] level`). What was set live
(`LogLevels`) lies over the configuration until the process stops: `configure_logging`,
which a reload calls, puts it back over whatever the file now says. A worker group keeps
its live levels in `SharedLogLevels`, made by the supervisor before it forks.
"""

from __future__ import annotations

import json
import logging
import mmap
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from webproxy.config import LogSettings

TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CONTINUATION: Final = "    | "

#: Line and paragraph separators, and the bidirectional controls that reorder what a
#: terminal shows: as dangerous in a log line as CR, LF and ESC.
_UNICODE_CONTROLS: Final = (
    0x061C, 0x200E, 0x200F, 0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A),
    0xFEFF,
)  # fmt: skip
_CONTROLS: Final = (
    {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}
    | {code: f"\\u{code:04x}" for code in _UNICODE_CONTROLS}
    | {ord("\\"): "\\\\"}
)


def printable(text: str) -> str:
    """`text` with every control character (and backslash) escaped: one inert line.
    Unicode separators and bidirectional controls become `\\uNNNN`."""
    return text.translate(_CONTROLS)


#: Query parameters whose values are shown; every other value is logged as `***`.
SHOWN_QUERY_VALUES: Final = frozenset(
    {"category", "nocache", "bypassServerCache", "includeLoggedOutAgents", "status"}
)


def loggable_target(raw_path: str) -> str:
    """The request target with unknown query values masked."""
    path, _, query = raw_path.partition("?")
    if not query:
        return path
    pairs = []
    for pair in query.split("&"):
        name, has_value, _ = pair.partition("=")
        shown = pair if name in SHOWN_QUERY_VALUES or not has_value else f"{name}=***"
        pairs.append(shown)
    return f"{path}?{'&'.join(pairs)}"


class Throttle:
    """At most one warning per `interval` seconds for each message: when Finesse or Redis
    is down, every request would otherwise log one (thousands a second). The next one
    logged says how many were left out."""

    def __init__(self, interval: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self._interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def warning(self, logger: logging.Logger, message: str, *args: object) -> None:
        now = self._clock()
        last = self._last.get(message)
        if last is not None and now - last < self._interval:
            self._skipped[message] = self._skipped.get(message, 0) + 1
            return
        self._last[message] = now
        skipped = self._skipped.pop(message, 0)
        if skipped:
            message += f" ({skipped} more like it left out)"
        logger.warning(message, *args)


#: The warnings a failing Finesse or store would otherwise give for every request.
throttled = Throttle()


class TextFormatter(logging.Formatter):
    """`TEXT_FORMAT` lines; the message escaped, any traceback indented below it."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = printable(record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        first, newline, rest = super().format(record).partition("\n")
        if not newline:
            return first
        lines = (CONTINUATION + printable(line) for line in rest.split("\n"))
        return "\n".join((first, *lines))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the exception, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": self.formatTime(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": printable(record.getMessage()),
            "pid": record.process,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=True, default=str)


#: The access log's levels, as `[log] access` and Finesse's `access-log-level` name them.
ACCESS_LEVELS: Final = ("off", "info", "debug")

#: Severity names and the logging level each stands for: Finesse's `log-severity` names
#: (syslog's: `crit`, `alert` and `emerg` are all CRITICAL), `info`, and `[log] level`'s
#: own `warning` and `critical`.
SEVERITIES: Final[Mapping[str, int]] = MappingProxyType(
    {
        "debug": logging.DEBUG,
        "info": logging.INFO,
        "warn": logging.WARNING,
        "warning": logging.WARNING,
        "error": logging.ERROR,
        "crit": logging.CRITICAL,
        "critical": logging.CRITICAL,
        "alert": logging.CRITICAL,
        "emerg": logging.CRITICAL,
    }
)
_SEVERITY_NAMES: Final = tuple(SEVERITIES)


@dataclass(frozen=True, slots=True)
class LogLevels:
    """Levels set live, over the configuration's; None leaves that one to `[log]`."""

    access: str | None = None  # one of ACCESS_LEVELS
    severity: str | None = None  # one of SEVERITIES, the name as it was set

    def over(self, settings: LogSettings) -> tuple[str, str]:
        """The access level and the severity in force: these, else the configuration's."""
        return self.access or settings.access, self.severity or settings.level

    def updated(self, change: LogLevels) -> LogLevels:
        """These levels with what `change` sets replaced."""
        return LogLevels(change.access or self.access, change.severity or self.severity)

    def encode(self) -> int:
        """16 bits: the access level's number and the severity's (0: not set)."""
        access = 0 if self.access is None else ACCESS_LEVELS.index(self.access) + 1
        severity = 0 if self.severity is None else _SEVERITY_NAMES.index(self.severity) + 1
        return access << 8 | severity

    @classmethod
    def decode(cls, bits: int) -> LogLevels:
        access, severity = bits >> 8 & 0xFF, bits & 0xFF
        return cls(
            ACCESS_LEVELS[access - 1] if access else None,
            _SEVERITY_NAMES[severity - 1] if severity else None,
        )


class LiveLevels:
    """This process's live levels. Logging is the process's, so they are too: one instance,
    `live_levels`, read by `apply_levels`."""

    def __init__(self) -> None:
        self.current = LogLevels()


live_levels = LiveLevels()


def configure_logging(settings: LogSettings) -> None:
    """One handler on stderr in the configured format; the levels (see `apply_levels`)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if settings.format == "json" else TextFormatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # aiohttp warns of every WebSocket handshake whose protocols don't overlap, in words the
    # client chose: a client could fill the log with them
    logging.getLogger("aiohttp.websocket").setLevel(logging.ERROR)
    apply_levels(settings)


def apply_levels(settings: LogSettings) -> None:
    """Put in force the live levels over `settings`: the root logger's severity, and the
    access logger's level (`off` disables it; `debug` adds fields to its lines)."""
    access, severity = live_levels.current.over(settings)
    logging.getLogger().setLevel(SEVERITIES[severity])
    logger = logging.getLogger("webproxy.access")
    logger.setLevel(logging.DEBUG if access == "debug" else logging.INFO)
    logger.disabled = access == "off"


def go_live(levels: LogLevels, settings: LogSettings) -> None:
    """Make `levels` this process's live levels and put them in force over `settings`."""
    live_levels.current = levels
    apply_levels(settings)


class SharedLogLevels:
    """A worker group's live levels, in memory shared across `fork` (made by the supervisor).

    One 64-bit word holds a version (bumped by each change) and the levels, so a reader
    needs no lock and never sees half a change; one more word per worker holds the version
    that worker has put in force (`follow`), so whoever changed the levels can wait until
    every worker has. A change takes a lock; each worker writes only its own word.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.supervisor = os.getpid()  # told of a change (SIGUSR1), it tells every worker
        self._map = mmap.mmap(-1, 8 * (1 + workers))  # anonymous and MAP_SHARED
        self._words = memoryview(self._map).cast("Q")
        self._lock = multiprocessing.get_context("fork").Lock()

    def read(self) -> tuple[int, LogLevels]:
        """The version and the levels now set."""
        word = self._words[0]
        return word >> 16, LogLevels.decode(word & 0xFFFF)

    def update(self, change: LogLevels) -> int:
        """Set what `change` sets (the rest as it was); the new version."""
        with self._lock:
            version, levels = self.read()
            self._words[0] = (version + 1) << 16 | levels.updated(change).encode()
        return version + 1

    def follow(self, index: int | None, settings: LogSettings) -> None:
        """Put the group's levels in force in this process, over `settings`; a worker (its
        `index`) records the version it now follows."""
        version, levels = self.read()
        go_live(levels, settings)
        if index is not None:
            self._words[1 + index] = version

    def behind(self, version: int) -> list[int]:
        """The workers (by index) not yet following `version`."""
        return [index for index in range(self.workers) if self._words[1 + index] < version]
