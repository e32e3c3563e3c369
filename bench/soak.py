"""Soak: agent desktops, admin writes, hostile sockets and upstream faults for M minutes.

Starts the Finesse simulator, `webproxy serve` (and with `--store redis` a redis-server,
stopped and restarted twice) as subprocesses. Desktops sign in and read cached and uncached
resources, the admin writes, refused credentials knock, hostile sockets dribble, stall and
abort, and the simulator's faults come and go. Every 200 from a cached path is compared with
the bodies the simulator has had for that URL; a stale, foreign or unknown body exits 1.

    .venv/bin/python -m bench.soak [--minutes 10] [--store memory|redis] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import itertools
import json
import math
import os
import random
import shutil
import socket
import struct
import sys
import time
import xml.etree.ElementTree as ET
from array import array
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import median
from typing import Final
from urllib.parse import urlsplit

import aiohttp

from bench.login_storm import cache_kind, percentiles
from bench.processes import (
    LOCALHOST,
    Processes,
    Proxy,
    RunStopped,
    StartFailed,
    pings,
    run_limits,
    start_proxy,
    start_redis,
    start_simulator,
    work_directory,
)

API: Final = "/finesse/api"
TEAMS, AGENTS, DESKTOPS = 8, 25, 60  # agents 1..24 of each team sit at desktops, 25 intrudes
HOSTILE: Final = dict(slow_head=8, slow_body=8, stalled_body=4, slow_read=8, aborted_write=4)
GLOBAL_KEYS: Final = [f"{API}/{r}" for r in ("ChatConfig", "ECCVariableConfig", "MediaDomains")]
COLLECTIONS: Final = (
    "ReasonCodes?category=ALL WrapUpReasons PhoneBooks Workflows MediaPropertiesLayouts"
    " LayoutConfig"
).split()
UNCACHED: Final = ("User/{login}/Dialogs", "User/{login}/Queues", "ReasonCode/1", "SystemInfo")
LAYOUT: Final = "<useDefault>false</useDefault><layoutxml>soak {n}</layoutxml>"
WRITES: Final = (  # the admin's writes in turn; each makes a body the simulator never had
    ("ChatConfig", "<ChatConfig><primaryNode>https://chat-{n}.example</primaryNode></ChatConfig>"),
    ("Team/{team}/LayoutConfig", f"<TeamLayoutConfig>{LAYOUT}</TeamLayoutConfig>"),  # one team
    ("ReasonCode/1", "<ReasonCode><label>Break {n}</label></ReasonCode>"),  # in every team's
    ("WrapUpReason/{wrap}", "<WrapUpReason><label>wrap {team} {n}</label></WrapUpReason>"),
)
HOSTILE_WRITE: Final = f"{API}/Team/5000/ReasonCodes"  # purges; the soak's writes never go here
TTLS: Final = ("CHATCONFIG", "ECCVARIABLECONFIG", "MEDIADOMAIN", "TEAMRESOURCE")
SETTINGS: Final = {  # short TTLs: entries expire, are fetched again, are served stale-if-error
    **{f"WEBPROXY_CACHE_TTL_{resource}": "20" for resource in TTLS},
    "WEBPROXY_CACHE_STALE_IF_ERROR": "60",
    "WEBPROXY_CACHE_IDENTITY_TTL": "60",
    "WEBPROXY_UPSTREAM_READ_TIMEOUT": "5",  # a hung Finesse gives a 504 within the soak
}
LIMITS: Final = {  # left out with SOAK_NO_LIMITS=1 (a proxy that does not know them yet)
    "WEBPROXY_SERVER_CLIENT_HEADER_TIMEOUT": "5",
    "WEBPROXY_SERVER_CLIENT_BODY_TIMEOUT": "5",
    "WEBPROXY_SERVER_SEND_TIMEOUT": "5",
    "WEBPROXY_SERVER_KEEPALIVE_TIMEOUT": "30",  # above aiohttp's client-side 15 s
    "WEBPROXY_SERVER_MAX_UPSTREAM_PER_CLIENT": "200",  # every soak client is 127.0.0.1
    "WEBPROXY_SERVER_MAX_HEAD_BYTES": "32768",
    "WEBPROXY_CACHE_MAX_ENTRY_BYTES": "1048576",
}
FAULTS: Final[tuple[tuple[str, dict[str, object]], ...]] = (
    ("latency", {"path": f"{API}/", "kind": "latency", "seconds": 0.5}),
    ("503", {"path": f"{API}/", "kind": "status", "status": 503}),
    ("drop", {"path": f"{API}/TeamResource/", "kind": "drop"}),
    ("hang", {"path": f"{API}/", "kind": "hang"}),
)
CALM_S, FAULT_S, REDIS_DOWN_S = 8.0, 6.0, 5.0
SLOW_S: Final = 30.0  # a hostile socket not cut off by then is counted "not cut off"
ECHO_SIZE: Final = 50_000_000
GROUPS: Final = (
    ("errors by kind", "errors"),
    ("admin writes", "writes"),
    ("refused reads", "refused"),
    ("Cache-Status", "Cache-Status"),
    ("faults", "faults"),
)
TIMEOUT, SHORT = aiohttp.ClientTimeout(total=30), aiohttp.ClientTimeout(total=2)
Answer = tuple[float, int, bytes, str]  # started (monotonic), status, body, Cache-Status


class SoakFailed(RuntimeError):
    """The soak cannot go on (the simulator stopped answering, Redis did not come back)."""


def basic(user: str, password: str = "finesse") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def agent(team: int, number: int) -> str:
    return str(10000 + team * 1000 + number)


def team_keys(team: int) -> list[str]:
    return [f"{API}/TeamResource/{5000 + team}/{c}" for c in COLLECTIONS]


def with_query(path: str, query: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}{query}"


def digest(body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=16).digest()


def failure(exc: BaseException) -> str:
    return "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__


ALL_KEYS: Final = [*GLOBAL_KEYS, *(k for t in range(TEAMS) for k in team_keys(t))]


@dataclass(slots=True)
class Bodies:
    """Each cached URL's bodies in the order the simulator had them, with the time the write
    that made each was answered; and the verdict on every body the proxy served."""

    history: dict[str, list[tuple[float, bytes]]] = field(default_factory=dict)
    owners: dict[bytes, str] = field(default_factory=dict)
    writing: bool = False  # a write is out and its bodies are not all read: judge later
    deferred: list[tuple[str, float, bytes, str]] = field(default_factory=list)
    verdicts: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)

    def record(self, key: str, answered: float, body: bytes) -> None:
        versions, hashed = self.history.setdefault(key, []), digest(body)
        if not versions or versions[-1][1] != hashed:
            versions.append((answered, hashed))
            self.owners.setdefault(hashed, key)

    def served(self, key: str, started: float, body: bytes, note: str) -> None:
        if self.writing:  # even a read begun before the write may carry its new body
            self.deferred.append((key, started, digest(body), note))
        else:
            self.judge(key, started, digest(body), note)

    def judge(self, key: str, started: float, hashed: bytes, note: str) -> None:
        """ok: no older than the body of the last write answered before the read started."""
        versions = self.history[key]
        floor = max((i for i, (at, _) in enumerate(versions) if at < started), default=0)
        if any(d == hashed for _, d in versions[floor:]):
            return self.count("ok", "")
        if any(d == hashed for _, d in versions[:floor]):
            old = next(i for i, (_, d) in enumerate(versions) if d == hashed)
            return self.count("stale", f"{key}: version {old}, current >= {floor}; {note}")
        owner = self.owners.get(hashed)
        self.count("unknown" if owner is None else "foreign", f"{key}: {owner}'s body; {note}")

    def count(self, verdict: str, sample: str) -> None:
        self.verdicts[verdict] += 1
        if verdict != "ok" and len(self.samples) < 8:
            self.samples.append(f"{verdict}: {sample}")

    def settle(self) -> None:
        self.writing = False
        for item in self.deferred:
            self.judge(*item)
        self.deferred.clear()


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Soak:
    """One run: the traffic, the hostile sockets, the fault schedule and what they saw."""

    def __init__(self, args: argparse.Namespace, procs: Processes, sim: str, proxy: Proxy) -> None:
        self.args, self.procs, self.sim, self.proxy = args, procs, sim, proxy
        self.process = next(p for _, p in procs.children if p.pid == proxy.pid)
        url = urlsplit(proxy.url)
        self.address = (url.hostname or LOCALHOST, url.port or 80)
        connector = aiohttp.TCPConnector(limit=DESKTOPS + 10)
        self.desk = aiohttp.ClientSession(timeout=TIMEOUT, connector=connector)
        self.ctl = aiohttp.ClientSession(timeout=TIMEOUT)
        self.stop, self.bodies, self.rng = asyncio.Event(), Bodies(), random.Random()
        self.counts: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.latencies: array[float] = array("d")
        self.cut_after: defaultdict[str, list[float]] = defaultdict(list)
        self.rss, self.fds, self.died = [rss_kib(proxy.pid)], open_fds(proxy.pid), ""
        self.wrap_ups: dict[int, str] = {}

    async def pause(self, seconds: float) -> None:
        """The schedule's waits: `seconds`, or less once the soak is over."""
        try:
            await asyncio.wait_for(self.stop.wait(), seconds)
        except TimeoutError:
            pass

    async def run(self, redis_url: str | None) -> list[str]:
        """Everything at once for --minutes; then requests finish and the rest is judged."""
        await self.discover()
        traffic = [self.desktop(i) for i in range(DESKTOPS)] + [self.intruder(), self.writer()]
        chaos = [self.hostile(kind) for kind, n in HOSTILE.items() for _ in range(n)]
        chaos += [self.faults(), self.monitor()] + ([self.bounce(redis_url)] if redis_url else [])
        tasks = [asyncio.create_task(c) for c in [*traffic, *chaos]]
        await self.pause(self.args.minutes * 60)
        self.stop.set()
        await asyncio.wait(tasks[: len(traffic)], timeout=40)
        for task in tasks:
            task.cancel()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        await self.control("DELETE")
        await self.snapshot(time.monotonic())  # whatever the last write left behind
        self.bodies.settle()
        await self.desk.close()
        await self.ctl.close()
        return [repr(r) for r in done if isinstance(r, Exception)]

    async def get(self, path: str, auth: str, kind: str) -> Answer | None:
        self.counts["sent"][kind] += 1
        started, answer = time.monotonic(), None
        headers = {"Authorization": auth, "Accept": "application/xml"}
        try:
            async with self.desk.get(self.proxy.url + path, headers=headers) as r:
                answer = (started, r.status, await r.read(), r.headers.get("Cache-Status", ""))
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.counts["errors"][failure(exc)] += 1
        if kind != "refused":  # a desktop's request
            self.latencies.append(time.monotonic() - started)
            if answer is not None and answer[1] not in (200, 206):
                self.counts["errors"][str(answer[1])] += 1
        return answer

    async def read(self, key: str, auth: str, *, bypass: bool = False) -> None:
        query = f"nocache={int(time.time() * 1000)}" + ("&bypassServerCache=true" if bypass else "")
        answer = await self.get(with_query(key, query), auth, "cached")
        if answer is not None and answer[1] == 200:
            started, _, body, cache_status = answer
            self.counts["Cache-Status"][cache_kind(cache_status or None)] += 1
            self.bodies.served(key, started, body, f"Cache-Status {cache_status!r}")

    async def desktop(self, slot: int) -> None:
        """Sign in, load the desktop's nine resources, work a while; then the next agent."""
        pool = [(t, agent(t, j)) for j in range(1, AGENTS) for t in range(TEAMS)]
        for team, login in itertools.islice(itertools.cycle(pool), slot, None, DESKTOPS):
            auth, keys = basic(login), [*GLOBAL_KEYS, *team_keys(team)]
            await self.get(f"{API}/User/{login}", auth, "sign_in")
            for key in keys:
                await self.read(key, auth)
            for _ in range(self.rng.randint(10, 30)):
                if self.stop.is_set():
                    return
                await asyncio.sleep(self.rng.uniform(0.02, 0.2))  # the agent's think time
                if self.rng.random() < 0.8:
                    await self.read(self.rng.choice(keys), auth, bypass=self.rng.random() < 0.03)
                else:
                    path = f"{API}/{self.rng.choice(UNCACHED).format(login=login)}"
                    await self.get(path, auth, "uncached")

    async def intruder(self) -> None:
        """Credentials Finesse refuses for the URL they ask for: none may get a 200."""
        while not self.stop.is_set():
            own, other = self.rng.sample(range(TEAMS), 2)
            login, key = agent(own, AGENTS), self.rng.choice(team_keys(other))
            who = self.rng.choice(("wrong password", "unknown user", "other team", "admin"))
            auth = basic("admin") if who == "admin" else basic(login)
            if who in ("wrong password", "unknown user"):
                key = self.rng.choice([*GLOBAL_KEYS, *team_keys(own)])
                auth = basic(login, "wrong") if who == "wrong password" else basic("99999")
            if who == "other team":  # signed in, so the proxy knows the caller's own team
                await self.get(f"{API}/User/{login}", auth, "sign_in")
            answer = await self.get(with_query(key, "nocache=1"), auth, "refused")
            if answer is not None:
                self.counts["refused"][str(answer[1])] += 1
                if answer[1] == 200:
                    self.bodies.count("foreign", f"{key}: 200 for a refused credential ({who})")
            await self.pause(0.05)

    async def writer(self) -> None:
        """An admin write through the proxy each second, then the simulator's new bodies."""
        for n in itertools.count(1):
            if self.stop.is_set():
                return
            path, body = WRITES[n % len(WRITES)]
            team = n // len(WRITES) % TEAMS
            values = {"n": n, "team": 5000 + team, "wrap": self.wrap_ups[team]}
            url, data = f"{self.proxy.url}{API}/{path.format(**values)}", body.format(**values)
            headers = {"Authorization": basic("admin"), "Content-Type": "application/xml"}
            self.counts["sent"]["write"] += 1
            self.bodies.writing = True
            try:
                async with self.ctl.put(url, data=data, headers=headers) as response:
                    await response.read()
                    self.counts["writes"][str(response.status)] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.counts["writes"][failure(exc)] += 1
            await self.snapshot(time.monotonic())
            self.bodies.settle()
            await self.pause(1.0)

    async def snapshot(self, answered: float) -> None:
        """Every cached URL's body, read from the simulator itself, as of `answered`."""
        bodies = await asyncio.gather(*(self.direct(key) for key in ALL_KEYS))
        for key, body in zip(ALL_KEYS, bodies, strict=True):
            self.bodies.record(key, answered, body)

    async def direct(self, path: str) -> bytes:
        """A 200 body from the simulator itself (not the proxy), asked again through faults."""
        team = path.split("/")[4] if "/TeamResource/" in path else None
        user = "admin" if team is None else agent(int(team) - 5000, 1)
        headers = {"Authorization": basic(user), "Accept": "application/xml"}
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                async with self.ctl.get(self.sim + path, headers=headers, timeout=SHORT) as r:
                    if r.status == 200:
                        return await r.read()
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.2)  # poll interval, bounded by the deadline
        raise SoakFailed(f"the simulator gave no 200 for {path} in 90 s")

    async def discover(self) -> None:
        """The bodies before any write (version 0), and each team's own wrap-up reason."""
        for team in range(TEAMS):
            xml = await self.direct(f"{API}/Team/{5000 + team}/WrapUpReasons")
            uris = [e.text or "" for e in ET.fromstring(xml).iter("uri")]
            self.wrap_ups[team] = uris[-1].rsplit("/", 1)[1]  # after any shared one
        await self.snapshot(-math.inf)

    async def control(self, method: str, fault: dict[str, object] | None = None) -> None:
        async with self.ctl.request(method, f"{self.sim}/sim/faults", json=fault) as response:
            response.raise_for_status()

    async def faults(self) -> None:
        for name, fault in itertools.cycle(FAULTS):
            await self.pause(CALM_S)
            if self.stop.is_set():
                return
            await self.control("POST", fault)
            self.counts["faults"][name] += 1
            await self.pause(FAULT_S)
            await self.control("DELETE")

    async def bounce(self, redis_url: str) -> None:
        """Stop redis-server at a third and two thirds of the soak; restart it on its port."""
        port, begun = urlsplit(redis_url).port or 6379, time.monotonic()
        command = [shutil.which("redis-server") or "redis-server", "--port", str(port)]
        command += ["--bind", LOCALHOST, "--save", "", "--appendonly", "no"]
        for third in (1, 2):
            await self.pause(begun + third * self.args.minutes * 20 - time.monotonic())
            if self.stop.is_set():
                return
            redis = next(p for name, p in self.procs.children if name == "redis")
            await asyncio.to_thread(self.procs.stop, redis)
            await self.pause(REDIS_DOWN_S)
            await asyncio.to_thread(self.procs.spawn, "redis", command)
            deadline = time.monotonic() + 20
            while not await asyncio.to_thread(pings, port):
                if time.monotonic() > deadline:
                    raise SoakFailed("redis-server did not come back")
                await asyncio.sleep(0.05)  # poll interval, bounded by the deadline
            self.counts["faults"]["redis restart"] += 1

    async def monitor(self) -> None:
        """Every 5 s: is the proxy alive, does /healthz answer, how big is it."""
        while not self.stop.is_set():
            if (code := self.process.poll()) is not None:
                self.died = f"webproxy serve exited with status {code}"
                return self.stop.set()
            self.rss.append(rss_kib(self.proxy.pid))
            try:
                async with self.ctl.get(f"{self.proxy.admin_url}/healthz", timeout=SHORT) as r:
                    self.counts["healthz"][str(r.status)] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.counts["healthz"][failure(exc)] += 1
            await self.pause(5.0)

    async def hostile(self, kind: str) -> None:
        """One hostile socket after another, each until the proxy cuts it off (or SLOW_S)."""
        while not self.stop.is_set():
            with socket.socket() as sock:
                sock.setblocking(False)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # reads back up soon
                try:
                    await asyncio.get_running_loop().sock_connect(sock, self.address)
                    took = await self.attack(kind, sock)
                except OSError as exc:
                    self.counts[kind][type(exc).__name__] += 1
                    await self.pause(1.0)
                    continue
            self.counts[kind]["tries"] += 1
            if took is None:
                self.counts[kind]["not cut off"] += 1
            elif kind != "aborted_write":
                self.cut_after[kind].append(took)

    async def attack(self, kind: str, sock: socket.socket) -> float | None:
        """Seconds until the proxy answered or closed; None if it had not by SLOW_S."""
        put = f"PUT {HOSTILE_WRITE}?category=NOT_READY HTTP/1.1\r\nHost: soak\r\n".encode()
        put += f"Authorization: {basic('admin')}\r\nContent-Length: 100\r\n\r\n".encode()
        match kind:
            case "slow_head":
                return await dribble(sock, f"GET {API}/ChatConfig HTTP/1.1\r\nX-Slow: ".encode())
            case "slow_body":  # a byte a second: never a pause as long as client_body_timeout
                return await dribble(sock, put)
            case "stalled_body":  # ten bytes, then silence
                return await dribble(sock, put + b"<ReasonCod", stall=True)
            case "slow_read":
                get = f"GET /sim/echo?size={ECHO_SIZE} HTTP/1.1\r\nHost: soak\r\n\r\n".encode()
                return await slow_read(sock, get)
        await asyncio.get_running_loop().sock_sendall(sock, put + b"<ReasonCod")  # 10 of 100
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset
        await self.pause(0.5)
        return 0.0


