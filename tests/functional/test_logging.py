"""The access log says what happened to each request, and never a credential."""

from __future__ import annotations

import base64
import json
import signal

import aiohttp

from tests.conftest import Sim, basic
from tests.functional.serving import serving

ADMIN_TOKEN = "admin-token-7f3a9c"
WRONG_PASSWORD = "hunter2-wrong"
QUERY_SECRET = "sso-token-e41b77"


async def test_json_access_lines_describe_each_request_and_hold_no_secret(sim: Sim) -> None:
    env = {
        "WEBPROXY_LOG_ACCESS": "info",
        "WEBPROXY_LOG_FORMAT": "json",
        "WEBPROXY_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    upstream = sim.url
    async with serving(["--upstream", upstream], env) as served, aiohttp.ClientSession() as client:
        agent = basic("10001")
        await (await client.get(f"{served.proxy}/finesse/api/User/10001", headers=agent)).read()
        codes = "/finesse/api/TeamResource/5000/ReasonCodes?category=ALL"
        for _ in range(2):
            await (
                await client.get(
                    f"{served.proxy}{codes}&access_token={QUERY_SECRET}", headers=agent
                )
            ).read()
        wrong = basic("10001", WRONG_PASSWORD)
        await (await client.get(f"{served.proxy}/finesse/api/User/10001", headers=wrong)).read()
        bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        await (await client.post(f"{served.admin}/admin/cache/clear", headers=bearer)).read()
        scrape = await (await client.get(f"{served.admin}/metrics")).text()
        served.signal(signal.SIGTERM)
        assert await served.exit_code() == 0

    lines = [json.loads(line) for line in served.stderr if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "webproxy.access"]
    assert [(a["method"], a["status"], a["cache"]) for a in access] == [
        ("GET", 200, "-"),
        ("GET", 200, "miss"),
        ("GET", 200, "hit"),
        ("GET", 401, "-"),
    ]
    hit = access[2]
    assert hit["path"] == "/finesse/api/TeamResource/5000/ReasonCodes?category=ALL&access_token=***"
    assert hit["bytes"] > 0 and hit["duration_ms"] >= 0 and hit["upstream_ms"] is None
    assert access[1]["upstream_ms"] > 0
    assert all(isinstance(a["worker"], int) for a in access)

    secrets = {
        ADMIN_TOKEN,
        WRONG_PASSWORD,
        QUERY_SECRET,
        base64.b64encode(b"10001:finesse").decode(),
        base64.b64encode(f"10001:{WRONG_PASSWORD}".encode()).decode(),
    }
    everything = "".join(served.stderr) + scrape
    assert not [secret for secret in secrets if secret in everything]


async def test_a_client_cannot_write_a_log_line_or_a_terminal_escape() -> None:
    forged = "%0d%0a2026-12-02 04:00:00,000 INFO webproxy.admin: cache cleared by admin%1b[31m"
    args = ["--upstream", "http://127.0.0.1:9"]  # refused: every request is logged as a 502
    async with serving(args) as served, aiohttp.ClientSession() as client:
        async with client.get(f"{served.proxy}/finesse/api/User/1{forged}") as response:
            assert response.status == 502
        served.signal(signal.SIGTERM)
        assert await served.exit_code() == 0
    lines = "".join(served.stderr).splitlines()
    assert not any(line.startswith("2026-12-02 04:00:00") for line in lines)
    assert not any("\x1b" in line or "\r" in line for line in lines)
    (warning,) = [line for line in lines if "-> 502" in line]
    assert "%0d%0a" in warning.lower()  # the target as sent, still encoded
