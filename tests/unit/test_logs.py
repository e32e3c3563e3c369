"""Log lines are written by the proxy alone: client text is escaped, tracebacks indented."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from webproxy.access import _field
from webproxy.logs import CONTINUATION, JsonFormatter, TextFormatter, Throttle, printable


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
