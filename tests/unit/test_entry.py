"""The entry codec: round trips, raw binary bodies, and malformed input refused."""

from __future__ import annotations

import json
import struct

import pytest

from webproxy.cache.entry import FORMAT_VERSION, CachedResponse, decode_entry, encode_entry
from webproxy.cache.rules import Resource, Scope

XML = b"<ReasonCodes><ReasonCode><label>Lunch</label></ReasonCode></ReasonCodes>"
TEAM = Scope(Resource.TEAM_RESOURCE, "5000")

ENTRIES = [
    CachedResponse(200, (("Content-Type", "application/xml"),), XML, 1700000000.25, 300.0, TEAM),
    CachedResponse(200, (), b"", 0.0, 0.0, Scope(Resource.CHAT_CONFIG)),
    CachedResponse(
        206, (("Content-Range", "objects 1-6000/7000"),), bytes(range(256)) * 4, 1.0, 60, TEAM
    ),
    CachedResponse(
        200,
        (("X-A", "1"), ("x-a", "2"), ("X-Odd", '\udcff é "quoted"\n')),
        b"\x00\xff\r\n",
        5.5,
        10.0,
        Scope(Resource.MEDIA_DOMAIN),
        (("accept-encoding", ("gzip",)), ("origin", ()), ("x", ("", "b"))),
    ),
]


@pytest.mark.parametrize(
    "entry", ENTRIES, ids=["xml", "empty", "binary-206", "odd-headers-and-vary"]
)
def test_roundtrip(entry: CachedResponse) -> None:
    data = encode_entry(entry)
    assert data[0] == FORMAT_VERSION
    assert decode_entry(data) == entry


def test_body_is_stored_raw_not_base64() -> None:
    body = bytes(range(256)) * 64
    data = encode_entry(CachedResponse(200, (), body, 1.0, 1.0, TEAM))
    assert data.endswith(body)
    assert len(data) < len(body) + 200


def test_footprint_grows_with_every_part_an_entry_holds() -> None:
    bare = CachedResponse(200, (), b"", 1.0, 1.0, TEAM)
    body = CachedResponse(200, (), b"x" * 1000, 1.0, 1.0, TEAM)
    headers = CachedResponse(200, (("X-" + "h" * 500, "v" * 500),), b"", 1.0, 1.0, TEAM)
    vary = CachedResponse(200, (), b"", 1.0, 1.0, TEAM, vary=(("x-a", ("v" * 700,)),))
    assert body.footprint >= bare.footprint + 990  # 1,000 bytes less an empty body's
    assert headers.footprint >= bare.footprint + 1000
    assert vary.footprint >= bare.footprint + 700
    assert bare.footprint % 16 == 0


def _frame(meta: object, body: bytes = b"", version: int = FORMAT_VERSION) -> bytes:
    encoded = json.dumps(meta).encode()
    return struct.pack(">BI", version, len(encoded)) + encoded + body


GOOD = {
    "status": 200,
    "headers": [["A", "b"]],
    "stored_at": 1.0,
    "ttl": 2.0,
    "scope": ["TeamResource", "5000"],
    "vary": [],
}


def _with(**changes: object) -> dict[str, object]:
    return {**GOOD, **changes}


def test_the_test_frame_is_valid() -> None:
    assert decode_entry(_frame(GOOD, b"body")).body == b"body"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x01",
        b"\x01\x00\x00",
        _frame(GOOD, version=2),
        _frame(GOOD, version=0),
        _frame(GOOD)[:-3],
        struct.pack(">BI", 1, 2**32 - 1) + b"{}",
        struct.pack(">BI", 1, 3) + b"{x}",
        struct.pack(">BI", 1, 2) + b"\xff\xfe",
        struct.pack(">BI", 1, 20001) + b"[" * 20000 + b"1",
        _frame([]),
        _frame({}),
        _frame({**GOOD, "extra": 1}),
        _frame({k: v for k, v in GOOD.items() if k != "vary"}),
        _frame(_with(status="200")),
        _frame(_with(status=True)),
        _frame(_with(status=99)),
        _frame(_with(status=600)),
        _frame(_with(status=200.0)),
        _frame(_with(headers={"A": "b"})),
        _frame(_with(headers=[["A"]])),
        _frame(_with(headers=[["A", 1]])),
        _frame(_with(headers=[["A", "b", "c"]])),
        _frame(_with(stored_at="1")),
        _frame(_with(stored_at=None)),
        _frame(_with(stored_at=False)),
        _frame(_with(ttl=-1)),
        struct.pack(">BI", 1, 10) + b'{"ttl":NaN',
        _frame(_with(scope=["Nope", None])),
        _frame(_with(scope=["TeamResource", None])),
        _frame(_with(scope=["ChatConfig", "5000"])),
        _frame(_with(scope=["TeamResource", 5000])),
        _frame(_with(scope=["TeamResource", "a b"])),
        _frame(_with(scope="ChatConfig")),
        _frame(_with(vary=[["origin", "x"]])),
        _frame(_with(vary=[["origin", [1]]])),
        _frame(_with(vary={"origin": []})),
    ],
    ids=[
        "empty",
        "version-only",
        "short-prefix",
        "newer-version",
        "version-zero",
        "truncated-metadata",
        "length-past-end",
        "not-json",
        "not-utf8",
        "deeply-nested",
        "not-an-object",
        "no-fields",
        "extra-field",
        "missing-field",
        "status-string",
        "status-bool",
        "status-too-small",
        "status-too-large",
        "status-float",
        "headers-object",
        "header-without-value",
        "header-value-not-string",
        "header-triple",
        "stored-at-string",
        "stored-at-null",
        "stored-at-bool",
        "negative-ttl",
        "nan",
        "unknown-resource",
        "team-resource-without-team",
        "global-with-team",
        "team-not-string",
        "invalid-team",
        "scope-not-pair",
        "vary-values-not-list",
        "vary-value-not-string",
        "vary-object",
    ],
)
def test_malformed_input_raises_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        decode_entry(data)


def test_infinite_seconds_are_refused() -> None:
    meta = json.dumps(_with(ttl=float("inf"))).encode()
    with pytest.raises(ValueError):
        decode_entry(struct.pack(">BI", 1, len(meta)) + meta)
