"""The fixed cost of one request: CPU µs and Python calls per request, and where they go.

Three workloads, each against a bare Starlette endpoint sending the same bytes:

- `trivial`: `{ __typename }`, anonymous, result cache off (everything but execution);
- `product`: one product page (10 reviews and their authors), anonymous, result cache off;
- `hit`: the 50-order dashboard of an admin, answered by the result cache (Redis);
- `memhit`: the same hit from the in-process cache (no REDIS_URL: memory cache and
  rate-limit buckets), what a hit costs once no Redis round trip is left on its path.

`inprocess` (the default) drives the app's ASGI callable directly, one request at
a time (no sockets, no HTTP server), so its figures are deterministic: Python calls
per request from cProfile (exact), CPU µs per request (`time.process_time`, median
of interleaved rounds) and the top functions by own time and by calls. `server`
runs a real `storefront serve` and a bare uvicorn endpoint under wrk (16
connections) and reads each server process's CPU from /proc: CPU µs and
requests/s, medians of interleaved runs.

    .venv/bin/python -m bench.prepare --database-url URL   # once: the `medium` seed
    .venv/bin/python -m bench.request_overhead [--database-url URL] [--redis-url URL]
        [--mode inprocess|server|both] [--requests 400] [--rounds 5] [--top 25]
        [--workloads trivial,product,hit] [--seconds 5] [--runs 3] [--request-log FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import logging
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.common import DASHBOARD, DEFAULT_DATABASE_URL, admin_token, in_process_app
from bench.processes import HOST, cpu_ms, free_port, server
from bench.result_cache import clear_redis, run_wrk, warm
from schema.global_id import to_global_id

Asgi = Callable[[dict[str, Any], Any, Any], Awaitable[None]]

TRIVIAL = "{ __typename }"
PRODUCT_PAGE = (
    "query($id: ID!) { product(id: $id) { id name description priceCents averageRating "
    "reviewCount category { name } reviews(first: 10) { nodes { rating body createdAt "
    "author { name } } } } }"
)
PRODUCT_ID = 556  # a product of the medium seed with more than 10 reviews
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/5"
BARE_BODY_ENV = "BENCH_BARE_BODY"


@dataclass(frozen=True)
class Workload:
    name: str
    body: bytes
    admin: bool
    env: str  # which app: "uncached", "redis" or "memory"


def workloads() -> dict[str, Workload]:
    product = {"query": PRODUCT_PAGE, "variables": {"id": to_global_id("Product", PRODUCT_ID)}}
    dashboard = json.dumps({"query": DASHBOARD, "variables": {"n": 50}}).encode()
    return {
        "trivial": Workload("trivial", json.dumps({"query": TRIVIAL}).encode(), False, "uncached"),
        "product": Workload("product", json.dumps(product).encode(), False, "uncached"),
        "hit": Workload("hit", dashboard, True, "redis"),
        "memhit": Workload("memhit", dashboard, True, "memory"),
    }


# LOG_LEVEL of the apps: `warning` (no request log line, as `make bench` runs them)
# unless --request-log asks for the default, `info`.
_log_level = {"LOG_LEVEL": "warning"}


def app_env(kind: str, redis_url: str) -> dict[str, str]:
    """The settings of the app a workload runs against."""
    if kind == "uncached":
        return {"CACHE_ENABLED": "false", **_log_level}
    if kind == "redis":
        return {"CACHE_ENABLED": "true", "REDIS_URL": redis_url, **_log_level}
    return {"CACHE_ENABLED": "true", "REDIS_URL": "", **_log_level}


def log_requests_to(path: str) -> None:
    """Request log lines on, configured as `storefront serve` configures them (LOG_FORMAT
    text), written to `path`: what one line per request costs is then measured."""
    from server.observability.log_config import configure_logging

    _log_level["LOG_LEVEL"] = "info"
    configure_logging("info")
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(path, "a"))  # noqa: SIM115  (open for the whole run)


def _scope(body: bytes, token: str | None) -> dict[str, Any]:
    headers = [
        (b"host", b"bench"),
        (b"user-agent", b"bench"),
        (b"accept", b"*/*"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def asgi_post(app: Asgi, body: bytes, token: str | None) -> tuple[int, bytes]:
    """POST `body` to /graphql through the ASGI callable, as uvicorn would; (status, body)."""
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

    await app(_scope(body, token), receive, send)
    return status, b"".join(chunks)


def bare_app(body: bytes | None = None) -> Starlette:
    """A bare Starlette endpoint answering every POST /graphql with `body` (default: the
    bytes in BENCH_BARE_BODY). Also `uvicorn --factory bench.request_overhead:bare_app`."""
    content = body if body is not None else os.environ[BARE_BODY_ENV].encode()

    async def endpoint(_request: Request) -> Response:
        return Response(content, media_type="application/json")

    return Starlette(routes=[Route("/graphql", endpoint, methods=["POST"])])


@dataclass
class Figures:
    cpu_us: list[float] = field(default_factory=list)
    bare_cpu_us: list[float] = field(default_factory=list)
    calls: float = 0.0
    primitive_calls: float = 0.0
    bare_calls: float = 0.0
    profile: cProfile.Profile | None = None


async def _serially(app: Asgi, body: bytes, token: str | None, count: int) -> None:
    for _ in range(count):
        status, answer = await asgi_post(app, body, token)
        if status != 200 or b'"errors"' in answer:
            raise RuntimeError(f"{status}: {answer[:300]!r}")


async def _cpu_us(app: Asgi, body: bytes, token: str | None, count: int) -> float:
    started = time.process_time()
    await _serially(app, body, token, count)
    return (time.process_time() - started) * 1e6 / count


async def _profiled(
    app: Asgi, body: bytes, token: str | None, count: int
) -> tuple[cProfile.Profile, float, float]:
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    await _serially(app, body, token, count)
    profile.disable()
    raw: dict[Any, Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    calls = sum(nc for (_cc, nc, _tt, _ct, _callers) in raw.values()) / count
    primitive = sum(cc for (cc, _nc, _tt, _ct, _callers) in raw.values()) / count
    return profile, calls, primitive


async def measure_inprocess(
    database_url: str, redis_url: str, names: list[str], args: argparse.Namespace
) -> dict[str, Figures]:
    """Figures of each workload in `names`, in process; rounds interleave the app and
    the bare endpoint, and the workloads."""
    chosen = [workloads()[name] for name in names]
    results = {w.name: Figures() for w in chosen}
    await clear_redis(redis_url)
    async with contextlib.AsyncExitStack() as stack:
        apps = {
            kind: await stack.enter_async_context(
                in_process_app(database_url, app_env(kind, redis_url))
            )
            for kind in sorted({w.env for w in chosen})
        }
        token = await admin_token(next(iter(apps.values())).app)
        runs: list[tuple[Workload, Asgi, Asgi, str | None]] = []
        for workload in chosen:
            app: Asgi = apps[workload.env].client._transport.app  # type: ignore[attr-defined]
            who = token if workload.admin else None
            status, answer = await asgi_post(app, workload.body, who)
            if status != 200 or b'"errors"' in answer:
                raise RuntimeError(f"{workload.name}: {status}: {answer[:300]!r}")
            bare: Asgi = bare_app(answer)
            await _serially(app, workload.body, who, args.warmup)
            await _serially(bare, workload.body, who, args.warmup)
            runs.append((workload, app, bare, who))
        for _ in range(args.rounds):
            for workload, app, bare, who in runs:
                figures = results[workload.name]
                figures.cpu_us.append(await _cpu_us(app, workload.body, who, args.requests))
                figures.bare_cpu_us.append(await _cpu_us(bare, workload.body, who, args.requests))
        for workload, app, bare, who in runs:
            figures = results[workload.name]
            profile, figures.calls, figures.primitive_calls = await _profiled(
                app, workload.body, who, args.requests
            )
            figures.profile = profile
            _, figures.bare_calls, _ = await _profiled(bare, workload.body, who, args.requests)
    return results


def print_inprocess(results: dict[str, Figures], requests: int, top: int) -> None:
    print("\n=== in process (ASGI, one request at a time) ===")
    print(
        f"{'workload':<9} {'CPU µs/req':>10} {'bare µs':>8} {'ratio':>6} "
        f"{'calls/req':>10} {'bare calls':>10}"
    )
    for name, figures in results.items():
        cpu = statistics.median(figures.cpu_us)
        bare = statistics.median(figures.bare_cpu_us)
        print(
            f"{name:<9} {cpu:>10.0f} {bare:>8.0f} {cpu / bare:>5.1f}x "
            f"{figures.calls:>10.0f} {figures.bare_calls:>10.0f}"
        )
    for name, figures in results.items():
        assert figures.profile is not None
        for key, title in (("tottime", "own time"), ("ncalls", "calls")):
            out = io.StringIO()
            stats = pstats.Stats(figures.profile, stream=out)
            stats.sort_stats(key).print_stats(top)
            text = out.getvalue()
            print(f"\n--- {name}: top {top} by {title} ({requests} requests) ---")
            print(text[text.index("   ncalls") :].rstrip())


@contextlib.contextmanager
def bare_server(body: bytes) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A bare Starlette endpoint under uvicorn, served as `storefront serve` serves."""
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="bench-bare-", suffix=".log", delete=False)  # noqa: SIM115
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "bench.request_overhead:bare_app",
        "--host",
        HOST,
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    env = {**os.environ, BARE_BODY_ENV: body.decode()}
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                warm(f"{base}/graphql", "{}", "", count=1)
                break
            except Exception:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"bare server did not start; see {log.name}") from None
                time.sleep(0.2)
        yield base, process
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@dataclass
class ServerFigures:
    cpu_us: list[float] = field(default_factory=list)
    rps: list[float] = field(default_factory=list)
    p50_ms: list[float] = field(default_factory=list)


