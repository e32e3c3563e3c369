"""The `webproxy` command, run as a real subprocess against listeners on real sockets."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from tests.conftest import AGENT, Proxy, ProxyFactory, Sim, settings_for
from tests.functional.finesse import upstream_gets
from tests.functional.serving import Served, serving
from tests.functional.test_admin import CHAT, CODES, TOKEN, WARM, outcomes, warm_up
from webproxy.config import Secret

ROOT: Final = Path(__file__).resolve().parents[2]
RUN_TIMEOUT: Final = 30.0  # a short command, including interpreter start-up
START_DEADLINE: Final = 20.0  # a long-running command announces its URLs within this
STOP_DEADLINE: Final = 10.0  # and exits within this after SIGINT or SIGTERM
DEMO_ANNOUNCE: Final = re.compile(r"^\s*proxy\s+(http://\S+)")
SERVE_ANNOUNCE: Final = re.compile(r"^webproxy: proxy on (\S+), admin on (\S+), upstream (\S+)$")
SIM_XMPP_ANNOUNCE: Final = re.compile(r"^Finesse simulator XMPP \(plain TCP\) on (\S+):(\d+)$")
PROBLEM_LINE: Final = re.compile(r"^[\w.]+: \S.*$")


@dataclass(frozen=True, slots=True)
class Finished:
    """How a command ended: exit code, standard output and standard error."""

    code: int
    out: str
    err: str


def command_env(**extra: str) -> dict[str, str]:
    """This environment minus WEBPROXY_* and PYTHONUNBUFFERED (an operator's shell has neither)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBPROXY_")}
    env.pop("PYTHONUNBUFFERED", None)
    return env | extra


async def spawn(args: tuple[str, ...], env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "webproxy", *args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=command_env(**env),
        cwd=ROOT,
    )


async def finish(process: asyncio.subprocess.Process, deadline: float) -> Finished:
    """Wait for the process to exit and collect its output; kill it if it takes too long."""
    try:
        async with asyncio.timeout(deadline):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return Finished(process.returncode, out.decode(), err.decode())


async def webproxy(*args: str, **env: str) -> Finished:
    """Run `python -m webproxy ARGS` to the end."""
    return await finish(await spawn(args, env), RUN_TIMEOUT)


@dataclass(frozen=True, slots=True)
class Running:
    """A long-running command and the line it announced itself with."""

    process: asyncio.subprocess.Process
    announced: re.Match[str]

    async def stop(self, signum: signal.Signals) -> Finished:
        self.process.send_signal(signum)
        return await finish(self.process, STOP_DEADLINE)


@asynccontextmanager
async def running(*args: str, announce: re.Pattern[str], **env: str) -> AsyncIterator[Running]:
    """Start `python -m webproxy ARGS`, read stdout until `announce` matches; kill it at the end."""
    process = await spawn(args, env)
    try:
        yield Running(process, await read_until(process, announce))
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def read_until(
    process: asyncio.subprocess.Process, pattern: re.Pattern[str]
) -> re.Match[str]:
    assert process.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(START_DEADLINE):
            while line := (await process.stdout.readline()).decode():
                lines.append(line)
                if found := pattern.search(line.rstrip("\n")):
                    return found
    except TimeoutError:
        pytest.fail(f"nothing matched {pattern.pattern!r} in {START_DEADLINE} s; stdout: {lines}")
    pytest.fail(f"exited ({await process.wait()}) without announcing itself; stdout: {lines}")


@pytest.fixture
async def warm(sim: Sim, start_proxy: ProxyFactory) -> Proxy:
    return await warm_up(await start_proxy(settings_for(sim.url)))


@pytest.fixture
async def guarded(sim: Sim, start_proxy: ProxyFactory) -> Proxy:
    """Warm, with an admin token configured."""
    return await warm_up(await start_proxy(settings_for(sim.url, admin={"token": Secret(TOKEN)})))


def admin_url(proxy: Proxy) -> str:
    return str(proxy.admin.make_url("")).rstrip("/")


async def missed(proxy: Proxy) -> set[str]:
    """The warmed paths the proxy now has to fetch again (each is read once, so re-cached)."""
    return {path for path, seen in (await outcomes(proxy)).items() if seen == "miss"}


@pytest.mark.parametrize(
    ("flags", "cleared", "expected_misses"),
    [
        ((), {"scope": "all"}, set(WARM)),
        (("--team", "5000"), {"scope": "team", "team": "5000"}, {CODES.format(team="5000")}),
        (("--resource", "ChatConfig"), {"scope": "resource", "resource": "ChatConfig"}, {CHAT}),
    ],
    ids=["everything", "one-team", "one-resource"],
)
async def test_cache_clear_rest_clears_the_scope_it_names_and_prints_it(
    warm: Proxy, flags: tuple[str, ...], cleared: dict[str, str], expected_misses: set[str]
) -> None:
    done = await webproxy("cache", "clear", "rest", *flags, "--admin-url", admin_url(warm))
    assert (done.code, done.err) == (0, "")
    assert json.loads(done.out) == {"cleared": cleared}
    assert await missed(warm) == expected_misses


@pytest.mark.parametrize(
    ("flags", "env"),
    [
        (("--token", TOKEN), {}),
        ((), {"WEBPROXY_ADMIN_TOKEN": TOKEN}),
        (("--token", TOKEN), {"WEBPROXY_ADMIN_TOKEN": "stale"}),
    ],
    ids=["token-flag", "token-from-environment", "flag-beats-environment"],
)
async def test_cache_clear_rest_with_the_admin_token_clears(
    guarded: Proxy, flags: tuple[str, ...], env: dict[str, str]
) -> None:
    done = await webproxy(
        "cache", "clear", "rest", *flags, "--admin-url", admin_url(guarded), **env
    )
    assert (done.code, done.err) == (0, "")
    assert json.loads(done.out) == {"cleared": {"scope": "all"}}
    assert await missed(guarded) == set(WARM)


@pytest.mark.parametrize(
    ("flags", "says"),
    [(("--token", "wrong"), "the admin token was refused"), ((), "it needs the admin token")],
    ids=["wrong-token", "no-token"],
)
async def test_cache_clear_rest_refused_by_the_token_exits_1_with_one_line_naming_401(
    guarded: Proxy, flags: tuple[str, ...], says: str
) -> None:
    done = await webproxy("cache", "clear", "rest", *flags, "--admin-url", admin_url(guarded))
    assert done.code == 1
    assert done.out == ""
    assert len(done.err.splitlines()) == 1
    assert "401" in done.err
    assert says in done.err
    assert await missed(guarded) == set()


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (("cache", "stats", "--admin-url", "nonsense"), "--admin-url"),
        (("cache", "clear", "rest", "--admin-url", "http://127.0.0.1:99999"), "--admin-url"),
        (("cache", "clear", "rest", "--admin-url", "ftp://127.0.0.1:9901"), "--admin-url"),
        (("cache", "clear", "rest", "--team", "abc"), "--team"),
        (("cache", "clear", "rest", "--team", "5e3"), "--team"),
        (("cache", "clear", "nothing"), "nothing"),
        (("cache", "clear", "desktop", "--team", "5000"), "--team"),
        (("cache", "clear", "all", "--resource", "ChatConfig"), "--resource"),
        (("set", "access-log-level", "loud"), "loud"),
        (("set", "log-severity", "chatty"), "chatty"),
        (("set", "log-severity"), "level"),
        (("show", "colour"), "colour"),
        (("cache", "frobnicate"), "frobnicate"),
        (("serve", "--no-such-flag"), "--no-such-flag"),
        (("serve", "--workers", "two"), "server.workers"),
        (("frobnicate",), "frobnicate"),
    ],
    ids=[
        "admin-url-nonsense",
        "admin-url-port",
        "admin-url-scheme",
        "team-letters",
        "team-exponent",
        "unknown-cache",
        "team-beside-desktop",
        "resource-beside-all",
        "unknown-access-level",
        "unknown-severity",
        "no-severity",
        "unknown-show",
        "unknown-cache-command",
        "unknown-serve-flag",
        "workers-not-a-number",
        "unknown-command",
    ],
)
async def test_a_cli_mistake_is_one_line_and_exit_2_never_a_traceback(
    args: tuple[str, ...], names: str
) -> None:
    done = await webproxy(*args)
    assert done.code == 2
    assert done.out == ""
    assert len(done.err.splitlines()) == 1, done.err
    assert names in done.err
    assert "Traceback" not in done.err