async def dribble(sock: socket.socket, head: bytes, *, stall: bool = False) -> float | None:
    """Send `head`, then a byte a second (none if `stall`) until the proxy answers or closes."""
    loop, started = asyncio.get_running_loop(), time.monotonic()
    try:
        await loop.sock_sendall(sock, head)
        while time.monotonic() - started < SLOW_S:
            try:
                async with asyncio.timeout(1.0):
                    await loop.sock_recv(sock, 4096)  # an answer (408) or EOF: cut off
                return time.monotonic() - started
            except TimeoutError:
                await loop.sock_sendall(sock, b"" if stall else b"a")
    except OSError:
        return time.monotonic() - started
    return None


async def slow_read(sock: socket.socket, request: bytes) -> float | None:
    """A byte a second of a large uncached answer, then drain: cut off if it ended short."""
    loop, started, received = asyncio.get_running_loop(), time.monotonic(), 0
    try:
        await loop.sock_sendall(sock, request)
        while time.monotonic() - started < SLOW_S - 10:
            if not await loop.sock_recv(sock, 1):
                return time.monotonic() - started
            await asyncio.sleep(1.0)  # the slow reader's pace
        async with asyncio.timeout(3.0):  # the buffered bytes come first, then the close
            while chunk := await loop.sock_recv(sock, 1 << 16):
                received += len(chunk)
    except TimeoutError:
        return None  # still streaming: not cut off
    except OSError:
        pass
    return time.monotonic() - started if received < ECHO_SIZE else None


