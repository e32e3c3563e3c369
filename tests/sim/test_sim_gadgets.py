"""The simulator's Shindig: third-party gadget files, ifr, feature JS, concat, makeRequest,
proxy; their caching headers, gzip variants, 304s, 404s and counts in /sim/stats."""

from __future__ import annotations

import gzip
import html
import json
import re
from collections.abc import Callable

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpClient

from tests.sim.conftest import SimClient
from webproxy.sim import FinesseSimulator
from webproxy.sim.data import SimData
from webproxy.sim.gadgets import SPEC_TTL, UNPARSEABLE, GadgetRoutes
from webproxy.sim.state import SimState
from webproxy.sim.static_files import StaticFiles

Auth = Callable[..., dict[str, str]]

HELLO = "/3rdpartygadget/files/HelloGadget"
SPEC = f"{HELLO}/HelloGadget.xml"
IDENTITY = {"Accept-Encoding": "identity"}
GZIP = {"Accept-Encoding": "gzip"}
NEW_SPEC = (
    '<Module><ModulePrefs title="Changed"><Require feature="pubsub"/></ModulePrefs>'
    '<Content type="html"><![CDATA[<p id="changed">new</p>]]></Content>'
    '<Content type="html" view="canvas"><![CDATA[<p id="big">canvas</p>]]></Content></Module>'
)


@pytest.fixture
async def raw(sim: FinesseSimulator, aiohttp_client: AiohttpClient) -> SimClient:
    """A client that leaves gzip bodies as they came."""
    return await aiohttp_client(sim.app, auto_decompress=False)


def sources(page: str) -> list[str]:
    """Every script src and link href of an HTML page, unescaped."""
    return [html.unescape(url) for url in re.findall(r'(?:src|href)="([^"]+)"', page)]


def title(page: str) -> str:
    found = re.search(r"<title>(.*?)</title>", page)
    assert found is not None
    return found[1]


def shindig_answer(text: str) -> dict[str, dict[str, object]]:
    assert text.startswith(UNPARSEABLE)
    answer: dict[str, dict[str, object]] = json.loads(text.removeprefix(UNPARSEABLE))
    return answer


async def ifr(client: SimClient, **params: str) -> str:
    response = await client.get("/gadgets/ifr", params={"url": SPEC, "mid": "0", **params})
    assert response.status == 200
    return await response.text()


async def requests(client: SimClient) -> dict[str, int]:
    counted: dict[str, int] = (await (await client.get("/sim/stats")).json())["requests"]
    return counted


# Third-party gadget files


async def test_third_party_files_are_served_with_validators_and_no_cache_control(
    raw: SimClient,
) -> None:
    for name, kind, needle in [
        ("HelloGadget.xml", "application/xml", b'<ModulePrefs title="Hello"'),
        ("hello.js", "text/javascript", b'getElementById("hello")'),
        ("hello.css", "text/css", b"#hello"),
    ]:
        response = await raw.get(f"{HELLO}/{name}", headers=IDENTITY)
        assert response.status == 200
        assert response.content_type == kind
        assert needle in await response.read()
        assert response.headers["ETag"].startswith('"')
        assert "Last-Modified" in response.headers
        assert response.headers["Vary"] == "Accept-Encoding"
        assert "Cache-Control" not in response.headers
        assert "Content-Encoding" not in response.headers


async def test_third_party_files_have_a_gzip_variant_with_its_own_etag(raw: SimClient) -> None:
    plain = await raw.get(f"{HELLO}/hello.js", headers=IDENTITY)
    packed = await raw.get(f"{HELLO}/hello.js", headers=GZIP)
    assert packed.headers["Content-Encoding"] == "gzip"
    assert packed.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(await packed.read()) == await plain.read()
    assert packed.headers["ETag"] != plain.headers["ETag"]
    assert "Cache-Control" not in packed.headers


