"""TLS on both sides: the listener terminates it; the upstream's certificate is verified."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from tests.conftest import ProxyFactory, settings_for
from webproxy.app import make_proxy_app
from webproxy.config import ServerSettings, parse_address
from webproxy.server import Listeners, proxy_runner, tls_context


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (and its key), made with openssl."""
    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed for the TLS tests: apt-get install openssl"
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="<SystemInfo/>", content_type="application/xml")


@pytest.fixture
async def https_upstream(aiohttp_server: AiohttpServer, certificate: tuple[Path, Path]) -> str:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    app = web.Application()
    app.router.add_get("/finesse/api/SystemInfo", hello)
    server = await aiohttp_server(app, ssl=context)
    return f"https://127.0.0.1:{server.port}"


async def test_an_upstream_certificate_nobody_trusts_is_refused(
    https_upstream: str, start_proxy: ProxyFactory
) -> None:
    proxy = await start_proxy(settings_for(https_upstream))
    response = await proxy.client.get("/finesse/api/SystemInfo")
    assert response.status == 502


async def test_a_configured_ca_file_makes_the_upstream_trusted(
    https_upstream: str, start_proxy: ProxyFactory, certificate: tuple[Path, Path]
) -> None:
    proxy = await start_proxy(
        settings_for(https_upstream, upstream={"ca_file": str(certificate[0])})
    )
    response = await proxy.client.get("/finesse/api/SystemInfo")
    assert response.status == 200
    assert await response.text() == "<SystemInfo/>"


async def test_the_listener_terminates_tls_with_the_configured_certificate(
    https_upstream: str, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    base = settings_for(https_upstream, upstream={"ca_file": str(cert)})
    server = replace(ServerSettings(), tls_cert=str(cert), tls_key=str(key))
    settings = replace(base, server=server)
    listeners = Listeners()
    try:
        runner = proxy_runner(make_proxy_app(settings), settings)
        bound = await listeners.add(
            "proxy", runner, parse_address("127.0.0.1:0"), tls=tls_context(server)
        )
        client_context = ssl.create_default_context(cafile=str(cert))
        async with aiohttp.ClientSession() as session:
            url = f"https://127.0.0.1:{bound.port}/finesse/api/SystemInfo"
            async with session.get(url, ssl=client_context) as response:
                assert response.status == 200
                assert await response.text() == "<SystemInfo/>"
    finally:
        await listeners.close()
