"""Live log levels (`GET`/`PUT /admin/log`): in force at once, in every worker, past a reload."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from functools import partial
from pathlib import Path
from typing import Final

import aiohttp
import pytest

from tests.conftest import Sim, basic
from tests.functional.finesse import eventually
from tests.functional.serving import Served, serving

TOKEN: Final = "log-token-5d1e"
JSON_LOG: Final = {"WEBPROXY_LOG_FORMAT": "json"}
READ: Final = "/finesse/api/User/10001"
MALFORMED: Final = "malformed request from"
DEFAULTS: Final = {"access_log_level": "off", "log_severity": "info"}
Line = dict[str, object]


def json_lines(served: Served) -> list[Line]:
    return [json.loads(line) for line in served.stderr if line.startswith("{")]


def access_lines(served: Served) -> list[Line]:
    return [line for line in json_lines(served) if line["logger"] == "webproxy.access"]


def logged(served: Served, marker: str) -> list[Line]:
    return [line for line in access_lines(served) if marker in str(line["path"])]


def worker_pids(served: Served) -> set[int]:
    said = (str(line["message"]) for line in json_lines(served))
    return {int(text.rsplit("pid ", 1)[1].rstrip(")")) for text in said if "started (pid" in text}


async def put_log(
    served: Served, body: object, *, token: str | None = None, raw: bytes | None = None
) -> tuple[int, dict[str, object]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as client:
        data = raw if raw is not None else json.dumps(body).encode()
        async with client.put(f"{served.admin}/admin/log", data=data, headers=headers) as r:
            return r.status, await r.json()


async def get_log(served: Served) -> dict[str, object]:
    async with aiohttp.ClientSession() as client, client.get(f"{served.admin}/admin/log") as r:
        assert r.status == 200
        answer: dict[str, object] = await r.json()
        return answer


async def read_once(served: Served, marker: str) -> None:
    """One read on a connection of its own (so any worker may answer it)."""
    async with aiohttp.ClientSession() as client:
        url = f"{served.proxy}{READ}?nocache={marker}"
        async with client.get(url, headers=basic("10001")) as r:
            assert r.status == 200


async def logging_workers(served: Served, tag: str, count: int = 2) -> dict[int, Line]:
    """New connections until `count` workers have answered one; each worker's line.

    Every read must be logged (the caller has turned the access log on)."""
    seen: dict[int, Line] = {}
    for n in range(200):
        marker = f"{tag}-{n}"
        await read_once(served, marker)
        (line,) = await logged_once(served, marker)
        seen.setdefault(int(str(line["worker"])), line)
        if len(seen) == count:
            return seen
    raise AssertionError(f"only workers {sorted(seen)} answered")


async def logged_once(served: Served, marker: str) -> list[Line]:
    await eventually(partial(lambda marker: len(logged(served, marker)) == 1, marker))
    return logged(served, marker)


async def stop(served: Served) -> None:
    served.signal(signal.SIGTERM)
    assert await served.exit_code() == 0


async def test_a_put_turns_the_access_log_on_for_a_connection_already_open(sim: Sim) -> None:
    async with serving(["--upstream", sim.url], JSON_LOG) as served:
        host, port = served.proxy.removeprefix("http://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            await keep_alive_read(reader, writer, "before")
            assert await get_log(served) == DEFAULTS
            changed = {"access_log_level": "info", "log_severity": "info"}
            assert await put_log(served, {"access_log_level": "info"}) == (200, changed)
            await keep_alive_read(reader, writer, "after")  # the connection opened while off
        finally:
            writer.close()
            await writer.wait_closed()
        await eventually(lambda: len(logged(served, "after")) == 1)
        assert logged(served, "before") == []
        assert await get_log(served) == changed
        await stop(served)


async def keep_alive_read(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, marker: str
) -> None:
    """One read on an open connection, which stays open (HTTP/1.1 keep-alive)."""
    authorization = basic("10001")["Authorization"]
    head = f"GET {READ}?nocache={marker} HTTP/1.1\r\nHost: x\r\nAuthorization: {authorization}"
    writer.write(f"{head}\r\n\r\n".encode())
    async with asyncio.timeout(5):
        lines = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
        assert lines[0] == "HTTP/1.1 200 OK"
        assert not any(line.lower() == "connection: close" for line in lines)
        (length,) = [
            line.split(":")[1] for line in lines if line.lower().startswith("content-length:")
        ]
        await reader.readexactly(int(length))


async def test_a_put_needs_the_admin_token_and_a_get_does_not(sim: Sim) -> None:
    env = {**JSON_LOG, "WEBPROXY_ADMIN_TOKEN": TOKEN}
    async with serving(["--upstream", sim.url], env) as served:
        change = {"log_severity": "error"}
        for token in (None, "wrong"):
            status, answer = await put_log(served, change, token=token)
            assert (status, answer) == (401, {"error": "admin token required"})
        assert await get_log(served) == DEFAULTS
        status, answer = await put_log(served, change, token=TOKEN)
        assert (status, answer) == (200, {"access_log_level": "off", "log_severity": "error"})
        assert await get_log(served) == answer
        await stop(served)
    assert not [line for line in served.stderr if TOKEN in line]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"", "JSON object"),
        (b"not json", "JSON object"),
        (b'["access_log_level", "debug"]', "JSON object"),
        (b"[" * 900, "JSON object"),
        (b"{}", "nothing to set"),
        (b'{"access_log_level": "debug", "colour": "red"}', "unknown key"),
        (b'{"access_log_level": "loud"}', "access_log_level must be one of off, info, debug"),
        (b'{"access_log_level": null}', "access_log_level must be one of"),
        (b'{"log_severity": "chatty", "access_log_level": "debug"}', "log_severity must be one"),
        (b'{"log_severity": ["debug"]}', "log_severity must be one of"),
        (b'{"log_severity": "DEBUG"}', "log_severity must be one of"),
        (b'{"log_severity": "' + b"x" * 2000 + b'"}', "at most 1024 bytes"),
    ],
    ids=[
        "empty", "not-json", "array", "deep", "nothing", "unknown-key", "unknown-access",
        "null", "unknown-severity-beside-a-good-one", "severity-list", "upper-case", "too-big",
    ],
)  # fmt: skip
async def test_a_bad_put_is_refused_with_400_saying_why_and_changes_nothing(
    body: bytes, says: str
) -> None:
    async with serving(["--upstream", "http://127.0.0.1:9"], JSON_LOG) as served:
        status, answer = await put_log(served, None, raw=body)
        assert status == 400
        assert says in str(answer["error"])
        assert await get_log(served) == DEFAULTS
        await stop(served)


@pytest.mark.parametrize(
    ("severity", "logs_info"),
    [("debug", True), ("info", True), ("warn", False), ("crit", False), ("emerg", False)],
)
async def test_each_severity_name_is_shown_back_as_set_and_decides_what_is_logged(
    severity: str, logs_info: bool
) -> None:
    env = {**JSON_LOG, "WEBPROXY_LOG_ACCESS": "info"}
    async with serving(["--upstream", "http://127.0.0.1:9"], env) as served:
        status, answer = await put_log(served, {"log_severity": severity})
        assert (status, answer["log_severity"]) == (200, severity)
        await send_malformed(served, "probe")
        await eventually(lambda: any(line["status"] == 400 for line in access_lines(served)))
        assert any(MALFORMED in str(line["message"]) for line in json_lines(served)) is logs_info
        await stop(served)


async def test_a_put_through_one_worker_turns_on_every_workers_access_log(sim: Sim) -> None:
    args = ["--upstream", sim.url, "--workers", "2"]
    async with serving(args, JSON_LOG) as served:
        await eventually(lambda: len(worker_pids(served)) == 2)
        for n in range(20):  # new connections: both workers answer some
            await read_once(served, f"before-{n}")
        status, answer = await put_log(served, {"access_log_level": "info"})
        assert (status, answer) == (200, {"access_log_level": "info", "log_severity": "info"})
        answered = await logging_workers(served, "after")  # each read logged, no wait
        assert set(answered) == worker_pids(served)
        assert logged(served, "before") == []
        assert await get_log(served) == answer
        await stop(served)


async def test_a_put_through_one_worker_sets_every_workers_severity(sim: Sim) -> None:
    env = {**JSON_LOG, "WEBPROXY_LOG_ACCESS": "info"}
    async with serving(["--upstream", sim.url, "--workers", "2"], env) as served:
        await eventually(lambda: len(worker_pids(served)) == 2)
        logging_info = await malformed_on_each_worker(served, "info-")
        assert {pid for pid, said in logging_info.items() if said} == worker_pids(served)
        status, answer = await put_log(served, {"log_severity": "warn"})
        assert (status, answer["log_severity"]) == (200, "warn")
        logging_warn = await malformed_on_each_worker(served, "warn-")
        assert set(logging_warn) == worker_pids(served)
        assert not any(logging_warn.values())  # neither worker logged the INFO line
        await stop(served)


async def test_a_restarted_worker_takes_on_the_live_levels(sim: Sim) -> None:
    async with serving(["--upstream", sim.url, "--workers", "2"], JSON_LOG) as served:
        await eventually(lambda: len(worker_pids(served)) == 2)
        assert (await put_log(served, {"access_log_level": "debug"}))[0] == 200
        first = worker_pids(served)
        os.kill(min(first), signal.SIGKILL)
        await eventually(lambda: len(worker_pids(served)) == 3, 10)
        (newcomer,) = worker_pids(served) - first
        answered = await logging_workers_including(served, newcomer)
        assert "user_agent" in answered.keys()  # debug: the level set live, not the file's `off`
        await stop(served)


async def test_live_levels_win_over_the_file_at_a_reload_in_every_worker(
    sim: Sim, tmp_path: Path
) -> None:
    config = tmp_path / "webproxy.toml"
    config.write_text('[log]\nformat = "json"\naccess = "off"\nlevel = "info"\n')
    args = ["--config", str(config), "--upstream", sim.url, "--workers", "2"]
    async with serving(args) as served:
        await eventually(lambda: len(worker_pids(served)) == 2)
        assert (await put_log(served, {"access_log_level": "info"}))[0] == 200
        config.write_text('[log]\nformat = "json"\naccess = "debug"\nlevel = "info"\n')
        served.signal(signal.SIGHUP)

        def reloaded() -> set[int]:
            said = (
                line for line in json_lines(served) if "applied log.access" in str(line["message"])
            )
            return {int(str(line["pid"])) for line in said}

        await eventually(lambda: reloaded() == worker_pids(served), 10)
        answered = await logging_workers(served, "after-reload")
        assert not [line for line in answered.values() if "user_agent" in line]  # info, not debug
        assert await get_log(served) == {"access_log_level": "info", "log_severity": "info"}
        await stop(served)


async def send_malformed(served: Served, marker: str) -> None:
    """A request with a bad header name (holding `marker`): 400, and an INFO line saying so."""
    host, port = served.proxy.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET / HTTP/1.1\r\nHost: x\r\nBad\x01{marker}: y\r\n\r\n".encode())
    async with asyncio.timeout(5):
        assert (await reader.readline()).startswith(b"HTTP/1.0 400")
    writer.close()
    await writer.wait_closed()


async def malformed_on_each_worker(served: Served, tag: str) -> dict[int, bool]:
    """Malformed requests on new connections until both workers answered one: whether each
    logged the INFO line about it. Its access line follows that line, from the same worker."""
    said: dict[int, bool] = {}
    for n in range(200):
        marker = f"{tag}{n}"
        count = len(access_lines(served))
        await send_malformed(served, marker)
        await eventually(partial(lambda count: len(access_lines(served)) == count + 1, count))
        worker = int(str(access_lines(served)[-1]["worker"]))
        lines = json_lines(served)
        said[worker] = said.get(worker, False) or any(
            marker in str(line["message"]) and line["pid"] == worker for line in lines
        )
        if len(said) == 2:
            return said
    raise AssertionError(f"only workers {sorted(said)} answered")


async def logging_workers_including(served: Served, pid: int) -> Line:
    """New connections until worker `pid` has answered one (each read must be logged)."""
    for n in range(200):
        marker = f"to-{pid}-{n}"
        await read_once(served, marker)
        (line,) = await logged_once(served, marker)
        if line["worker"] == pid:
            return line
    raise AssertionError(f"worker {pid} never answered")
