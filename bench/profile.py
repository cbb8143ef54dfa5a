"""Where the server's CPU goes on order-dashboard requests (PostgreSQL, `medium` scale).

Runs the dashboard request in-process through the app's ASGI interface (no HTTP
client, no uvicorn: what is profiled is the app, its drivers and the event loop),
first unprofiled to give CPU ms per request, then under a profiler. cProfile
(stdlib, CPU-time clock) prints the top entries by cumulative and by own time, and
own time per package; cumulative times of coroutines are unreliable (each resume
counts as a call), own times are not. pyinstrument, when importable, prints its
call tree and a flat list by own time.

    .venv/bin/python -m bench.profile [--requests 300] [--concurrency 16]
    # pyinstrument, installed outside the project's venv:
    .venv/bin/uv pip install --target /tmp/pyinstrument --python .venv/bin/python pyinstrument
    PYTHONPATH=/tmp/pyinstrument .venv/bin/python -m bench.profile --profiler pyinstrument
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import re
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from bench.common import DASHBOARD, DEFAULT_DATABASE_URL, admin_token, in_process_app

Asgi = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


async def asgi_post(app: Asgi, body: bytes, token: str) -> bytes:
    """POST `body` to /graphql straight through the ASGI app; the response body."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", f"Bearer {token}".encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }
    sent = False
    chunks: list[bytes] = []
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)  # the app never waits for a disconnect here
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    response = b"".join(chunks)
    if status != 200 or b'"errors"' in response:
        raise RuntimeError(f"{status}: {response[:500]!r}")
    return response


async def run_requests(app: Asgi, body: bytes, token: str, requests: int, concurrency: int) -> None:
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await asgi_post(app, body, token)

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), timeout=600)


def package_of(filename: str) -> str:
    """A short owner of a code location: a third-party package, a project package,
    a stdlib module, or `builtins`."""
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins/C"
    if match := re.search(r"site-packages/([^/]+)", filename):
        return match[1].removesuffix(".py")
    if match := re.search(r"/work/main/([^/]+)/", filename):
        return f"[{match[1]}]"
    if match := re.search(r"python3\.\d+/([^/]+)", filename):
        return "stdlib:" + match[1].removesuffix(".py")
    return filename


def print_cprofile(profile: cProfile.Profile, requests: int, top: int) -> None:
    for key, title in (("cumulative", "cumulative time"), ("tottime", "own time")):
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out)
        stats.sort_stats(key).print_stats(top)
        print(f"\n=== cProfile: top {top} by {title} ({requests} requests, CPU time) ===")
        text = out.getvalue()
        print(text[text.index("   ncalls") :].rstrip())
    by_package: dict[str, float] = defaultdict(float)
    raw: dict[Any, Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in raw.items():
        by_package[package_of(filename)] += tottime
    total = sum(by_package.values())
    print("\n=== own time by package (ms per request; profiler overhead included) ===")
    for package, seconds in sorted(by_package.items(), key=lambda kv: -kv[1])[:25]:
        print(f"{seconds * 1000 / requests:8.2f} ms  {100 * seconds / total:5.1f}%  {package}")


async def run(args: argparse.Namespace) -> None:
    async with in_process_app(args.database_url) as api:
        token = await admin_token(api.app)
        app: Asgi = api.client._transport.app  # type: ignore[attr-defined]
        body = json.dumps({"query": DASHBOARD, "variables": {"n": args.n}}).encode()
        await run_requests(app, body, token, args.warmup, args.concurrency)

        started_cpu, started = time.process_time(), time.perf_counter()
        await run_requests(app, body, token, args.requests, args.concurrency)
        cpu = time.process_time() - started_cpu
        wall = time.perf_counter() - started
        print(
            f"unprofiled: {args.requests} requests, concurrency {args.concurrency}: "
            f"{cpu * 1000 / args.requests:.2f} ms CPU/request (app + drivers + loop, "
            f"no HTTP server), {args.requests / wall:.1f} req/s"
        )

        if args.profiler == "pyinstrument":
            from pyinstrument import Profiler  # type: ignore[import-not-found, unused-ignore]

            profiler = Profiler(interval=0.0005, async_mode="disabled")
            profiler.start()
            await run_requests(app, body, token, args.requests, args.concurrency)
            profiler.stop()
            print(profiler.output_text(unicode=True, color=False, show_all=False))
            flat = profiler.output_text(
                unicode=True, color=False, flat=True, flat_time="self", time="percent_of_total"
            )
            print(f"=== top {args.top} by own time (flat) ===")
            lines = [line for line in flat.splitlines() if line.strip()]
            print("\n".join(lines[: args.top + 8]))
            return
        # CPU time, not wall time: waits in the event loop's select() do not count.
        profile = cProfile.Profile(time.process_time)
        profile.enable()
        await run_requests(app, body, token, args.requests, args.concurrency)
        profile.disable()
        print_cprofile(profile, args.requests, args.top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--n", type=int, default=50, help="orders per request")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--profiler", choices=["cprofile", "pyinstrument"], default="cprofile")
    args = parser.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