async def soak(
    args: argparse.Namespace, procs: Processes, sim: str, proxy: Proxy, redis_url: str | None
) -> int:
    run = Soak(args, procs, sim, proxy)  # inside the loop: it makes the client sessions
    failures = await run.run(redis_url)
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with session.get(f"{run.sim}/sim/stats") as response:
            stats: dict[str, dict[str, int]] = json.loads(await response.read())
    puts = sum(n for k, n in stats["requests"].items() if k.startswith(f"PUT {HOSTILE_WRITE}"))
    fds, rss = open_fds(run.proxy.pid), rss_kib(run.proxy.pid)  # every client closed by now
    return report(args, run, fds, rss, puts, failures)


def report(
    args: argparse.Namespace, run: Soak, fds: int, rss: int, puts: int, failed: list[str]
) -> int:
    """Print the figures; 1 if a stale, foreign or unknown body was served or the proxy died."""
    counts, verdicts, p = run.counts, run.bodies.verdicts, percentiles(list(run.latencies))
    limits = "off (SOAK_NO_LIMITS=1)" if os.environ.get("SOAK_NO_LIMITS") == "1" else "on"
    print(f"soak: {args.minutes:g} min, {args.store} store, limits {limits}, {TEAMS} teams")
    line("requests sent", f"{counts['sent'].total()} {dict(counts['sent'])}")
    for label, group in GROUPS:
        line(label, dict(counts[group].most_common()) or "none")
    line("bodies checked", f"{verdicts.total()} (unknown {verdicts['unknown']})")
    line("stale bodies", verdicts["stale"])
    line("foreign bodies", verdicts["foreign"])
    for sample in run.bodies.samples:
        line("", sample)
    line("latency desktop", f"p50 {p['p50']} ms, p99 {p['p99']} ms")
    for kind in HOSTILE:
        cut = run.cut_after[kind]
        line(kind, f"{dict(counts[kind])}" + (f", median {median(cut):.1f} s" if cut else ""))
    line("hostile PUTs", f"{puts} reached Finesse")
    line(
        "proxy RSS",
        f"start {run.rss[0] / 1024:.1f} MiB, end {rss / 1024:.1f} MiB, "
        f"peak {max([*run.rss, rss]) / 1024:.1f} MiB",
    )
    line("proxy open fds", f"start {run.fds}, end {fds}")
    line("proxy process", f"{run.died or 'alive'}; /healthz {dict(counts['healthz'])}")
    for failure_ in failed:
        line("soak task failed", failure_)
    bad = verdicts["stale"] + verdicts["foreign"] + verdicts["unknown"] > 0 or run.died or failed
    line("result", "FAIL" if bad else "pass")
    return 1 if bad else 0


