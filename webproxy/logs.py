"""Logging set-up: one logger per subsystem under `webproxy`, text or JSON lines.

A log line can't be written by a client: control characters in a message (CR, LF, ESC,
C1 controls...) are escaped as `\\xNN`, so a request path can neither start a line of
its own nor send a terminal escape. In text lines, a traceback's lines are indented, so
no line it holds starts where a record does; JSON lines are escaped ASCII.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
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
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=True, default=str)


def configure_logging(settings: LogSettings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if settings.format == "json" else TextFormatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level.upper())
    # aiohttp warns of every WebSocket handshake whose protocols don't overlap, in words the
    # client chose: a client could fill the log with them
    logging.getLogger("aiohttp.websocket").setLevel(logging.ERROR)
    access = logging.getLogger("webproxy.access")
    access.setLevel(logging.DEBUG if settings.access == "debug" else logging.INFO)
    access.disabled = settings.access == "off"
