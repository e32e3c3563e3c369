"""The `webproxy` command: serve, sim, demo, cache clear and stats, set and show, check-config."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import Final, NoReturn, TypeGuard

from webproxy import __version__
from webproxy.appkeys import SettingsSource
from webproxy.cache.rules import valid_team_id
from webproxy.config import Address, ConfigError, Settings, load_settings, parse_address
from webproxy.logs import ACCESS_LEVELS, configure_logging, printable
from webproxy.server import Listeners, raise_descriptor_limit, run_until_stopped, start_proxy

DEMO_USER = ("10001", "finesse")
DEMO_TEAM = "5000"
#: `cache clear NAME`, as Finesse's `utils webproxy cache clear NAME`.
CACHES: Final = ("all", "webproxy", "rest", "desktop", "shindig", "authmode")
#: `set log-severity NAME`: Finesse's names (syslog's), and `info`.
SEVERITIES: Final = ("debug", "info", "warn", "error", "crit", "alert", "emerg")
#: `set`/`show` items, as Finesse's `set webproxy ...` names them -> `/admin/log`'s keys.
LOG_ITEMS: Final = {"access-log-level": "access_log_level", "log-severity": "log_severity"}


class _Parser(argparse.ArgumentParser):
    """argparse, with every usage error one line (`webproxy cache clear: --team: ...`)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _admin_url(text: str) -> str:
    """An http(s) URL of the admin listener, checked before anything is sent."""
    parts = urllib.parse.urlsplit(text)
    try:
        parts.port  # noqa: B018 - parsing it is the check
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} has a port that is not a number") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http:// or https:// URL")
    return text


