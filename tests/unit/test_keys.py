"""Cache keys: the query minus ignored parameters, Accept/Range, Vary."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from multidict import CIMultiDict

from webproxy.cache.keys import (
    HeaderValues,
    build_key,
    canonical_query,
    select_headers,
    vary_matches,
    wants_bypass,
)

PATH = "/finesse/api/TeamResource/5000/ReasonCodes"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ""),
        ("category=ALL", "category=ALL"),
        ("category=ALL&nocache=1665676621185", "category=ALL"),
        ("nocache=1&category=ALL&bypassServerCache=true", "category=ALL"),
        ("nocache", ""),
        ("nocache=&bypassServerCache", ""),
        ("b=2&a=1", "a=1&b=2"),
        ("x=2&a=1&x=1", "a=1&x=2&x=1"),
        ("a=1&&b=2&", "a=1&b=2"),
        ("NoCache=1", "NoCache=1"),
        ("bypassservercache=true", "bypassservercache=true"),
        ("no%63ache=1", "no%63ache=1"),
        ("a=%41", "a=%41"),
        ("a=A+B", "a=A+B"),
    ],
    ids=[
        "empty",
        "kept",
        "nocache-dropped",
        "both-dropped",
        "bare-nocache",
        "blank-values-dropped",
        "sorted-by-name",
        "repeated-name-keeps-its-order",
        "empty-pairs-dropped",
        "ignored-names-are-case-sensitive",
        "bypass-name-case-sensitive",
        "encoded-name-not-decoded",
        "values-not-decoded",
        "plus-kept",
    ],
)
def test_canonical_query(query: str, expected: str) -> None:
    assert canonical_query(query) == expected


@pytest.mark.parametrize(
    ("query_a", "headers_a", "query_b", "headers_b"),
    [
        ("category=ALL", {}, "category=ALL&nocache=1", {}),
        ("category=ALL&nocache=1", {}, "nocache=2&category=ALL", {}),
        ("category=ALL", {}, "category=ALL&bypassServerCache=true", {}),
        ("a=1&b=2", {}, "b=2&a=1", {}),
        ("", {"Accept": "application/xml"}, "", {"accept": "application/xml"}),
        ("", {"Range": "objects=1-6000"}, "", {"RANGE": "objects=1-6000"}),
        ("", {"Accept": "a"}, "", {"Accept": "a", "User-Agent": "x", "Cookie": "y"}),
        ("", {}, "", {"Authorization": "Basic eDp5", "X-Forwarded-For": "10.0.0.1"}),
    ],
    ids=[
        "nocache",
        "nocache-and-order",
        "bypass-param",
        "param-order",
        "header-name-case",
        "range-name-case",
        "unkeyed-headers",
        "credentials-not-in-key",
    ],
)
def test_same_key(
    query_a: str,
    headers_a: Mapping[str, str],
    query_b: str,
    headers_b: Mapping[str, str],
) -> None:
    assert build_key(PATH, query_a, headers_a) == build_key(PATH, query_b, headers_b)


def _multi(*pairs: tuple[str, str]) -> Mapping[str, str]:
    return CIMultiDict(pairs)


@pytest.mark.parametrize(
    ("query_a", "headers_a", "query_b", "headers_b"),
    [
        ("category=ALL", {}, "category=LOGOUT", {}),
        ("category=ALL", {}, "", {}),
        ("x=1&x=2", {}, "x=2&x=1", {}),
        ("a=%41", {}, "a=A", {}),
        ("", {"Accept": "application/xml"}, "", {"Accept": "application/json"}),
        ("", {}, "", {"Accept": "application/xml"}),
        ("", {}, "", {"Accept": ""}),
        ("", {"Range": "objects=1-6000"}, "", {"Range": "objects=1-10"}),
        ("", {}, "", {"Range": "objects=1-6000"}),
        ("", {"Accept": "a", "Range": ""}, "", {"Accept": "a\nrange: "}),
        ("", {"Accept": 'a"],["b'}, "", {"Accept": "a", "Range": "b"}),
        ("", {"Accept": 'a","b'}, "", {}),
        ("", {"Accept": "x"}, "", {"Range": "x"}),
        ("q=1", {}, "", {"Accept": "?q=1"}),
        ("", _multi(("Accept", "a"), ("Accept", "b")), "", {"Accept": "a"}),
        ("", _multi(("Accept", "a"), ("Accept", "b")), "", {"Accept": "a, b"}),
        (
            "",
            _multi(("Accept", "a"), ("Accept", "b")),
            "",
            _multi(("Accept", "b"), ("Accept", "a")),
        ),
        (
            "",
            _multi(("Range", "objects=1-2"), ("Range", "objects=1-9")),
            "",
            {"Range": "objects=1-2"},
        ),
    ],
    ids=[
        "query-value",
        "query-present",
        "repeated-param-order",
        "encoding-not-conflated",
        "accept-value",
        "accept-present",
        "accept-absent-vs-empty",
        "range-value",
        "range-present",
        "newline-injection",
        "json-injection-into-range",
        "json-injection-into-accept",
        "accept-vs-range",
        "query-vs-header",
        "repeated-accept",
        "repeated-accept-vs-joined",
        "repeated-accept-order",
        "repeated-range",
    ],
)
def test_different_key(
    query_a: str,
    headers_a: Mapping[str, str],
    query_b: str,
    headers_b: Mapping[str, str],
) -> None:
    assert build_key(PATH, query_a, headers_a) != build_key(PATH, query_b, headers_b)


def test_paths_give_different_keys() -> None:
    other = "/finesse/api/TeamResource/5001/ReasonCodes"
    assert build_key(PATH, "", {}) != build_key(other, "", {})


@pytest.mark.parametrize(
    "headers",
    [{"Accept": "\udcff\x00é"}, {"Range": "\u2028"}],
    ids=["surrogate-and-nul", "unicode-separator"],
)
def test_key_is_ascii_whatever_the_client_sent(headers: Mapping[str, str]) -> None:
    assert build_key(PATH, "", headers).isascii()


@pytest.mark.parametrize(
    ("headers", "names", "expected"),
    [
        ({}, ["Accept-Encoding"], (("accept-encoding", ()),)),
        ({"accept-encoding": "gzip"}, ["Accept-Encoding"], (("accept-encoding", ("gzip",)),)),
        ({"Origin": ""}, ["origin"], (("origin", ("",)),)),
        (
            _multi(("Origin", "a"), ("X", "y"), ("origin", "b")),
            ["origin", "accept-language"],
            (("origin", ("a", "b")), ("accept-language", ())),
        ),
    ],
    ids=["absent", "case-insensitive", "empty-is-not-absent", "repeated-and-ordered"],
)
def test_select_headers(
    headers: Mapping[str, str], names: list[str], expected: HeaderValues
) -> None:
    assert select_headers(headers, names) == expected


STORED: HeaderValues = (("accept-encoding", ("gzip",)), ("origin", ()))


@pytest.mark.parametrize(
    ("stored", "headers", "matches"),
    [
        ((), {"Anything": "x"}, True),
        (STORED, {"Accept-Encoding": "gzip"}, True),
        (STORED, {"accept-encoding": "gzip", "Cookie": "x"}, True),
        (STORED, {"Accept-Encoding": "br"}, False),
        (STORED, {}, False),
        (STORED, {"Accept-Encoding": "gzip", "Origin": "https://x"}, False),
        (STORED, _multi(("Accept-Encoding", "gzip"), ("Accept-Encoding", "br")), False),
    ],
    ids=["no-vary", "same", "other-headers-ignored", "other-value", "missing", "extra", "repeated"],
)
def test_vary_matches(stored: HeaderValues, headers: Mapping[str, str], matches: bool) -> None:
    assert vary_matches(stored, headers) is matches


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("bypassServerCache=true", True),
        ("bypassServerCache=TRUE", True),
        ("nocache=1&bypassServerCache=True", True),
        ("bypassServerCache=false", False),
        ("bypassServerCache", False),
        ("bypassServerCache=", False),
        ("bypassServerCache=true1", False),
        ("bypassservercache=true", False),
        ("xbypassServerCache=true", False),
        ("nocache", False),
        ("", False),
    ],
    ids=[
        "true",
        "upper-case-value",
        "among-others",
        "false",
        "bare",
        "blank",
        "not-exactly-true",
        "name-case-sensitive",
        "longer-name",
        "other-param",
        "empty",
    ],
)
def test_wants_bypass(query: str, expected: bool) -> None:
    assert wants_bypass(query) is expected
