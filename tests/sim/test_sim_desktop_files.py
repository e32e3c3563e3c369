"""The simulator's desktop files: headers, gzip variants, conditional GETs, replacement,
the redirects to the container page, and their counts in /sim/stats."""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import aiohttp
import pytest
from multidict import CIMultiDict

from tests.sim.conftest import SimClient
from webproxy.sim import FinesseSimulator
from webproxy.sim.desktop_files import read_static

CONTAINER = "/desktop/container/"


@dataclass(frozen=True)
class Expected:
    path: str
    resource: str
    content_type: str
    cache_control: str | None
    gzip: bool


SCRIPT = "application/javascript; charset=utf-8"
FILES = (
    Expected(CONTAINER, "desktop/container/index.html", "text/html; charset=utf-8", None, False),
    Expected("/desktop/scripts/desktop.js", "desktop/scripts/desktop.js", SCRIPT,
             "public, max-age=300", True),
    Expected("/desktop/scripts/finesse.js", "desktop/scripts/finesse.js", SCRIPT,
             "public, max-age=300", True),
    Expected("/desktop/css/desktop.css", "desktop/css/desktop.css", "text/css; charset=utf-8",
             "public, max-age=300", True),
    Expected("/desktop/images/logo.svg", "desktop/images/logo.svg", "image/svg+xml", None, False),
)  # fmt: skip
IDS = [file.path for file in FILES]
GZIPPED = [file for file in FILES if file.gzip]
PLAIN = [file for file in FILES if not file.gzip]


async def fetch(
    session: aiohttp.ClientSession, client: SimClient, path: str, **headers: str
) -> tuple[int, CIMultiDict[str], bytes]:
    """Status, headers and the bytes as sent (never decompressed) of one GET."""
    async with session.get(client.make_url(path), headers=headers) as response:
        return response.status, response.headers.copy(), await response.read()


@pytest.mark.parametrize("file", FILES, ids=IDS)
async def test_each_file_is_served_with_its_headers_and_no_credential(
    client: SimClient, raw_session: aiohttp.ClientSession, file: Expected
) -> None:
    status, headers, body = await fetch(raw_session, client, file.path)
    assert status == 200
    assert body == read_static(file.resource)
    assert headers["Content-Type"] == file.content_type
    assert headers.get("Cache-Control") == file.cache_control
    assert re.fullmatch(r'"[^"]+"', headers["ETag"]), "a strong ETag"
    assert parsedate_to_datetime(headers["Last-Modified"]).tzinfo is not None
    assert "Content-Encoding" not in headers


@pytest.mark.parametrize("file", GZIPPED, ids=[file.path for file in GZIPPED])
async def test_scripts_and_styles_have_a_gzip_variant_for_those_that_ask(
    client: SimClient, raw_session: aiohttp.ClientSession, file: Expected
) -> None:
    _, plain_headers, plain = await fetch(raw_session, client, file.path)
    status, headers, packed = await fetch(
        raw_session, client, file.path, **{"Accept-Encoding": "gzip, deflate"}
    )
    assert status == 200
    assert headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed) == plain == read_static(file.resource)
    assert headers["Vary"] == plain_headers["Vary"] == "Accept-Encoding"
    assert headers["ETag"] != plain_headers["ETag"]
    assert headers["Cache-Control"] == "public, max-age=300"
    _, identity_headers, identity = await fetch(
        raw_session, client, file.path, **{"Accept-Encoding": "identity"}
    )
    assert (identity, identity_headers["ETag"]) == (plain, plain_headers["ETag"])
    assert "Content-Encoding" not in identity_headers


@pytest.mark.parametrize("file", PLAIN, ids=[file.path for file in PLAIN])
async def test_the_page_and_the_logo_have_no_gzip_variant(
    client: SimClient, raw_session: aiohttp.ClientSession, file: Expected
) -> None:
    _, headers, body = await fetch(raw_session, client, file.path, **{"Accept-Encoding": "gzip"})
    assert body == read_static(file.resource)
    assert "Content-Encoding" not in headers
    assert "Vary" not in headers


