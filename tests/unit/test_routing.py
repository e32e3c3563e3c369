"""The model of how Finesse (Tomcat) reads a request target."""

from __future__ import annotations

import pytest

from webproxy.cache.routing import java_int, read_path

CODES = "/finesse/api/TeamResource/5000/ReasonCodes"


@pytest.mark.parametrize(
    ("raw", "reading"),
    [
        ("/", "/"),
        ("/finesse/api/ChatConfig", "/finesse/api/ChatConfig"),
        (
            "/finesse/api/TeamResource/5000/ReasonCodes",
            "/finesse/api/TeamResource/5000/ReasonCodes",
        ),
        ("/finesse/api/.well-known", "/finesse/api/.well-known"),
        ("/finesse/api/a..b", "/finesse/api/a..b"),
        ("/finesse/api/x=1,y+z~!$&'()*@:", "/finesse/api/x=1,y+z~!$&'()*@:"),
        ("/http-bind/", "/http-bind/"),
        ("/finesse//api/ChatConfig", "/finesse/api/ChatConfig"),
        ("//finesse/api/ChatConfig", "/finesse/api/ChatConfig"),
        ("/finesse/api/ChatConfig//", "/finesse/api/ChatConfig/"),
        ("/finesse/./api/ChatConfig", "/finesse/api/ChatConfig"),
        ("/finesse/api/x/../ChatConfig", "/finesse/api/ChatConfig"),
        ("/finesse/api/ChatConfig/.", "/finesse/api/ChatConfig/"),
        ("/finesse/api/ChatConfig/..", "/finesse/api/"),
        ("/finesse/api/%43hatConfig", "/finesse/api/ChatConfig"),
        ("/finesse/api/x/%2e%2e/ChatConfig", "/finesse/api/ChatConfig"),
        ("/finesse/api/ChatConfig;jsessionid=ABC", "/finesse/api/ChatConfig"),
        ("/finesse;a=1/api;b/ChatConfig;c=%2F", "/finesse/api/ChatConfig"),
        ("/finesse/api/x/..;x/ChatConfig", "/finesse/api/ChatConfig"),
        ("/finesse/api/Chat%3BConfig", "/finesse/api/Chat;Config"),
    ],
    ids=repr,
)
def test_read_path_reads_as_tomcat_does(raw: str, reading: str) -> None:
    assert read_path(raw) == reading


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "finesse/api/ChatConfig",
        "/..",
        "/finesse/../../api",
        "/finesse/api/ChatConfig%2F",
        "/finesse/api%2fChatConfig",
        "/finesse/api%5CChatConfig",
        "/finesse/api\\ChatConfig",
        "/finesse/api/Chat Config",
        "/finesse/api/Chat%20Config",
        "/finesse/api/ChatConfig\t",
        "/finesse/api/ChatConfig\n",
        "/finesse/api/ChatConfig%0a",
        "/finesse/api/ChatConfig\x00",
        "/finesse/api/ChatConfig\x7f",
        "/finesse/api/Chätconfig",
        "/finesse/api/Ch%C3%A4tconfig",
        "/finesse/api/ChatConfig\uff0f",
        "/finesse/api/%2543hatConfig",
        "/finesse/api/%zzChatConfig",
        "/finesse/api/ChatConfig%",
    ],
    ids=repr,
)
def test_read_path_refuses_what_it_cannot_read_with_certainty(raw: str) -> None:
    assert read_path(raw) is None


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1),
        ("01", 1),
        ("+1", 1),
        ("+01", 1),
        ("-1", -1),
        ("0", 0),
        ("-0", 0),
        ("2147483647", 2**31 - 1),
        ("-2147483648", -(2**31)),
        ("2147483648", None),
        ("", None),
        ("+", None),
        ("1.0", None),
        ("1e3", None),
        (" 1", None),
        ("1_000", None),
        ("٣", None),
        ("0x10", None),
    ],
    ids=repr,
)
def test_java_int_is_integer_parse_int(text: str, value: int | None) -> None:
    assert java_int(text) == value