async def test_third_party_files_answer_conditional_gets_with_304(raw: SimClient) -> None:
    for encoding in (IDENTITY, GZIP):
        first = await raw.get(f"{HELLO}/hello.css", headers=encoding)
        tag = first.headers["ETag"]
        again = await raw.get(f"{HELLO}/hello.css", headers={**encoding, "If-None-Match": tag})
        assert again.status == 304
        assert again.headers["ETag"] == tag
        assert await again.read() == b""
        since = {**encoding, "If-Modified-Since": first.headers["Last-Modified"]}
        assert (await raw.get(f"{HELLO}/hello.css", headers=since)).status == 304
    other = {**IDENTITY, "If-None-Match": '"not-this-one"'}
    assert (await raw.get(f"{HELLO}/hello.css", headers=other)).status == 200


async def test_a_replaced_gadget_file_gets_new_bytes_and_a_new_etag(raw: SimClient) -> None:
    before = await raw.get(f"{HELLO}/hello.js", headers=IDENTITY)
    assert (await raw.put(f"/sim/files{HELLO}/hello.js", data=b"/* v2 */")).status == 204
    tag = before.headers["ETag"]
    after = await raw.get(f"{HELLO}/hello.js", headers={**IDENTITY, "If-None-Match": tag})
    assert after.status == 200
    assert await after.read() == b"/* v2 */"
    assert after.headers["ETag"] != tag


async def test_unknown_gadget_files_are_404(raw: SimClient) -> None:
    assert (await raw.get(f"{HELLO}/missing.js")).status == 404


# /gadgets/ifr


async def test_ifr_renders_the_spec_with_public_caching(client: SimClient) -> None:
    response = await client.get("/gadgets/ifr", params={"url": SPEC, "mid": "3", "lang": "en"})
    page = await response.text()
    assert response.status == 200
    assert response.content_type == "text/html"
    assert response.headers["Cache-Control"] == "public, max-age=3600"
    assert title(page) == "Hello"
    assert '<div id="hello">Loading...</div>' in page
    js, css, script = sources(page)
    assert re.fullmatch(r"/gadgets/js/core:rpc\.js\?v=[0-9a-f]{32}&c=1", js)
    assert css.startswith(f"/gadgets/concat?rewriteMime=text/css&gadget={SPEC}&fp=")
    assert css.endswith(f"&1={HELLO}/hello.css")
    assert script.startswith(f"/gadgets/concat?rewriteMime=text/javascript&gadget={SPEC}&fp=")
    assert script.endswith(f"&1={HELLO}/hello.js")


async def test_ifr_resources_load_the_features_and_the_gadget_files(client: SimClient) -> None:
    js, css, script = sources(await ifr(client))
    features = await client.get(js)
    assert features.status == 200
    assert features.headers["Cache-Control"] == "public, max-age=31536000"
    assert "gadgets.rpc" in await features.text()
    styles = await client.get(css)
    assert styles.content_type == "text/css"
    assert "#hello" in await styles.text()
    code = await client.get(script)
    assert code.content_type == "text/javascript"
    assert 'hello.textContent = "Hello from HelloGadget"' in await code.text()


async def test_ifr_takes_the_path_of_an_absolute_spec_url(client: SimClient) -> None:
    absolute = f"https://finesse.example.com:8445{SPEC}"
    page = await ifr(client, url=absolute)
    assert title(page) == "Hello"
    _, css, script = sources(page)
    assert f"&1=https://finesse.example.com:8445{HELLO}/hello.css" in css
    code = await client.get(script)
    assert code.status == 200
    assert "Hello from HelloGadget" in await code.text()


async def test_ifr_refresh_sets_max_age(client: SimClient) -> None:
    response = await client.get("/gadgets/ifr", params={"url": SPEC, "refresh": "60"})
    assert response.headers["Cache-Control"] == "public, max-age=60"
    response = await client.get("/gadgets/ifr", params={"url": SPEC, "refresh": "soon"})
    assert response.headers["Cache-Control"] == "public, max-age=3600"


async def test_ifr_with_nocache_is_no_cache_and_rereads_the_spec(client: SimClient) -> None:
    assert title(await ifr(client)) == "Hello"
    assert (await client.put(f"/sim/files{SPEC}", data=NEW_SPEC.encode())).status == 204
    assert title(await ifr(client)) == "Hello"  # Shindig keeps the parsed spec
    response = await client.get("/gadgets/ifr", params={"url": SPEC, "nocache": "1"})
    page = await response.text()
    assert response.headers["Cache-Control"] == "no-cache"
    assert title(page) == "Changed"
    assert '<p id="changed">new</p>' in page
    assert "/gadgets/js/core:rpc:pubsub.js?v=" in sources(page)[0]
    assert title(await ifr(client)) == "Changed"
    zero = await client.get("/gadgets/ifr", params={"url": SPEC, "nocache": "0"})
    assert zero.headers["Cache-Control"] == "public, max-age=3600"