async def test_serve_help_names_every_option_as_documented_with_help_for_each() -> None:
    done = await webproxy("serve", "--help")
    assert done.code == 0
    for documented in (
        "--config FILE",
        "--upstream URL",
        "--listen HOST:PORT",
        "--admin-listen HOST:PORT",
        "--store {memory,redis}",
        "--redis-url URL",
        "--workers N",
    ):
        assert documented in done.out
    lines = done.out.split("options:\n", 1)[1].splitlines()
    flags = [n for n, line in enumerate(lines) if line.startswith("  -")]
    assert len(flags) == 8  # -h and the seven above
    for n in flags:  # a help text beside the flag, or on the line below it
        beside = re.fullmatch(r"  \S.*?\s{2,}\S.*", lines[n])
        below = n + 1 < len(lines) and re.match(r"\s{10,}\S", lines[n + 1])
        assert beside or below, lines[n]


async def test_cache_clear_rest_with_an_unknown_resource_exits_1_with_one_line(
    warm: Proxy,
) -> None:
    done = await webproxy(
        "cache", "clear", "rest", "--resource", "Nope", "--admin-url", admin_url(warm)
    )
    assert done.code == 1
    assert done.out == ""
    assert len(done.err.splitlines()) == 1
    assert "400" in done.err
    assert await missed(warm) == set()


