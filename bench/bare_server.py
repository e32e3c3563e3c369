"""hit_path's baseline: a bare aiohttp server answering one path with fixed bytes from memory.

    python -m bench.bare_server --path /finesse/api/... --response FILE [--listen 127.0.0.1:0]

FILE is JSON: {"status": 200, "headers": [[name, value], ...], "body_b64": "..."}, the
proxy's own cache-hit answer. Prints `bare server on http://HOST:PORT` once listening;
SIGTERM or SIGINT stops it cleanly. Runs like webproxy's listener: no access log, no
middleware, one process.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web
from multidict import CIMultiDict


def make_app(path: str, status: int, headers: CIMultiDict[str], body: bytes) -> web.Application:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body, headers=headers)

    app = web.Application()
    app.router.add_get(path, answer)
    return app


def load_response(file: Path) -> tuple[int, CIMultiDict[str], bytes]:
    raw = json.loads(file.read_text())
    headers = CIMultiDict[str]((str(k), str(v)) for k, v in raw["headers"])
    return int(raw["status"]), headers, base64.b64decode(raw["body_b64"])


async def serve(app: web.Application, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound = next(a for a in runner.addresses if isinstance(a, tuple))
        print(f"bare server on http://{host}:{bound[1]}", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.bare_server", description=__doc__.split("\n")[0])
    parser.add_argument("--path", required=True, help="the one path answered (GET)")
    parser.add_argument("--response", required=True, type=Path, help="JSON response file")
    parser.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (127.0.0.1:0)")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    status, headers, body = load_response(args.response)
    asyncio.run(serve(make_app(args.path, status, headers, body), host, int(port)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