def line(label: str, value: object) -> None:
    print(f"  {label:<17} {value}")


def run(args: argparse.Namespace) -> int:
    env = SETTINGS if os.environ.get("SOAK_NO_LIMITS") == "1" else {**SETTINGS, **LIMITS}
    with work_directory(args.workdir, "bench-soak-") as tmp, Processes(tmp) as procs:
        data = tmp / "simdata.json"
        data.write_text(json.dumps({"generate": {"teams": TEAMS, "agentsPerTeam": AGENTS}}))
        sim = start_simulator(procs, latency_ms=5.0, data=data)
        redis_url = start_redis(procs) if args.store == "redis" else None
        proxy = start_proxy(procs, sim, redis_url=redis_url, env=env)
        return asyncio.run(soak(args, procs, sim, proxy, redis_url))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="traffic duration (10)")
    parser.add_argument("--store", choices=("memory", "redis"), default="memory")
    parser.add_argument("--workdir", help="keep data and process logs here (default: a temp dir)")
    args = parser.parse_args(argv)
    if args.minutes <= 0:
        parser.error("need minutes > 0")
    try:
        with run_limits(args.minutes * 60 + 240):
            return run(args)
    except StartFailed as exc:
        print(f"soak: {exc}\n(limit keys unknown to this proxy? SOAK_NO_LIMITS=1)", file=sys.stderr)
        return 1
    except (SoakFailed, aiohttp.ClientError) as exc:
        print(f"soak: {exc!r}", file=sys.stderr)
        return 1
    except (RunStopped, KeyboardInterrupt) as exc:
        print(f"soak: {str(exc) or 'interrupted'}; processes stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