@contextmanager
def refused_port() -> Iterator[int]:
    """A port that refuses connections: bound, never listening, freed afterwards."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize(
    "command",
    [
        ("cache", "clear", "rest"),
        ("cache", "clear", "desktop"),
        ("cache", "stats"),
        ("set", "access-log-level", "debug"),
        ("show", "log-severity"),
    ],
)
async def test_an_unreachable_admin_api_exits_1_with_one_line(command: tuple[str, ...]) -> None:
    with refused_port() as port:
        done = await webproxy(*command, "--admin-url", f"http://127.0.0.1:{port}")
    assert done.code == 1
    assert done.out == ""
    assert len(done.err.splitlines()) == 1
    assert f"127.0.0.1:{port}" in done.err


async def test_cache_stats_json_prints_the_admin_apis_answer(warm: Proxy) -> None:
    done = await webproxy("cache", "stats", "--json", "--admin-url", admin_url(warm))
    assert (done.code, done.err) == (0, "")
    stats = json.loads(done.out)
    assert stats["entries"] == len(WARM)
    assert stats["resources"]["TeamResource"]["entries"] == 2


async def test_check_config_accepts_the_documented_example() -> None:
    done = await webproxy("check-config", "config/webproxy.toml")
    assert (done.code, done.err) == (0, "")


async def test_check_config_names_each_problem_of_a_broken_file_on_its_own_line(
    tmp_path: Path,
) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text(
        '[server]\nlisten = "nonsense"\nworkers = 0\n[bogus]\nx = 1\n[cache.ttl]\nChatConfig = -1\n'
    )
    done = await webproxy("check-config", str(broken))
    assert done.code == 2
    lines = done.err.splitlines()
    assert all(PROBLEM_LINE.match(line) for line in lines), lines
    keys = [line.partition(":")[0] for line in lines]
    assert sorted(keys) == ["bogus", "cache.ttl.ChatConfig", "server.listen", "server.workers"]


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session:
        async with asyncio.timeout(10), session.get(url, headers=AGENT) as response:
            return response.status, await response.text()


async def test_the_demo_serves_a_signed_in_read_and_stops_cleanly_on_sigint() -> None:
    args = ("--listen", "127.0.0.1:0", "--sim-listen", "127.0.0.1:0")
    async with running(
        "demo", *args, "--admin-listen", "127.0.0.1:0", announce=DEMO_ANNOUNCE
    ) as demo:
        status, body = await get(demo.announced[1] + "/finesse/api/User/10001")
        assert status == 200
        assert "<loginId>10001</loginId>" in body
        done = await demo.stop(signal.SIGINT)
    assert done.code == 0, done.err


async def test_sim_serves_plain_xmpp_on_the_port_asked_for_and_stops_on_sigterm() -> None:
    args = ("sim", "--listen", "127.0.0.1:0", "--xmpp-port", "0")
    async with running(*args, announce=SIM_XMPP_ANNOUNCE) as sim:
        reader, writer = await asyncio.open_connection(sim.announced[1], int(sim.announced[2]))
        writer.write(
            b"<stream:stream to='finesse.example.com' version='1.0' xmlns='jabber:client'"
            b" xmlns:stream='http://etherx.jabber.org/streams'>"
        )
        async with asyncio.timeout(5):
            greeting = await reader.readuntil(b"</stream:features>")
        writer.close()
        assert b"<mechanism>PLAIN</mechanism>" in greeting
        done = await sim.stop(signal.SIGTERM)
    assert done.code == 0, done.err


async def test_serve_proxies_to_its_upstream_and_stops_cleanly_on_sigterm(sim: Sim) -> None:
    args = ("serve", "--upstream", sim.url, "--listen", "127.0.0.1:0")
    async with running(*args, "--admin-listen", "127.0.0.1:0", announce=SERVE_ANNOUNCE) as served:
        proxy, admin, upstream = served.announced.groups()
        assert upstream == sim.url
        status, _ = await get(f"http://{proxy}/finesse/api/User/10001")
        assert status == 200
        assert upstream_gets(sim, "/finesse/api/User/10001") == 1
        assert (await get(f"http://{admin}/healthz"))[0] == 200
        done = await served.stop(signal.SIGTERM)
    assert done.code == 0, done.err


@pytest.mark.parametrize(
    ("flag", "value", "key"),
    [
        ("--listen", "nonsense", "server.listen"),
        ("--admin-listen", "127.0.0.1:99999", "admin.listen"),
        ("--upstream", "ftp://finesse", "upstream.url"),
    ],
    ids=["listen", "admin-listen", "upstream"],
)
async def test_serve_with_a_bad_flag_value_exits_2_with_one_line_naming_it(
    flag: str, value: str, key: str
) -> None:
    done = await webproxy("serve", flag, value)
    assert done.code == 2
    assert done.out == ""
    assert len(done.err.splitlines()) == 1
    assert done.err.startswith(key)


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_serve_on_a_busy_port_exits_1_with_one_line(workers: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        finished = await webproxy(
            "serve", "--listen", f"127.0.0.1:{port}", "--admin-listen", "127.0.0.1:0",
            "--workers", workers,
        )  # fmt: skip
    assert finished.code == 1
    assert finished.err.count("\n") == 1
    assert finished.err.startswith("webproxy: cannot listen:")


@dataclass
class StandIn:
    """An admin API written in the test: answers `stats`, notes what each clear asked."""

    stats: dict[str, object]
    clears: list[dict[str, str]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
async def stand_in(aiohttp_server: AiohttpServer) -> StandIn:
    admin = StandIn(stats={})

    async def clear(request: web.Request) -> web.Response:
        admin.clears.append(dict(request.query))
        return web.json_response({"cleared": {"cache": request.query.get("cache", "rest")}})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(admin.stats)

    app = web.Application()
    app.router.add_post("/admin/cache/clear", clear)
    app.router.add_get("/admin/cache", stats)
    admin.url = str((await aiohttp_server(app)).make_url("")).rstrip("/")
    return admin


@pytest.mark.parametrize(
    ("args", "query"),
    [
        (("rest",), {}),
        (("rest", "--team", "5000"), {"team": "5000"}),
        (("rest", "--resource", "ChatConfig"), {"resource": "ChatConfig"}),
        (("desktop",), {"cache": "desktop"}),
        (("shindig",), {"cache": "shindig"}),
        (("authmode",), {"cache": "authmode"}),
        (("webproxy",), {"cache": "webproxy"}),
        (("all",), {"cache": "all"}),
    ],
    ids=["rest", "rest-team", "rest-resource", "desktop", "shindig", "authmode", "webproxy", "all"],
)
async def test_cache_clear_names_the_cache_and_asks_for_rest_as_before_there_were_others(
    stand_in: StandIn, args: tuple[str, ...], query: dict[str, str]
) -> None:
    done = await webproxy("cache", "clear", *args, "--admin-url", stand_in.url)
    assert (done.code, done.err) == (0, "")
    assert stand_in.clears == [query]
    assert json.loads(done.out) == {"cleared": {"cache": query.get("cache", "rest")}}


async def test_cache_clear_with_a_misplaced_team_asks_nothing(stand_in: StandIn) -> None:
    done = await webproxy(
        "cache", "clear", "shindig", "--team", "5000", "--admin-url", stand_in.url
    )
    assert done.code == 2
    assert stand_in.clears == []


STATS_BEFORE_CACHES: Final = {
    "backend": "memory",
    "entries": 3,
    "bytes": 900,
    "hits": 4,
    "misses": 2,
    "hit_ratio": 0.6667,
    "identities": 2,
    "resources": {"ChatConfig": {"entries": 1, "bytes": 300, "lookups": {"hit": 4}}},
}


async def test_cache_stats_prints_an_answer_without_caches_as_json(stand_in: StandIn) -> None:
    stand_in.stats = STATS_BEFORE_CACHES
    done = await webproxy("cache", "stats", "--admin-url", stand_in.url)
    assert (done.code, done.err) == (0, "")
    assert json.loads(done.out) == STATS_BEFORE_CACHES


async def test_cache_stats_prints_a_line_per_cache_and_per_resource(stand_in: StandIn) -> None:
    counts = {"entries": 0, "bytes": 0, "hits": 0, "misses": 0}
    stand_in.stats = {
        **STATS_BEFORE_CACHES,
        "entries": 5,
        "bytes": 1900,
        "hits": 7,
        "misses": 3,
        "caches": {
            "rest": {"entries": 3, "bytes": 900, "hits": 4, "misses": 2},
            "desktop": {"entries": 2, "bytes": 1000, "hits": 3, "misses": 1},
            "shindig": counts,
            "authmode": counts,
        },
        "resources": {
            "ChatConfig": {
                "cache": "rest",
                "entries": 1,
                "bytes": 300,
                "lookups": {"hit": 4, "miss": 1, "bypass": 1},
            },
            "DesktopFile": {"cache": "desktop", "entries": 2, "bytes": 1000, "lookups": {}},
        },
    }
    done = await webproxy("cache", "stats", "--admin-url", stand_in.url)
    assert (done.code, done.err) == (0, "")
    assert done.out.splitlines() == [
        "store: backend=memory identities=2",
        "all: entries=5 bytes=1900 hits=7 misses=3 hit_ratio=0.7000",
        "rest: entries=3 bytes=900 hits=4 misses=2 hit_ratio=0.6667",
        "desktop: entries=2 bytes=1000 hits=3 misses=1 hit_ratio=0.7500",
        "shindig: entries=0 bytes=0 hits=0 misses=0 hit_ratio=-",
        "authmode: entries=0 bytes=0 hits=0 misses=0 hit_ratio=-",
        "rest ChatConfig: entries=1 bytes=300 hits=4 misses=2 hit_ratio=0.6667",
        "desktop DesktopFile: entries=2 bytes=1000 hits=0 misses=0 hit_ratio=-",
    ]


LOG_TOKEN: Final = "log-level-token-93b1"


@pytest.fixture
async def served(sim: Sim) -> AsyncIterator[Served]:
    """`webproxy serve` in a process of its own: a `set` changes that process's logging."""
    env = {"WEBPROXY_ADMIN_TOKEN": LOG_TOKEN, "WEBPROXY_LOG_FORMAT": "json"}
    async with serving(["--upstream", sim.url], env) as running_proxy:
        yield running_proxy
        running_proxy.signal(signal.SIGTERM)
        assert await running_proxy.exit_code() == 0


