"""Requests per second and latency of a real server while its Redis is frozen.

Starts a private `redis-server` and one `storefront serve` worker using it for rate
limiting, persisted queries and the result cache; sends a small query from
`--connections` concurrent clients for `--seconds` while Redis is healthy, then
frozen (SIGSTOP: connections are accepted, nothing answers), then thawed (SIGCONT),
and prints each phase's requests/s, p50/p95/max latency, the requests slower than
150 ms, and the statuses. Before the Redis guard (server/redis_guard.py) a frozen
Redis cost every request its 2 s socket timeout (the issue measured 400 req/s
falling to 4).

    .venv/bin/python -m bench.frozen_redis [--database-url URL] [--seconds 5]
        [--connections 8] [--redis-timeout-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from bench.processes import free_port, server
from server.cli.migrate import upgrade

QUERY = "{ products(first: 5) { totalCount nodes { id name } } }"
SLOW = 0.15


async def phase(base: str, *, seconds: float, connections: int) -> list[tuple[int, float]]:
    """(status, seconds) of every request sent during `seconds`."""
    samples: list[tuple[int, float]] = []
    deadline = time.monotonic() + seconds

    async def client_loop(client: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            response = await client.post("/graphql", json={"query": QUERY})
            samples.append((response.status_code, time.perf_counter() - started))

    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(connections)))
    return samples


def report(name: str, samples: list[tuple[int, float]], seconds: float) -> None:
    times = sorted(elapsed for _, elapsed in samples)
    statuses: dict[int, int] = {}
    for status, _ in samples:
        statuses[status] = statuses.get(status, 0) + 1
    print(
        f"{name:<8}{len(samples) / seconds:>8.0f}{times[len(times) // 2] * 1000:>9.1f}"
        f"{times[int(len(times) * 0.95)] * 1000:>9.1f}{times[-1] * 1000:>9.0f}"
        f"{sum(t > SLOW for t in times):>8}  {statuses}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--redis-timeout-ms", type=int, default=50)
    args = parser.parse_args()
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    with tempfile.TemporaryDirectory() as directory:
        database_url = args.database_url or f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
        if args.database_url is None:
            asyncio.run(upgrade(database_url))
        port = free_port()
        redis = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", directory],
            stdout=subprocess.DEVNULL,
        )
        env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": f"redis://127.0.0.1:{port}/0",
            "REDIS_TIMEOUT_MS": str(args.redis_timeout_ms),
            "CACHE_ENABLED": "true",
        }
        try:
            with server(env) as (base, _process):
                print(f"{'phase':<8}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}", end="")
                print(f"{'>150ms':>8}  statuses")
                for name, before in (("healthy", None), ("frozen", signal.SIGSTOP)):
                    if before is not None:
                        redis.send_signal(before)
                    report(name, asyncio.run(phase(base, **_load(args))), args.seconds)
                redis.send_signal(signal.SIGCONT)
                report("thawed", asyncio.run(phase(base, **_load(args))), args.seconds)
        finally:
            redis.send_signal(signal.SIGCONT)
            redis.terminate()
            redis.wait(timeout=10)


def _load(args: argparse.Namespace) -> dict[str, float]:
    return {"seconds": args.seconds, "connections": args.connections}


if __name__ == "__main__":
    main()