async def test_ifr_concat_urls_carry_nocache(client: SimClient) -> None:
    _, css, script = sources(await ifr(client, nocache="1"))
    assert "&nocache=1&1=" in css
    assert "&nocache=1&1=" in script
    assert (await client.get(script)).headers["Cache-Control"] == "no-cache"


async def test_ifr_with_a_security_token_is_private(client: SimClient) -> None:
    response = await client.get("/gadgets/ifr", params={"url": SPEC, "st": "viewer:token"})
    assert response.status == 200
    assert response.headers["Cache-Control"] == "private, max-age=0"
    both = await client.get("/gadgets/ifr", params={"url": SPEC, "st": "t", "nocache": "1"})
    assert both.headers["Cache-Control"] == "private, max-age=0"


async def test_ifr_renders_the_asked_view_or_the_default(client: SimClient) -> None:
    await client.put(f"/sim/files{SPEC}", data=NEW_SPEC.encode())
    canvas = await ifr(client, nocache="1", view="canvas")
    assert '<p id="big">canvas</p>' in canvas
    assert "changed" not in canvas
    assert '<p id="changed">new</p>' in await ifr(client, view="home")


async def test_ifr_of_an_unknown_spec_is_404(client: SimClient) -> None:
    for url in [f"{HELLO}/Missing.xml", "ftp://finesse/x.xml", "relative.xml", f"{HELLO}/"]:
        response = await client.get("/gadgets/ifr", params={"url": url})
        assert response.status == 404, url


async def test_ifr_without_a_url_is_400(client: SimClient) -> None:
    assert (await client.get("/gadgets/ifr", params={"url": ""})).status == 400
    assert (await client.get("/gadgets/ifr?mid=1")).status == 400


@pytest.mark.parametrize(
    "spec",
    [
        "<Module><ModulePrefs",
        "<Gadget/>",
        "<Module><ModulePrefs title='x'/></Module>",
        '<Module><Content type="url" href="http://elsewhere/"/></Module>',
        '<Module><ModulePrefs><Require feature="nope"/></ModulePrefs><Content/></Module>',
    ],
    ids=["malformed", "not-a-module", "no-content", "url-content", "unknown-feature"],
)
async def test_ifr_of_a_spec_it_cannot_render_is_400(client: SimClient, spec: str) -> None:
    await client.put(f"/sim/files{SPEC}", data=spec.encode())
    response = await client.get("/gadgets/ifr", params={"url": SPEC, "nocache": "1"})
    assert response.status == 400


async def test_a_kept_spec_is_read_again_after_its_ttl(aiohttp_client: AiohttpClient) -> None:
    now = [1000.0]
    files = StaticFiles()
    gadgets = GadgetRoutes(SimState(SimData.default()), files, clock=lambda: now[0])
    app = web.Application()
    gadgets.add_to(app.router)
    files.add_to(app.router)
    client = await aiohttp_client(app)
    assert title(await ifr(client)) == "Hello"
    await client.put(f"/sim/files{SPEC}", data=NEW_SPEC.encode())
    now[0] += SPEC_TTL - 1
    assert title(await ifr(client)) == "Hello"
    now[0] += 1
    assert title(await ifr(client)) == "Changed"


# /gadgets/js/


async def test_feature_js_is_cached_a_year_when_versioned(client: SimClient) -> None:
    versioned = await client.get("/gadgets/js/core:rpc.js", params={"v": "abc", "c": "1"})
    assert versioned.status == 200
    assert versioned.content_type == "text/javascript"
    assert versioned.headers["Cache-Control"] == "public, max-age=31536000"
    body = await versioned.text()
    assert body.index("gadgets.config") < body.index("gadgets.rpc")
    plain = await client.get("/gadgets/js/core:rpc.js")
    assert plain.headers["Cache-Control"] == "public, max-age=3600"
    assert await plain.text() == body
    fresh = await client.get("/gadgets/js/core:rpc.js", params={"v": "abc", "nocache": "1"})
    assert fresh.headers["Cache-Control"] == "no-cache"