@pytest.mark.parametrize(
    ("item", "level", "default"),
    [
        ("access-log-level", "debug", "off"),
        ("access-log-level", "info", "off"),
        ("log-severity", "warn", "info"),
        ("log-severity", "crit", "info"),
        ("log-severity", "emerg", "info"),
    ],
)
async def test_set_changes_a_log_level_live_and_show_shows_it_on_one_line(
    served: Served, item: str, level: str, default: str
) -> None:
    admin = ("--admin-url", served.admin)
    shown = await webproxy("show", item, *admin)
    assert (shown.code, shown.out, shown.err) == (0, f"{item}: {default}\n", "")
    done = await webproxy("set", item, level, *admin, "--token", LOG_TOKEN)
    assert (done.code, done.out, done.err) == (0, f"{item}: {level}\n", "")
    shown = await webproxy("show", item, *admin)
    assert (shown.code, shown.out, shown.err) == (0, f"{item}: {level}\n", "")


@pytest.mark.parametrize(
    ("flags", "says"),
    [(("--token", "wrong"), "the admin token was refused"), ((), "it needs the admin token")],
    ids=["wrong-token", "no-token"],
)
async def test_set_refused_by_the_token_exits_1_with_one_line_and_changes_nothing(
    served: Served, flags: tuple[str, ...], says: str
) -> None:
    done = await webproxy("set", "log-severity", "error", *flags, "--admin-url", served.admin)
    assert (done.code, done.out) == (1, "")
    assert len(done.err.splitlines()) == 1
    assert "401" in done.err and says in done.err
    shown = await webproxy("show", "log-severity", "--admin-url", served.admin)
    assert shown.out == "log-severity: info\n"


