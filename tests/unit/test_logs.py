"""Log lines are written by the proxy alone: client text is escaped, tracebacks indented."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator

import pytest

from webproxy.access import _field
from webproxy.config import LogSettings
from webproxy.logs import (
    ACCESS_LEVELS,
    CONTINUATION,
    SEVERITIES,
    JsonFormatter,
    LogLevels,
    SharedLogLevels,
    TextFormatter,
    Throttle,
    apply_levels,
    go_live,
    live_levels,
    printable,
)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("/finesse/api/User/1", "/finesse/api/User/1"),
        ("a\r\nb", "a\\x0d\\x0ab"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("tab\there", "tab\\x09here"),
        ("c1 \x9b csi", "c1 \\x9b csi"),
        ("back\\slash", "back\\\\slash"),
        ("café", "café"),
        ("a\u2028ERROR forged", "a\\u2028ERROR forged"),
        ("\u202egnp.exe", "\\u202egnp.exe"),
    ],
    ids=["plain", "crlf", "escape", "tab", "c1", "backslash", "unicode", "line-sep", "bidi"],
)
def test_printable_escapes_every_control_character(text: str, shown: str) -> None:
    assert printable(text) == shown


def record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("bad\nFAKE LINE")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("webproxy.test", logging.WARNING, __file__, 1, message, args, exc_info)


def test_a_text_line_holds_one_record_whatever_the_client_sent() -> None:
    line = TextFormatter("%(levelname)s %(message)s").format(record("path %s", "/a\r\nINFO x"))
    assert line == "WARNING path /a\\x0d\\x0aINFO x"


def test_a_traceback_never_starts_a_line_of_its_own() -> None:
    text = TextFormatter("%(levelname)s %(message)s").format(record("oops", exc=True))
    first, *rest = text.split("\n")
    assert first == "WARNING oops"
    assert rest and all(line.startswith(CONTINUATION) for line in rest)


def test_a_json_line_is_escaped_ascii() -> None:
    line = JsonFormatter().format(record("path %s", "/a\r\n\x1b[31m é"))
    assert "\n" not in line and "\x1b" not in line and line.isascii()
    assert json.loads(line)["message"] == "path /a\\x0d\\x0a\\x1b[31m é"


def test_a_throttled_warning_is_logged_once_per_interval_and_counts_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    throttle = Throttle(10.0, clock=lambda: now[0])
    logger = logging.getLogger("webproxy.test")
    for _ in range(1000):
        throttle.warning(logger, "store unavailable: %s", "down")
    now[0] = 10.0
    throttle.warning(logger, "store unavailable: %s", "down")
    throttle.warning(logger, "another message")
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "store unavailable: down",
        "store unavailable: down (999 more like it left out)",
        "another message",
    ]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("curl/8.5", "curl/8.5"),
        ("x status=200 cache=hit", '"x status=200 cache=hit"'),
        ('say "hi"', '"say \\"hi\\""'),
    ],
)
def test_an_access_line_value_a_client_chose_cannot_pass_for_more_fields(
    value: str, shown: str
) -> None:
    assert _field(value) == shown


def test_a_json_line_says_which_process_wrote_it() -> None:
    assert json.loads(JsonFormatter().format(record("hello")))["pid"] == os.getpid()


EVERY_LEVELS = [
    LogLevels(access, severity)
    for access in (None, *ACCESS_LEVELS)
    for severity in (None, *SEVERITIES)
]


@pytest.mark.parametrize("levels", EVERY_LEVELS, ids=str)
def test_live_levels_fit_in_16_bits_and_read_back_as_they_were_set(levels: LogLevels) -> None:
    bits = levels.encode()
    assert 0 <= bits < 1 << 16
    assert LogLevels.decode(bits) == levels


@pytest.mark.parametrize(
    ("live", "shown"),
    [
        (LogLevels(), ("off", "warning")),
        (LogLevels(access="debug"), ("debug", "warning")),
        (LogLevels(severity="emerg"), ("off", "emerg")),
        (LogLevels("info", "crit"), ("info", "crit")),
    ],
    ids=["none-set", "access-set", "severity-set", "both-set"],
)
def test_live_levels_lie_over_the_configuration(live: LogLevels, shown: tuple[str, str]) -> None:
    assert live.over(LogSettings(level="warning", access="off")) == shown


def test_an_update_changes_only_what_it_sets() -> None:
    levels = LogLevels("debug", "error")
    assert levels.updated(LogLevels(severity="warn")) == LogLevels("debug", "warn")
    assert levels.updated(LogLevels(access="off")) == LogLevels("off", "error")
    assert levels.updated(LogLevels()) == levels


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """Put the process's logging back as it was (these tests change it, as a PUT would)."""
    root, access = logging.getLogger(), logging.getLogger("webproxy.access")
    saved = (root.level, access.level, access.disabled, live_levels.current)
    yield
    root.setLevel(saved[0])
    access.setLevel(saved[1])
    access.disabled = saved[2]
    live_levels.current = saved[3]


@pytest.mark.parametrize(
    ("severity", "level"),
    [
        ("debug", logging.DEBUG),
        ("info", logging.INFO),
        ("warn", logging.WARNING),
        ("error", logging.ERROR),
        ("crit", logging.CRITICAL),
        ("alert", logging.CRITICAL),
        ("emerg", logging.CRITICAL),
    ],
)
@pytest.mark.usefixtures("restored_logging")
def test_each_finesse_severity_sets_the_logging_level_it_stands_for(
    severity: str, level: int
) -> None:
    go_live(LogLevels(severity=severity), LogSettings(level="info"))
    assert logging.getLogger().level == level


@pytest.mark.parametrize(
    ("access", "disabled", "level"),
    [("off", True, logging.INFO), ("info", False, logging.INFO), ("debug", False, logging.DEBUG)],
)
@pytest.mark.usefixtures("restored_logging")
def test_each_access_level_sets_the_access_logger(access: str, disabled: bool, level: int) -> None:
    go_live(LogLevels(access=access), LogSettings(access="info" if disabled else "off"))
    logger = logging.getLogger("webproxy.access")
    assert (logger.disabled, logger.level) == (disabled, level)


@pytest.mark.usefixtures("restored_logging")
def test_a_reconfiguration_keeps_the_live_levels_over_the_new_settings() -> None:
    go_live(LogLevels(access="debug", severity="error"), LogSettings())
    apply_levels(LogSettings(level="debug", access="off"))  # what a reload does
    access = logging.getLogger("webproxy.access")
    assert (logging.getLogger().level, access.disabled, access.level) == (
        logging.ERROR,
        False,
        logging.DEBUG,
    )


@pytest.mark.usefixtures("restored_logging")
def test_shared_levels_count_versions_and_say_which_workers_are_behind() -> None:
    shared = SharedLogLevels(3)
    assert shared.read() == (0, LogLevels())
    first = shared.update(LogLevels(access="info"))
    second = shared.update(LogLevels(severity="crit"))
    assert (first, second) == (1, 2)
    assert shared.read() == (2, LogLevels("info", "crit"))
    assert shared.behind(second) == [0, 1, 2]
    shared.follow(1, LogSettings())
    assert shared.behind(second) == [0, 2]
    assert shared.behind(first) == [0, 2]
    shared.follow(None, LogSettings())  # the supervisor follows, and has no place to say so
    assert shared.behind(second) == [0, 2]
    assert logging.getLogger().level == logging.CRITICAL