@pytest.mark.parametrize("file", FILES, ids=IDS)
async def test_if_none_match_and_if_modified_since_get_304(
    client: SimClient, raw_session: aiohttp.ClientSession, file: Expected
) -> None:
    _, headers, _ = await fetch(raw_session, client, file.path)
    etag, modified = headers["ETag"], headers["Last-Modified"]
    status, by_tag, body = await fetch(raw_session, client, file.path, **{"If-None-Match": etag})
    assert (status, body, by_tag["ETag"]) == (304, b"", etag)
    status, by_date, body = await fetch(
        raw_session, client, file.path, **{"If-Modified-Since": modified}
    )
    assert (status, body, by_date["Last-Modified"]) == (304, b"", modified)
    other = await fetch(raw_session, client, file.path, **{"If-None-Match": '"not-this-one"'})
    assert other[0] == 200


async def test_a_replaced_file_gets_a_new_etag_and_later_last_modified(
    client: SimClient, raw_session: aiohttp.ClientSession
) -> None:
    path = "/desktop/scripts/desktop.js"
    _, before, _ = await fetch(raw_session, client, path)
    replaced = await client.put("/sim/files" + path, data=b"// a new desktop\n")
    assert replaced.status == 204
    status, after, body = await fetch(
        raw_session, client, path, **{"If-None-Match": before["ETag"]}
    )
    assert (status, body) == (200, b"// a new desktop\n")
    assert after["ETag"] != before["ETag"]
    later = parsedate_to_datetime(after["Last-Modified"])
    assert later > parsedate_to_datetime(before["Last-Modified"])
    status, _, _ = await fetch(
        raw_session, client, path, **{"If-Modified-Since": before["Last-Modified"]}
    )
    assert status == 200
    missing = await client.put("/sim/files/desktop/scripts/nothing.js", data=b"x")
    assert missing.status == 404


@pytest.mark.parametrize("path", ["/", "/desktop", "/desktop/", "/desktop/container"])
@pytest.mark.parametrize("query", ["", "?nocache", "?bypassServerCache=true&nocache", "?a=1&b=%20"])
async def test_desktop_entry_points_redirect_to_the_container_keeping_the_query(
    client: SimClient, path: str, query: str
) -> None:
    response = await client.get(path + query, allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == CONTAINER + query


async def test_the_page_loads_only_files_the_simulator_serves(
    client: SimClient, raw_session: aiohttp.ClientSession
) -> None:
    _, _, page = await fetch(raw_session, client, CONTAINER)
    linked = re.findall(r'(?:src|href)="([^"]+)"', page.decode())
    local = [link for link in linked if not link.startswith("data:")]
    assert sorted(local) == sorted(file.path for file in FILES if file.path != CONTAINER)
    for link in local:
        assert (await fetch(raw_session, client, link))[0] == 200


async def test_desktop_requests_are_counted_in_sim_stats(
    client: SimClient, raw_session: aiohttp.ClientSession, sim: FinesseSimulator
) -> None:
    await fetch(raw_session, client, "/desktop?nocache")  # and the redirect it gets
    await fetch(raw_session, client, CONTAINER + "?nocache=1")
    await fetch(raw_session, client, CONTAINER)
    await fetch(raw_session, client, "/desktop/css/desktop.css", **{"Accept-Encoding": "gzip"})
    await client.put("/sim/files/desktop/css/desktop.css", data=b"body {}")
    stats = await (await client.get("/sim/stats")).json()
    assert stats["requests"] == {
        "GET /desktop": 1,
        "GET /desktop/container/": 3,
        "GET /desktop/css/desktop.css": 1,
    }
    assert stats["total"] == 5
    assert sim.stats() == stats["requests"]