@pytest.mark.parametrize("name", ["desktop", "shindig", "authmode"])
async def test_cache_clear_of_another_cache_leaves_the_rest_cache_alone(
    warm: Proxy, name: str
) -> None:
    done = await webproxy("cache", "clear", name, "--admin-url", admin_url(warm))
    assert (done.code, done.err) == (0, "")
    assert json.loads(done.out)["cleared"]["cache"] == name
    assert await missed(warm) == set()


@pytest.mark.parametrize("name", ["all", "webproxy"])
async def test_cache_clear_all_clears_the_rest_cache_too(warm: Proxy, name: str) -> None:
    done = await webproxy("cache", "clear", name, "--admin-url", admin_url(warm))
    assert (done.code, done.err) == (0, "")
    assert json.loads(done.out)["cleared"]["cache"] == name
    assert await missed(warm) == set(WARM)


async def test_cache_stats_prints_a_line_for_each_cache_and_resource(warm: Proxy) -> None:
    done = await webproxy("cache", "stats", "--admin-url", admin_url(warm))
    assert (done.code, done.err) == (0, "")
    lines = {line.partition(":")[0]: line for line in done.out.splitlines()}
    assert {"store", "all", "rest", "desktop", "shindig", "authmode"} <= lines.keys()
    assert f"entries={len(WARM)} " in lines["rest"]
    assert "entries=0 " in lines["desktop"]
    assert "rest TeamResource" in lines