def _loaded(
    url: str, body: str, token: str, pid: int, seconds: int, connections: int
) -> tuple[float, float, float]:
    """(CPU µs per request of `pid`, requests/s, p50 ms) of one wrk run."""
    before = cpu_ms(pid)
    rate = run_wrk(url, body, token, seconds=seconds, connections=connections)
    spent = cpu_ms(pid) - before
    if rate.bad:
        raise RuntimeError(f"{rate.bad} bad answers from {url}")
    return spent * 1000 / rate.requests, rate.rps, rate.p50_ms


def measure_server(
    database_url: str, redis_url: str, names: list[str], args: argparse.Namespace
) -> dict[str, tuple[ServerFigures, ServerFigures]]:
    """(storefront, bare) figures per workload under wrk, runs interleaved."""
    chosen = [workloads()[name] for name in names]
    asyncio.run(clear_redis(redis_url))
    results: dict[str, tuple[ServerFigures, ServerFigures]] = {}
    with contextlib.ExitStack() as stack:
        servers = {
            kind: stack.enter_context(
                server({"DATABASE_URL": database_url, **app_env(kind, redis_url)})
            )
            for kind in sorted({w.env for w in chosen})
        }
        token = asyncio.run(_token(database_url))
        runs = []
        for workload in chosen:
            base, process = servers[workload.env]
            who = token if workload.admin else ""
            url = f"{base}/graphql"
            warm(url, workload.body.decode(), who, count=50)
            bare_base, bare_process = stack.enter_context(
                bare_server(_answer(url, workload.body, who))
            )
            bare_url = f"{bare_base}/graphql"
            warm(bare_url, workload.body.decode(), "", count=50)
            runs.append((workload, who, (url, process.pid), (bare_url, bare_process.pid)))
            results[workload.name] = (ServerFigures(), ServerFigures())
        for _ in range(args.runs):
            for workload, who, ours, bare in runs:
                for figures, (url, pid) in zip(results[workload.name], (ours, bare), strict=True):
                    cpu, rps, p50 = _loaded(
                        url, workload.body.decode(), who, pid, args.seconds, args.connections
                    )
                    figures.cpu_us.append(cpu)
                    figures.rps.append(rps)
                    figures.p50_ms.append(p50)
    return results