async def test_feature_js_brings_what_each_feature_needs(client: SimClient) -> None:
    body = await (await client.get("/gadgets/js/pubsub.js")).text()
    assert body.index("gadgets.config") < body.index("gadgets.rpc =") < body.index("gadgets.pubsub")
    again = await (await client.get("/gadgets/js/core:pubsub:core.js")).text()
    assert again == body


async def test_feature_js_has_a_gzip_variant_and_answers_304(raw: SimClient) -> None:
    url = "/gadgets/js/core:rpc.js?v=abc&c=1"
    plain = await raw.get(url, headers=IDENTITY)
    packed = await raw.get(url, headers=GZIP)
    assert packed.headers["Content-Encoding"] == "gzip"
    assert packed.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(await packed.read()) == await plain.read()
    assert packed.headers["ETag"] != plain.headers["ETag"]
    for response, encoding in [(plain, IDENTITY), (packed, GZIP)]:
        tag = response.headers["ETag"]
        again = await raw.get(url, headers={**encoding, "If-None-Match": tag})
        assert again.status == 304
        assert again.headers["Cache-Control"] == "public, max-age=31536000"
        assert again.headers["ETag"] == tag


async def test_unknown_features_are_404(client: SimClient) -> None:
    for path in ["core:nope.js", "nope.js", "core:rpc.txt", "core::rpc.js"]:
        assert (await client.get(f"/gadgets/js/{path}")).status == 404, path


# /gadgets/concat


async def test_concat_joins_numbered_files_in_number_order(client: SimClient) -> None:
    await client.put(f"/sim/files{HELLO}/hello.js", data=b"var one;")
    await client.put(f"/sim/files{HELLO}/hello.css", data=b"var two;")
    query = f"rewriteMime=text/javascript&gadget={SPEC}&fp=1&2={HELLO}/hello.css&1={HELLO}/hello.js"
    response = await client.get(f"/gadgets/concat?{query}")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/javascript"
    assert response.headers["Cache-Control"] == "public, max-age=3600"
    assert await response.read() == b"var one;\nvar two;"


async def test_concat_takes_repeated_f_after_numbered(client: SimClient) -> None:
    await client.put(f"/sim/files{HELLO}/hello.js", data=b"a")
    await client.put(f"/sim/files{HELLO}/hello.css", data=b"b")
    query = f"rewriteMime=text/css&f={HELLO}/hello.css&f={HELLO}/hello.js&1={HELLO}/hello.js"
    response = await client.get(f"/gadgets/concat?{query}&refresh=120")
    assert response.headers["Content-Type"] == "text/css"
    assert response.headers["Cache-Control"] == "public, max-age=120"
    assert await response.read() == b"a\nb\na"


async def test_concat_with_nocache_is_no_cache(client: SimClient) -> None:
    response = await client.get(f"/gadgets/concat?1={HELLO}/hello.js&nocache=1")
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["Content-Type"] == "text/javascript"  # the default rewriteMime


async def test_concat_of_an_unknown_file_is_404(client: SimClient) -> None:
    response = await client.get(f"/gadgets/concat?1={HELLO}/hello.js&2={HELLO}/gone.js")
    assert response.status == 404


async def test_concat_without_files_or_with_a_bad_mime_is_400(client: SimClient) -> None:
    assert (await client.get("/gadgets/concat?rewriteMime=text/javascript")).status == 400
    bad = await client.get(f"/gadgets/concat?rewriteMime=javascript&1={HELLO}/hello.js")
    assert bad.status == 400


# /gadgets/makeRequest and /gadgets/proxy