def _team(text: str) -> str:
    if not valid_team_id(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a team id (digits, as in 5000)")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="webproxy", description=__doc__)
    parser.add_argument("--version", action="version", version=f"webproxy {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the proxy")
    serve.add_argument("--config", metavar="FILE", help="TOML config file (see check-config)")
    serve.add_argument(
        "--upstream", dest="upstream.url", metavar="URL", help="Finesse base URL (upstream.url)"
    )
    serve.add_argument(
        "--listen", dest="server.listen", metavar="HOST:PORT", help="proxy (server.listen)"
    )
    serve.add_argument(
        "--admin-listen",
        dest="admin.listen",
        metavar="HOST:PORT",
        help="admin API, metrics and health (admin.listen; loopback by default)",
    )
    serve.add_argument(
        "--store",
        dest="store.backend",
        choices=("memory", "redis"),
        help="where cached entries live (store.backend)",
    )
    serve.add_argument(
        "--redis-url", dest="store.redis_url", metavar="URL", help="Redis (store.redis_url)"
    )
    serve.add_argument(
        "--workers",
        dest="server.workers",
        metavar="N",
        help="worker processes on one port (server.workers)",
    )

    sim = commands.add_parser("sim", help="run the bundled Finesse simulator")
    sim.add_argument("--listen", default="127.0.0.1:8082", help="HOST:PORT (127.0.0.1:8082)")
    sim.add_argument("--latency-ms", type=float, default=0.0, help="added to every API answer")
    sim.add_argument("--data", help="JSON file of teams and users (see webproxy.sim)")
    sim.add_argument(
        "--xmpp-port",
        type=int,
        metavar="N",
        help="also serve plain XMPP (RFC 6120, no TLS) on this port of the --listen host;"
        " 0 picks a free one (off by default)",
    )

    demo = commands.add_parser("demo", help="the simulator and the proxy together")
    demo.add_argument("--listen", default="127.0.0.1:8080", help="proxy HOST:PORT")
    demo.add_argument("--sim-listen", default="127.0.0.1:8082", help="simulator HOST:PORT")
    demo.add_argument("--admin-listen", default="127.0.0.1:9901", help="admin HOST:PORT")

    cache = commands.add_parser("cache", help="talk to a running proxy's admin API")
    cache_commands = cache.add_subparsers(dest="cache_command", required=True)
    clear = cache_commands.add_parser("clear", help="clear cached entries")
    clear.add_argument(
        "what",
        choices=CACHES,
        help="which cache: rest (the REST API), desktop, shindig (gadgets), authmode,"
        " webproxy or all",
    )
    clear.add_argument("--team", type=_team, help="only this team's entries (rest only)")
    clear.add_argument(
        "--resource", help="only this resource (ChatConfig, TeamResource, ...; rest only)"
    )
    clear.set_defaults(usage=clear)
    stats = cache_commands.add_parser("stats", help="entries, bytes and hit ratio")
    stats.add_argument("--json", action="store_true", help="the admin API's answer, as it is")
    _admin_options(clear, stats)
    _log_commands(commands)

    check = commands.add_parser("check-config", help="validate a config file")
    check.add_argument("file", help="the TOML file to check")
    return parser


def _log_commands(commands: argparse._SubParsersAction[_Parser]) -> None:
    """`set` and `show`, as Finesse's `set webproxy ...` and `show webproxy ...`."""
    set_ = commands.add_parser("set", help="change a running proxy's log levels, live")
    set_items = set_.add_subparsers(dest="item", required=True)
    access = set_items.add_parser("access-log-level", help="the access log: off, info or debug")
    access.add_argument("level", choices=ACCESS_LEVELS)
    severity = set_items.add_parser("log-severity", help="the least severe message logged")
    severity.add_argument("level", choices=SEVERITIES)
    show = commands.add_parser("show", help="a running proxy's log levels")
    show_items = show.add_subparsers(dest="item", required=True)
    shown = [show_items.add_parser(item, help=f"show the {item}") for item in LOG_ITEMS]
    _admin_options(access, severity, *shown)


def _admin_options(*parsers: argparse.ArgumentParser) -> None:
    for sub in parsers:
        sub.add_argument(
            "--admin-url",
            type=_admin_url,
            default="http://127.0.0.1:9901",
            metavar="URL",
            help="the proxy's admin listener (http://127.0.0.1:9901)",
        )
        sub.add_argument("--token", help="admin token (default: $WEBPROXY_ADMIN_TOKEN)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    match args.command:
        case "serve":
            return serve(args)
        case "sim":
            return sim(args)
        case "demo":
            return demo(args)
        case "cache":
            return cache(args)
        case "set" | "show":
            return log_levels(args)
        case "check-config":
            return check_config(args.file)
    raise AssertionError(args.command)


def serve(args: argparse.Namespace) -> int:
    flags = {key: value for key, value in vars(args).items() if "." in key}

    def source() -> Settings:
        return load_settings(args.config, os.environ, flags)

    try:
        settings = source()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(settings.log)
    raise_descriptor_limit()
    if settings.server.workers > 1:
        from webproxy.workers import serve_workers

        announce = partial(_announce, settings)
        return _listening(lambda: serve_workers(settings, source, announce))
    start = partial(_start, settings, source=source)
    return _listening(lambda: asyncio.run(run_until_stopped(start)))


async def _start(settings: Settings, listeners: Listeners, *, source: SettingsSource) -> None:
    await start_proxy(settings, listeners, source)
    _announce(settings, listeners.addresses["proxy"], listeners.addresses["admin"])


def _announce(settings: Settings, proxy: Address, admin: Address) -> None:
    workers = settings.server.workers
    group = f", {workers} workers" if workers > 1 else ""
    print(
        f"webproxy: proxy on {proxy}, admin on {admin}, upstream {settings.upstream.url}{group}",
        flush=True,
    )


def _listening(run: Callable[[], int | None]) -> int:
    """Run a server; an address it cannot bind is one line and exit 1, not a traceback."""
    try:
        return run() or 0
    except OSError as exc:
        print(f"webproxy: cannot listen: {exc.strerror or exc}", file=sys.stderr)
        return 1


def check_config(path: str) -> int:
    try:
        load_settings(path, {}, {})
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"{path}: ok")
    return 0


def sim(args: argparse.Namespace) -> int:
    from webproxy.sim import FinesseSimulator, SimData

    try:
        address = parse_address(args.listen)
        data = SimData.from_file(args.data) if args.data else SimData.default()
    except (ValueError, OSError) as exc:
        print(f"webproxy sim: {exc}", file=sys.stderr)
        return 2
    if args.xmpp_port is not None and not 0 <= args.xmpp_port <= 65535:
        print(f"webproxy sim: --xmpp-port: {args.xmpp_port} is not a port", file=sys.stderr)
        return 2
    simulator = FinesseSimulator(
        data,
        latency=args.latency_ms / 1000,
        xmpp_port=args.xmpp_port,
        xmpp_host=address.host or "0.0.0.0",
    )

    async def start(listeners: Listeners) -> None:
        bound = await listeners.add("sim", simulator.app, address)
        print(f"Finesse simulator on http://{bound} (every password: finesse)", flush=True)
        if simulator.xmpp is not None:
            host, port = simulator.xmpp_address
            print(f"Finesse simulator XMPP (plain TCP) on {Address(host, port)}", flush=True)

    return _listening(lambda: asyncio.run(run_until_stopped(start)))


def demo(args: argparse.Namespace) -> int:
    from webproxy.sim import FinesseSimulator, SimData

    try:
        proxy_at, sim_at, admin_at = (
            parse_address(text) for text in (args.listen, args.sim_listen, args.admin_listen)
        )
    except ValueError as exc:
        print(f"webproxy demo: {exc}", file=sys.stderr)
        return 2
    simulator = FinesseSimulator(SimData.default())

    async def start(listeners: Listeners) -> None:
        sim_bound = await listeners.add("sim", simulator.app, sim_at)
        base = Settings()
        settings = replace(
            base,
            server=replace(base.server, listen=proxy_at),
            admin=replace(base.admin, listen=admin_at),
            upstream=replace(base.upstream, url=f"http://{_local(sim_bound)}"),
        )
        await start_proxy(settings, listeners)
        _print_demo(listeners.addresses["proxy"], listeners.addresses["admin"], sim_bound)

    return _listening(lambda: asyncio.run(run_until_stopped(start)))


def _local(address: Address) -> str:
    host = "127.0.0.1" if address.host in ("0.0.0.0", "") else address.host
    return str(Address(host, address.port))


def _print_demo(proxy: Address, admin: Address, sim_address: Address) -> None:
    user, password = DEMO_USER
    url = f"http://{_local(proxy)}/finesse/api/TeamResource/{DEMO_TEAM}/ReasonCodes?category=ALL"
    print(
        f"""webproxy demo
  proxy      http://{_local(proxy)}   (in front of the simulator, memory store)
  admin      http://{_local(admin)}   (/healthz /readyz)
  simulator  http://{_local(sim_address)}   (a Cisco Finesse look-alike)
  desktop    http://{_local(proxy)}/desktop/container/   (in a browser, through the proxy)
  sign in as agent {user} (team {DEMO_TEAM}), password {password!r};
    agents 10001-10003 / 11001-11003 / ..., supervisors 10000 / 11000 / ...,
    administrator 'admin'; every password is {password!r}
  try (sign in, then read the team's reason codes twice: the second is a cache hit):
    curl -si -u {user}:{password} http://{_local(proxy)}/finesse/api/User/{user}
    curl -si -u {user}:{password} '{url}' | grep -i cache-status
    curl -si -u {user}:{password} '{url}' | grep -i cache-status
Ctrl-C stops both.""",
        flush=True,
    )


class AdminFailed(Exception):
    """The admin API did not do what was asked; the message is the one line to print."""


def cache(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get("WEBPROXY_ADMIN_TOKEN")
    if args.cache_command == "clear":
        if args.what != "rest" and (args.team or args.resource):
            args.usage.error(f"--team and --resource apply to rest only, not to {args.what}")
        query = {k: v for k, v in (("team", args.team), ("resource", args.resource)) if v}
        if args.what != "rest":  # rest: no cache=, as before there were other caches
            query = {"cache": args.what}
        path = "/admin/cache/clear" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        return _print(lambda: _as_json(admin_call(args.admin_url, path, "POST", token)))
    stats = partial(admin_call, args.admin_url, "/admin/cache", "GET", token)
    return _print(lambda: _as_json(stats()) if args.json else stats_lines(stats()))


def log_levels(args: argparse.Namespace) -> int:
    """`set ITEM LEVEL` (`PUT /admin/log`) or `show ITEM`; one line, `ITEM: LEVEL`."""
    token = args.token or os.environ.get("WEBPROXY_ADMIN_TOKEN")
    key = LOG_ITEMS[args.item]
    change = {key: args.level} if args.command == "set" else None
    method = "PUT" if change is not None else "GET"

    def call() -> str:
        level = admin_call(args.admin_url, "/admin/log", method, token, change).get(key)
        if not isinstance(level, str):
            raise AdminFailed(f"webproxy: the admin API's answer has no {key}")
        return f"{args.item}: {printable(level)}"

    return _print(call)


def _print(call: Callable[[], str]) -> int:
    """Print what `call` makes of the admin API's answer, or its failure as one line: 1."""
    try:
        text = call()
    except AdminFailed as exc:
        print(exc, file=sys.stderr)
        return 1
    print(text)
    return 0


def _as_json(body: dict[str, object]) -> str:
    return json.dumps(body, indent=2, sort_keys=True)


def stats_lines(body: dict[str, object]) -> str:
    """`GET /admin/cache` as lines: the store, all caches, each cache (`caches`), each
    resource (`rest ChatConfig: ...`).

    An answer without `caches` (a proxy from before the other caches) is printed as JSON.
    """
    caches = body.get("caches")
    if not isinstance(caches, dict) or not caches:
        return _as_json(body)
    backend = printable(str(body.get("backend", "-")))
    lines = [
        f"store: backend={backend} identities={_count(body.get('identities'))}",
        f"all: {_counts(body)}",
    ]
    for name, counts in caches.items():
        if isinstance(counts, dict):
            lines.append(f"{printable(str(name))}: {_counts(counts)}")
    resources = body.get("resources")
    for name, counts in (resources if isinstance(resources, dict) else {}).items():
        if isinstance(counts, dict):
            cache = printable(str(counts.get("cache", "rest")))
            lines.append(f"{cache} {printable(str(name))}: {_counts(_looked_up(counts))}")
    return "\n".join(lines)


def _looked_up(resource: dict[str, object]) -> dict[str, object]:
    """A resource's `lookups` by result as hits (`hit`) and misses (every other result)."""
    lookups = resource.get("lookups")
    results = (
        {k: v for k, v in lookups.items() if _is_count(v)} if isinstance(lookups, dict) else {}
    )
    hits = results.pop("hit", 0)
    return {**resource, "hits": hits, "misses": sum(results.values())}


def _counts(stats: dict[str, object]) -> str:
    hits, misses = stats.get("hits"), stats.get("misses")
    ratio = "-"
    if _is_count(hits) and _is_count(misses) and hits + misses:
        ratio = f"{hits / (hits + misses):.4f}"
    names = ("entries", "bytes", "hits", "misses")
    return " ".join(f"{name}={_count(stats.get(name))}" for name in names) + f" hit_ratio={ratio}"


def _is_count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _count(value: object) -> str:
    return str(value) if _is_count(value) else "-"


def admin_call(
    base: str, path: str, method: str, token: str | None, body: dict[str, str] | None = None
) -> dict[str, object]:
    """Ask the admin API; its JSON answer, or AdminFailed saying why not in one line."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base.rstrip("/") + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            raise AdminFailed(_refused(token)) from None
        detail = _error_detail(exc)
        raise AdminFailed(f"webproxy: admin API answered {exc.code} {exc.reason}{detail}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise AdminFailed(f"webproxy: cannot reach the admin API at {base}: {reason}") from None
    if not isinstance(answer, dict):
        raise AdminFailed(
            f"webproxy: the admin API at {base} gave an answer that is not a JSON object"
        )
    return answer


def _refused(token: str | None) -> str:
    if token:
        return "webproxy: admin API answered 401: the admin token was refused"
    return (
        "webproxy: admin API answered 401: it needs the admin token"
        " (--token or $WEBPROXY_ADMIN_TOKEN)"
    )


def _error_detail(exc: urllib.error.HTTPError) -> str:
    """The admin API's own `{"error": ...}` reason, if it gave one."""
    try:
        error = json.loads(exc.read()).get("error")
    except (ValueError, AttributeError, OSError):
        return ""
    return f": {printable(error)}" if isinstance(error, str) else ""