def _answer(url: str, body: bytes, token: str) -> bytes:
    import httpx

    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    response = httpx.post(url, content=body, headers=headers, timeout=30)
    response.raise_for_status()
    return response.content


async def _token(database_url: str) -> str:
    async with in_process_app(database_url) as api:
        return await admin_token(api.app)


def print_server(results: dict[str, tuple[ServerFigures, ServerFigures]], connections: int) -> None:
    print(f"\n=== storefront serve vs a bare uvicorn endpoint (wrk, {connections} connections) ===")
    print(
        f"{'workload':<9} {'CPU µs/req':>10} {'bare µs':>8} {'req/s':>8} {'bare req/s':>10} "
        f"{'share':>6} {'p50 ms':>7}"
    )
    for name, (ours, bare) in results.items():
        cpu, bare_cpu = statistics.median(ours.cpu_us), statistics.median(bare.cpu_us)
        rps, bare_rps = statistics.median(ours.rps), statistics.median(bare.rps)
        print(
            f"{name:<9} {cpu:>10.0f} {bare_cpu:>8.0f} {rps:>8.0f} {bare_rps:>10.0f} "
            f"{100 * rps / bare_rps:>5.0f}% {statistics.median(ours.p50_ms):>7.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--mode", choices=["inprocess", "server", "both"], default="inprocess")
    parser.add_argument("--workloads", default="trivial,product,hit")
    parser.add_argument("--requests", type=int, default=400, help="per in-process round")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--dump", default=None, help="directory to write <workload>.prof into")
    parser.add_argument("--seconds", type=int, default=5, help="per wrk run")
    parser.add_argument("--runs", type=int, default=3, help="interleaved wrk runs")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--request-log",
        default=None,
        metavar="FILE",
        help="LOG_LEVEL=info (the default of `storefront serve`): one line per request,"
        " written to FILE; without it the apps run at warning, as in `make bench`",
    )
    args = parser.parse_args()
    if args.request_log:
        log_requests_to(args.request_log)
    names = [name.strip() for name in args.workloads.split(",") if name.strip()]
    if args.mode in ("inprocess", "both"):
        results = asyncio.run(measure_inprocess(args.database_url, args.redis_url, names, args))
        print_inprocess(results, args.requests, args.top)
        if args.dump:
            os.makedirs(args.dump, exist_ok=True)
            for name, figures in results.items():
                assert figures.profile is not None
                figures.profile.dump_stats(os.path.join(args.dump, f"{name}.prof"))
    if args.mode in ("server", "both"):
        served = measure_server(args.database_url, args.redis_url, names, args)
        print_server(served, args.connections)


if __name__ == "__main__":
    main()