async def test_make_request_reads_finesse_with_the_callers_credentials(
    client: SimClient, auth: Auth
) -> None:
    url = "https://finesse.example.com:8445/finesse/api/User/10001"
    response = await client.get("/gadgets/makeRequest", params={"url": url}, headers=auth("10001"))
    assert response.status == 200
    assert response.headers["Cache-Control"] == "private, no-store"
    answer = shindig_answer(await response.text())[url]
    assert answer["rc"] == 200
    assert "<loginId>10001</loginId>" in str(answer["body"])
    assert answer["headers"] == {"content-type": ["application/xml"]}
    refused = await client.get("/gadgets/makeRequest", params={"url": url}, headers=auth("10002"))
    assert shindig_answer(await refused.text())[url]["rc"] == 401


async def test_make_request_posted_form_and_headers_field(client: SimClient, auth: Auth) -> None:
    url = "/finesse/api/User/10001"
    credential = auth("10001")["Authorization"]
    form = {"url": url, "httpMethod": "GET", "headers": f"Authorization={credential}", "st": "t"}
    response = await client.post("/gadgets/makeRequest", data=form)
    assert response.status == 200
    assert response.headers["Cache-Control"] == "private, no-store"
    assert shindig_answer(await response.text())[url]["rc"] == 200
    without = await client.post("/gadgets/makeRequest", data={"url": url})
    assert shindig_answer(await without.text())[url]["rc"] == 401
    write = await client.post("/gadgets/makeRequest", data={**form, "httpMethod": "PUT"})
    assert shindig_answer(await write.text())[url]["rc"] == 405


async def test_make_request_echoes_other_urls(client: SimClient) -> None:
    url = "https://elsewhere.example/api?q=1"
    form = {"url": url, "httpMethod": "POST", "postData": "a=b", "authz": "signed"}
    response = await client.post("/gadgets/makeRequest", data=form)
    answer = shindig_answer(await response.text())[url]
    assert answer["rc"] == 200
    echoed = json.loads(str(answer["body"]))
    assert echoed == {"url": url, "httpMethod": "POST", "headers": "", "postData": "a=b"}
    assert (await client.get("/gadgets/makeRequest")).status == 400


async def test_make_request_counts_the_finesse_read(client: SimClient, auth: Auth) -> None:
    url = "/finesse/api/User/10001"
    await client.get("/gadgets/makeRequest", params={"url": url}, headers=auth("10001"))
    await client.post("/gadgets/makeRequest", data={"url": "http://elsewhere/"})
    counted = await requests(client)
    assert counted["GET /gadgets/makeRequest"] == 1
    assert counted["POST /gadgets/makeRequest"] == 1
    assert counted[f"GET {url}"] == 1


async def test_proxy_answers_simulator_paths_privately(client: SimClient, auth: Auth) -> None:
    response = await client.get("/gadgets/proxy", params={"url": f"{HELLO}/hello.css"})
    assert response.status == 200
    assert response.content_type == "text/css"
    assert response.headers["Cache-Control"] == "private, no-store"
    assert "Content-Encoding" not in response.headers
    assert "#hello" in await response.text()
    user = "http://finesse/finesse/api/User/10001"
    api = await client.get("/gadgets/proxy", params={"url": user}, headers=auth("10001"))
    assert api.status == 200
    assert "<loginId>10001</loginId>" in await api.text()
    assert api.headers["Cache-Control"] == "private, no-store"


async def test_proxy_refuses_other_targets(client: SimClient) -> None:
    missing = await client.get("/gadgets/proxy", params={"url": f"{HELLO}/gone.css"})
    assert missing.status == 404
    assert missing.headers["Cache-Control"] == "private, no-store"
    for url in ["ftp://finesse/x", "/gadgets/proxy?url=/x", "relative", ""]:
        assert (await client.get("/gadgets/proxy", params={"url": url})).status == 400, url


# /sim/stats


async def test_gadget_requests_are_counted(client: SimClient) -> None:
    page = await ifr(client)
    for url in sources(page):
        assert (await client.get(url)).status == 200
    await client.get(f"{HELLO}/hello.js")
    await client.get("/gadgets/js/nope.js")
    counted = await requests(client)
    assert counted["GET /gadgets/ifr"] == 1
    assert counted["GET /gadgets/js/core:rpc.js"] == 1
    assert counted["GET /gadgets/concat"] == 2
    assert counted[f"GET {HELLO}/hello.js"] == 1
    assert counted["GET /gadgets/js/nope.js"] == 1
